#!/usr/bin/env bash
# One step of a results row, incrementally (called by Makefile.paper and scripts/demo.sh):
#   run_row.sh train MANIFEST DIR [--set KEY=VALUE]...
#       trains MANIFEST into DIR; a finished run of the same resolved manifest is re-used, an
#       interrupted one resumes (unmix train --resume), a finished run of ANOTHER manifest is an
#       error (never silently re-used nor overwritten).
#   run_row.sh reuse MANIFEST DIR MAIN_DIR [--set KEY=VALUE]...
#       a row whose training configuration is MAIN_DIR's finished run (apart from name and paper:)
#       links to that run instead of training it again (see cmd_reuse)
#   run_row.sh --seed-index N train|reuse ...
#       seed N of the row (make SEEDS=n): adds --set seed=S+N and --set name=NAME_sN, where S and
#       NAME are the manifest's (after the other --set words); N = 0 changes nothing. DIR (and
#       MAIN_DIR) must be that seed's own directory; `unmix collect` averages the seeds of a row.
#   run_row.sh eval NAME DIR OUTFILE [--optional] -- TEMPLATE
#       runs the `unmix NAME` evaluation TEMPLATE (a command line in which {run} stands for DIR)
#       once DIR's training has finished, unless DIR/OUTFILE exists and was made by the same
#       command from the current checkpoint. --optional: when this unmix has no NAME command,
#       print a note and succeed instead of failing.
# Environment: UNMIX (the binary, default build/unmix), BACKEND (auto|cpu|cuda, passed as backend=; auto = the GPU when
# one is usable, else the CPU; empty = the manifest's), NPROC (> 1:
# launch training as `$MPIRUN -np $NPROC $UNMIX train ...`), MPIRUN (default mpirun).
set -euo pipefail

UNMIX=${UNMIX:-build/unmix}
NPROC=${NPROC:-1}
MPIRUN=${MPIRUN:-mpirun}
BACKEND=${BACKEND-auto}
me="run_row"

die() {
  echo "$me: error: $*" >&2
  exit 1
}

[ -x "$UNMIX" ] || die "$UNMIX is not an executable (build it with 'make', or set UNMIX=...)"

status_of() { # DIR -> the status field of DIR/status.yaml, or "" when absent
  [ -f "$1/status.yaml" ] || { echo ""; return; }
  sed -n 's/^status: *//p' "$1/status.yaml" | head -n 1
}
field_of() { # DIR KEY
  sed -n "s/^$2: *//p" "$1/status.yaml" | head -n 1 | tr -d '"'
}

cmd_train() {
  [ $# -ge 2 ] || die "usage: run_row.sh train MANIFEST DIR [--set KEY=VALUE]..."
  local manifest=$1 dir=$2
  shift 2
  local sets=("$@")
  [ -f "$manifest" ] || die "$manifest: no such manifest"
  case "$BACKEND" in
    auto | cpu | cuda) sets+=(--set "backend=$BACKEND") ;;
    "") ;;
    *) die "BACKEND must be auto, cpu or cuda (got '$BACKEND')" ;;
  esac
  # the resolved manifest this invocation would train (also validates it before any work)
  local resolved md5
  resolved=$("$UNMIX" validate "$manifest" --print "${sets[@]}") || die "$manifest: invalid (see above)"
  md5=$(printf '%s\n' "$resolved" | tail -n +2 | md5sum | cut -d' ' -f1)
  local st
  st=$(status_of "$dir")
  if [ "$st" = finished ]; then
    local had
    had=$(field_of "$dir" manifest_md5)
    if [ "$had" = "$md5" ]; then
      echo "== $dir: finished ($(field_of "$dir" epochs_done)/$(field_of "$dir" epochs_planned) epochs), re-used"
      return 0
    fi
    die "$dir holds a finished run of another resolved manifest (md5 $had, now $md5; compare
  $dir/manifest.yaml with: $UNMIX validate $manifest --print ${sets[*]})
  remove $dir to train it again, or point RUNS at another directory"
  fi
  local launch=()
  if [ "$NPROC" -gt 1 ] 2>/dev/null; then
    launch=("$MPIRUN" -np "$NPROC")
    if [ "$(id -u)" = 0 ] && [ -z "${OMPI_ALLOW_RUN_AS_ROOT:-}" ]; then
      echo "$me: note: running mpirun as root (OMPI_ALLOW_RUN_AS_ROOT=1)"
      export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
  elif [ "$NPROC" != 1 ]; then
    die "NPROC must be a positive integer (got '$NPROC')"
  fi
  if [ -n "$st" ]; then
    echo "== $dir: $st at epoch $(field_of "$dir" epochs_done)/$(field_of "$dir" epochs_planned): resuming"
  else
    echo "== $dir: training $manifest"
  fi
  echo "+ ${launch[*]:+${launch[*]} }$UNMIX train $manifest --out $dir --resume ${sets[*]}"
  "${launch[@]}" "$UNMIX" train "$manifest" --out "$dir" --resume "${sets[@]}" ||
    die "training $dir failed (exit $?); its log: $dir/train.log. Re-run the same make target to resume."
  [ "$(status_of "$dir")" = finished ] || die "$dir: training stopped before the end (status: $(status_of "$dir")); re-run to resume"
}

cmd_eval() {
  [ $# -ge 5 ] || die "usage: run_row.sh eval NAME DIR OUTFILE [--optional] -- TEMPLATE"
  local name=$1 dir=$2 outfile=$3 optional=0
  shift 3
  if [ "$1" = --optional ]; then optional=1; shift; fi
  [ "$1" = -- ] || die "eval: expected -- before the command template"
  shift
  local template="$*"
  if ! "$UNMIX" "$name" --help >/dev/null 2>&1; then
    if [ $optional = 1 ]; then
      echo "== note: this unmix ($UNMIX) has no '$name' command yet; skipping $dir/$outfile"
      return 0
    fi
    die "this unmix ($UNMIX) has no '$name' command, needed for $dir/$outfile"
  fi
  [ "$(status_of "$dir")" = finished ] || die "$dir: training has not finished (status: '$(status_of "$dir")'); cannot evaluate"
  local q cmd
  printf -v q '%q' "$dir"
  cmd=${template//\{run\}/$q}
  local stamp="$dir/.$outfile.cmd" ckpt="$dir/checkpoint.safetensors"
  if [ -f "$dir/$outfile" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$cmd" ] &&
    { [ ! -f "$ckpt" ] || [ "$stamp" -nt "$ckpt" ]; }; then
    echo "== $dir/$outfile: up to date, re-used"
    return 0
  fi
  echo "+ $cmd"
  eval "$cmd" || die "'$cmd' failed (exit $?)"
  [ -f "$dir/$outfile" ] || die "'$cmd' succeeded but wrote no $dir/$outfile"
  printf '%s' "$cmd" >"$stamp"
}

# reuse MANIFEST DIR MAIN_DIR [--set KEY=VALUE]...: a sweep point whose training configuration
# is the main row's (sweep-prob P=0.5, sweep-beta beta=1) reuses MAIN_DIR's finished run: DIR
# gets the row's own manifest.yaml (its name and paper: block) and links to MAIN_DIR's files.
# Only when the two resolved manifests agree apart from name and paper.*; otherwise it trains.
cmd_reuse() {
  [ $# -ge 3 ] || die "usage: run_row.sh reuse MANIFEST DIR MAIN_DIR [--set KEY=VALUE]..."
  local manifest=$1 dir=$2 main=$3
  shift 3
  [ "$(status_of "$main")" = finished ] || die "reuse: $main has not finished (train the main row first)"
  local mine theirs keep=()
  local sets=("$@")
  case "$BACKEND" in auto | cpu | cuda) sets+=(--set "backend=$BACKEND") ;; esac
  mine=$("$UNMIX" validate "$manifest" --print "${sets[@]}" | tail -n +2) || die "$manifest: invalid (see above)"
  # the main run's resolved manifest with this row's name and paper: block
  local a
  for a in "${sets[@]}"; do case "$a" in name=* | paper.* | backend=*) keep+=(--set "$a") ;; esac; done
  theirs=$("$UNMIX" validate "$main/manifest.yaml" --print "${keep[@]}" | tail -n +2) || die "$main/manifest.yaml: invalid"
  if [ "$mine" != "$theirs" ]; then
    echo "== $dir: its configuration differs from $main's; training it"
    cmd_train "$manifest" "$dir" "$@"
    return
  fi
  mkdir -p "$dir"
  printf '%s\n' "$theirs" >"$dir/manifest.yaml"
  cp "$main/status.yaml" "$dir/status.yaml"
  local f abs
  abs=$(cd "$main" && pwd)
  for f in metrics.csv steps.csv checkpoint.safetensors train.log lincls.csv tsne.csv; do
    [ -e "$main/$f" ] && ln -sfn "$abs/$f" "$dir/$f"
  done
  echo "reused from $abs (the same training configuration; only name and paper: differ)" >"$dir/REUSED"
  echo "== $dir: the main row's run $main (identical training configuration), re-used"
}

# --seed-index N: the --set words for seed N of MANIFEST (given the row's other --set words)
seed_sets() { # N MANIFEST SET-WORDS... -> prints "seed=V name=NAME_sN" (one per line)
  local n=$1 manifest=$2
  shift 2
  local resolved base name
  resolved=$("$UNMIX" validate "$manifest" --print "$@") || die "$manifest: invalid (see above)"
  base=$(printf '%s\n' "$resolved" | sed -n 's/^seed: *//p' | head -n 1)
  name=$(printf '%s\n' "$resolved" | sed -n 's/^name: *//p' | head -n 1 | tr -d '"')
  case "$base" in '' | *[!0-9]*) die "$manifest: cannot read its seed from 'unmix validate --print'" ;; esac
  echo "seed=$((base + n))"
  echo "name=${name}_s$n"
}

[ $# -ge 1 ] || die "usage: run_row.sh [--seed-index N] train|eval|reuse ..."
seed_index=0
if [ "$1" = --seed-index ]; then
  [ $# -ge 3 ] || die "usage: run_row.sh --seed-index N train|reuse ..."
  seed_index=$2
  case "$seed_index" in '' | *[!0-9]*) die "--seed-index: expected a non-negative integer, got '$seed_index'" ;; esac
  shift 2
fi
sub=$1
shift
if [ "$seed_index" != 0 ]; then
  case "$sub" in
    train | reuse)
      [ $# -ge 2 ] || die "usage: run_row.sh --seed-index N $sub MANIFEST DIR ..."
      # the row's own --set words (after MANIFEST DIR [MAIN_DIR]) decide the base seed and name
      skip=2
      [ "$sub" = reuse ] && skip=3
      words=$(seed_sets "$seed_index" "$1" "${@:$((skip + 1))}") || exit 1
      extra=()
      while IFS= read -r w; do extra+=(--set "$w"); done <<<"$words"
      set -- "$@" "${extra[@]}"
      ;;
    *) die "--seed-index applies to train and reuse, not '$sub'" ;;
  esac
fi
case "$sub" in
  train) cmd_train "$@" ;;
  eval) cmd_eval "$@" ;;
  reuse) cmd_reuse "$@" ;;
  *) die "unknown step '$sub' (train, eval or reuse)" ;;
esac
