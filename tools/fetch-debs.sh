#!/usr/bin/env bash
# Runs HERE (the Debian build machine), before a lent GPU session: downloads into .deb/pkgs
# (git-ignored) the Debian packages our build needs that the GPU machine's image lacks, copies
# this machine's cuDNN headers to .deb/cudnn-include, and unpacks the packages into .deb/root
# with dpkg -x, pruned and with absolute symlinks made relative, so that the tree works
# wherever the repository lands. tools/device-check.sh unpacks again there (--unpack).
#   tools/fetch-debs.sh            download what is missing, then unpack
#   tools/fetch-debs.sh --unpack   unpack .deb/pkgs only (no network; what the GPU side runs)
#   tools/fetch-debs.sh --clean    start again from nothing
# Carry `.deb/pkgs` and `.deb/cudnn-include` (about 15 MB), not the unpacked tree (about 40 MB).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEB="$REPO/.deb"
ROOT="$DEB/root"

# Runtime + development packages of every pkg-config module CMakeLists.txt asks for
# (openblas, yaml-0.1, jansson, zlib, libjpeg, check), their shared-library dependencies
# (libgfortran5/libquadmath0/libgomp1 for OpenBLAS: used there only where the image lacks
# them), pkg-config itself, and OpenMP's runtime.
PKGS=(
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5 libquadmath0 libgomp1
  libyaml-0-2 libyaml-dev
  libjansson4 libjansson-dev
  zlib1g zlib1g-dev
  libjpeg62-turbo libjpeg62-turbo-dev
  check libsubunit0 libsubunit-dev
  pkgconf pkgconf-bin libpkgconf3
)

MODE=all
case "${1:-}" in
  --clean) rm -rf "$DEB"; shift ;;
  --unpack) MODE=unpack; shift ;;
esac
[ $# -eq 0 ] || { echo "usage: tools/fetch-debs.sh [--clean | --unpack]" >&2; exit 2; }
mkdir -p "$DEB/pkgs"

# apt-get download fetches exactly the named packages (no dependency resolution), as the
# unprivileged _apt user when run as root, hence the writable directory.
missing=()
for p in "${PKGS[@]}"; do
  compgen -G "$DEB/pkgs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "$MODE" = unpack ]; then
  echo "fetch-debs: .deb/pkgs lacks ${missing[*]}: run tools/fetch-debs.sh on the build machine and carry .deb/pkgs" >&2
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "fetch-debs: downloading ${missing[*]}"
  if ! (cd "$DEB/pkgs" && chmod 777 . && apt-get download "${missing[@]}" >/dev/null); then
    echo "fetch-debs: apt-get download failed; run 'apt-get update' first (as root), then retry" >&2
    exit 1
  fi
fi

# dpkg -x where dpkg is (Debian, Ubuntu); otherwise the same by ar + tar.
unpack_deb() {
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$ROOT"
    return
  fi
  local member flag
  member=$(ar t "$1" | grep '^data\.tar')
  case "$member" in
    *.xz) flag=-J ;; *.zst) flag=--zstd ;; *.gz) flag=-z ;; *.bz2) flag=-j ;; *) flag= ;;
  esac
  ar p "$1" "$member" | tar -x $flag -f - -C "$ROOT"
}
rm -rf "$ROOT"
mkdir -p "$ROOT"
for f in "$DEB"/pkgs/*.deb; do unpack_deb "$f"; done

# Prune what neither the build nor the run needs (keeps the carried tree small).
rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/man" "$ROOT/usr/share/info" "$ROOT/usr/share/lintian" \
       "$ROOT/usr/share/aclocal" "$ROOT/usr/share/locale"
find "$ROOT" -name 'libopenblas*.a' -delete   # static OpenBLAS: we link the shared one
find "$ROOT" -name 'libcheck.a' -delete       # check.pc links libcheck_pic.a
rm -f "$ROOT"/usr/lib/x86_64-linux-gnu/openblas-openmp/{liblapack,libblas}.*  # we call cblas only

# Absolute symlinks (e.g. libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) would point into
# the host's file system: make them relative inside the tree.
while IFS= read -r link; do
  target=$(readlink "$link")
  case "$target" in
    /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$ROOT$target")" "$link" ;;
  esac
done < <(find "$ROOT" -type l)

# The openblas.pc that the alternatives system would link into the generic pkgconfig dir.
mkdir -p "$ROOT/usr/lib/x86_64-linux-gnu/pkgconfig"
ln -sfn ../openblas-openmp/pkgconfig/openblas.pc "$ROOT/usr/lib/x86_64-linux-gnu/pkgconfig/openblas.pc"

# cuDNN headers of this machine's toolkit, used there only if the image has none (the
# Python wheel nvidia-cudnn may ship the library without them).
if [ "$MODE" = all ]; then
  for d in /usr/local/cuda/include /usr/include /usr/include/x86_64-linux-gnu; do
    if [ -f "$d/cudnn.h" ]; then
      mkdir -p "$DEB/cudnn-include"
      cp "$d"/cudnn*.h "$DEB/cudnn-include/"
      break
    fi
  done
fi

broken=$(find "$ROOT" -xtype l | head -5)
if [ -n "$broken" ]; then
  echo "fetch-debs: broken symlinks left in $ROOT:" >&2
  echo "$broken" >&2
  exit 1
fi
echo "fetch-debs: $(find "$ROOT" -type f | wc -l) files, $(du -sh "$ROOT" | cut -f1) in $ROOT"
