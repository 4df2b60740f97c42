#!/usr/bin/env bash
# Kill/resume soak: trains a small Fashion-MNIST run to completion without interruption, then
# trains the same run again while killing it N times with SIGKILL at random moments (every
# other kill aimed at a checkpoint write: it waits for checkpoint.safetensors.tmp.<pid> to
# appear), resuming with `--resume` after each kill; finally compares the two byte for byte:
# steps.csv, metrics.csv without its timing columns (images_per_s, seconds), and the
# checkpoint's tensor data (the bytes after its header, whose metadata holds a save time).
#
#   tools/soak-resume.sh [-n KILLS] [-w WORKDIR] [-b UNMIX_BINARY] [-e EPOCHS]   (defaults 10, a
#   temporary directory, build/unmix, 2)
# Exit status 0 when every comparison is identical; the log says where a difference is.
set -euo pipefail
N=10
WORK=""
BIN=build/unmix
EPOCHS=2
while getopts "n:w:b:e:h" opt; do
  case $opt in
    n) N=$OPTARG ;;
    w) WORK=$OPTARG ;;
    b) BIN=$OPTARG ;;
    e) EPOCHS=$OPTARG ;;
    h) sed -n '2,10p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[[ $N =~ ^[0-9]+$ ]] || { echo "soak: -n needs a count, got '$N'" >&2; exit 2; }
[ -x "$BIN" ] || { echo "soak: no unmix binary at $BIN (build first, or -b PATH)" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FM=/usr/share/datasets/fashion-mnist
[ -e "$FM/train-images-idx3-ubyte.gz" ] || { echo "soak: needs Fashion-MNIST in $FM (make deps)" >&2; exit 2; }
[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/unmix-soak-XXXXXX)
mkdir -p "$WORK"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2   # bit-identity needs the same thread count

# a small run: EPOCHS epochs x STEPS steps of 16 images, width 4, a checkpoint after every
# epoch, a kNN monitor on 64 images after each (KNN=0 leaves it out)
STEPS=${STEPS:-4}
KNN=${KNN:-1}
SETS=(--set data.subset=1000 --set model.width=4 --set optim.batch_size=16 --set moco.K=64
      --set train.epochs="$EPOCHS" --set train.steps_per_epoch="$STEPS" --set train.log_every=1
      --set train.checkpoint_every=1 --set knn.every="$KNN" --set knn.bank_subset=64 --set knn.test_subset=32
      --set data.workers=1)
MAN="$ROOT/configs/fmnist/moco_sym.yaml"
train() { "$BIN" train "$MAN" "${SETS[@]}" --quiet "$@"; }

echo "soak: work directory $WORK, $N kills, $EPOCHS epochs"
rm -rf "$WORK/ref" "$WORK/soak"
t0=$(date +%s.%N)
train --out "$WORK/ref" 2>"$WORK/ref.err"
t1=$(date +%s.%N)
DUR=$(echo "$t1 - $t0" | bc)
echo "soak: uninterrupted run: $DUR s"

# compare_to_ref: the soak run against the uninterrupted one, byte for byte; sets rc=1 on a
# difference. Called for every run that reaches its end (a run that finishes before the kills
# are used up is compared, then started over), not only the last.
rc=0
strip_timing() { # metrics.csv without the columns that measure time
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "images_per_s" || $i == "seconds") skip[i] = 1 }
           { out = ""; for (i = 1; i <= NF; i++) if (!skip[i]) out = out $i ","; print out }' "$1"
}
data_of() { # the tensor bytes of a safetensors file: everything after 8 + header length
  local n
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((8 + n + 1)) "$1"
}
compare_to_ref() {
  local what="$1"
  cmp "$WORK/ref/steps.csv" "$WORK/soak/steps.csv" && echo "soak: $what: steps.csv identical ($(($(wc -l <"$WORK/ref/steps.csv") - 1)) steps)" || rc=1
  if cmp <(strip_timing "$WORK/ref/metrics.csv") <(strip_timing "$WORK/soak/metrics.csv"); then
    echo "soak: $what: metrics.csv identical (timing columns aside, $(($(wc -l <"$WORK/ref/metrics.csv") - 1)) epochs)"
  else rc=1; fi
  if cmp <(data_of "$WORK/ref/checkpoint.safetensors") <(data_of "$WORK/soak/checkpoint.safetensors"); then
    echo "soak: $what: checkpoint tensor data identical ($(data_of "$WORK/ref/checkpoint.safetensors" | wc -c) bytes)"
  else rc=1; fi
  local left
  left=$(find "$WORK/soak" -name '*.tmp.*' | wc -l)
  [ "$left" -eq 0 ] || { echo "soak: $what: $left temp files left behind" >&2; rc=1; }
  grep -q "status: finished" "$WORK/soak/status.yaml" || { echo "soak: $what: status.yaml is not finished" >&2; rc=1; }
}

kills=0 tmp_kills=0 finished_early=0 seg_start=0 segments=0
while [ "$kills" -lt "$N" ]; do
  # a simple command in the background: $! is the unmix process itself, which the kill must hit
  "$BIN" train "$MAN" "${SETS[@]}" --quiet --out "$WORK/soak" --resume 2>>"$WORK/soak.err" &
  pid=$!
  if [ $((kills % 2)) -eq 1 ]; then
    # aim at a checkpoint write: kill as soon as a temp file of this pid shows up (a tight
    # loop of shell built-ins: the file lives for milliseconds)
    tmpf="$WORK/soak/checkpoint.safetensors.tmp.$pid"
    until [ -e "$tmpf" ] || ! kill -0 "$pid" 2>/dev/null; do :; done
    [ -e "$tmpf" ] && tmp_kills=$((tmp_kills + 1))
  else
    sleep "$(awk -v d="$DUR" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", rand() * d * 0.9 }')"
  fi
  if kill -9 "$pid" 2>/dev/null; then
    kills=$((kills + 1))
  else
    finished_early=$((finished_early + 1))
  fi
  wait "$pid" 2>/dev/null || true
  if grep -q "status: finished" "$WORK/soak/status.yaml" 2>/dev/null; then
    segments=$((segments + 1))
    compare_to_ref "run $segments ($((kills - seg_start)) kills)"
    seg_start=$kills
    echo "soak: the run finished after $kills kills; starting it over (--restart) to use the remaining kills"
    train --out "$WORK/soak" --restart --stop-after-steps 1 2>>"$WORK/soak.err" || true
    rm -rf "$WORK"/soak/previous-*
  fi
done
train --out "$WORK/soak" --resume 2>>"$WORK/soak.err"
segments=$((segments + 1))
echo "soak: $kills SIGKILLs ($tmp_kills during a checkpoint write) over $segments runs, each resumed to the end"
compare_to_ref "run $segments ($((kills - seg_start)) kills)"

[ $rc -eq 0 ] && echo "soak: PASS ($segments runs compared, $kills kills)" || echo "soak: FAIL (see $WORK)"
exit $rc
