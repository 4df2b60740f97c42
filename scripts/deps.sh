#!/usr/bin/env bash
# Installs the Debian packages unmix-c needs, only those missing. Called by `make deps`
# (and so by `make`, `make test`, `make demo`). Needs root (or sudo) to install.
set -euo pipefail
PKGS=(cmake make gcc pkg-config curl
      libopenblas-openmp-dev libyaml-dev libjansson-dev zlib1g-dev libjpeg62-turbo-dev
      check libsubunit-dev
      libopenmpi-dev openmpi-bin
      gnuplot-nox
      libdnnl-dev                                  # oneDNN: the CPU's bf16 kernels (AMX / AVX512-BF16)
      clang-14 libclang-rt-14-dev libomp-14-dev   # the libFuzzer harnesses (make fuzz, make test)
      dataset-fashion-mnist)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "unmix deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "unmix deps: these Debian packages are missing and installing them needs root:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
