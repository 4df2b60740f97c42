#!/usr/bin/env bash
# One-rank NCCL check (issue "multi-process training"): trains 5 steps of CIFAR MoCo + Un-Mix
# on a tiny synthetic CIFAR-10 twice on the GPU, once with the NCCL communicator (the id
# exchanged through a file, as for launchers without MPI) and once with the single-process
# communicator, and requires identical per-step losses: a 1-rank NCCL all-reduce of the
# gradient buffer is the identity. Run by tools/device-check.sh; usable by hand:
#   tools/nccl-check.sh BUILD_DIR WORK_DIR [COMM]      (COMM: nccl (default) or single)
set -euo pipefail
BUILD=${1:?build dir}
WORK=${2:?work dir}
COMM=${3:-nccl}
UNMIX=$BUILD/unmix
rm -rf "$WORK" && mkdir -p "$WORK"
"$UNMIX" data synth cifar10 "$WORK/cifar10" --n 512 --classes 10 >/dev/null
SETS=(--set data.root="$WORK/cifar10" --set model.width=16 --set optim.batch_size=64 --set moco.K=256
      --set train.epochs=1 --set train.steps_per_epoch=5 --set knn.every=0 --set precision=fp32
      --set deterministic=true --set data.workers=2)
BACKEND=cuda
[ "$COMM" = single-cpu ] && { BACKEND=cpu; COMM=single; }
"$UNMIX" train configs/cifar10/moco_sym_unmix.yaml --backend "$BACKEND" --comm "$COMM" \
  --nccl-id-file "$WORK/nccl.id" "${SETS[@]}" --out "$WORK/run_$COMM" --quiet
"$UNMIX" train configs/cifar10/moco_sym_unmix.yaml --backend "$BACKEND" --comm single \
  "${SETS[@]}" --out "$WORK/run_ref" --quiet
if cmp -s <(cut -d, -f1-5 "$WORK/run_$COMM/steps.csv") <(cut -d, -f1-5 "$WORK/run_ref/steps.csv"); then
  echo "nccl-check: $COMM and single give identical losses over 5 steps"
  cut -d, -f1,5 "$WORK/run_$COMM/steps.csv" | tr '\n' ' '; echo
else
  echo "nccl-check: FAIL: $COMM and single differ" >&2
  paste -d'|' "$WORK/run_$COMM/steps.csv" "$WORK/run_ref/steps.csv" >&2
  exit 1
fi
