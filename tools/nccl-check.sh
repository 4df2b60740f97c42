#!/usr/bin/env bash
# NCCL checks on one GPU, run by tools/device-check.sh; usable by hand:
#   tools/nccl-check.sh BUILD_DIR WORK_DIR [COMM]      (COMM: nccl (default) or single)
# 1. test_gpu_comm: the NCCL communicator asked for by name with one rank really calls NCCL
#    (id file, non-blocking init, all-reduce / broadcast / all-gather / barrier on device and
#    staged host buffers, finalize + destroy) and every collective is the identity.
# 2. `unmix train --comm nccl` with one rank (UNMIX_RANK=0, UNMIX_WORLD_SIZE=1 and the id
#    through a file, as for launchers without MPI) against --comm single: 5 steps of CIFAR
#    MoCo + Un-Mix in deterministic fp32 must give identical per-step losses.
# 3. Two ranks on the one GPU (two processes, id through a file): both must finish with
#    finite losses. NCCL refuses two ranks on one device in most versions; that is reported
#    as NOT SUPPORTED, not as a failure.
# Prints one "nccl-check: PASS|FAIL|NOT SUPPORTED ..." line per check; exits 1 on a FAIL.
set -uo pipefail
BUILD=${1:?build dir}
WORK=${2:?work dir}
COMM=${3:-nccl}
UNMIX=$BUILD/unmix
FAIL=0
rm -rf "$WORK" && mkdir -p "$WORK"

# ---- 1 ----
if [ -x "$BUILD/tests/test_gpu_comm" ]; then
  if CK_FORK=no "$BUILD/tests/test_gpu_comm" >"$WORK/comm.log" 2>&1 && ! grep -q 'SKIPPED (' "$WORK/comm.log"; then
    echo "nccl-check: PASS communicator, 1 rank through NCCL (init, 4 collectives, finalize)"
  else
    echo "nccl-check: FAIL communicator, 1 rank through NCCL (see $WORK/comm.log)"
    tail -5 "$WORK/comm.log" | sed 's/^/  /'
    FAIL=1
  fi
fi

# ---- 2 ----
"$UNMIX" data synth cifar10 "$WORK/cifar10" --n 512 --classes 10 >/dev/null || exit 1
SETS=(--set data.root="$WORK/cifar10" --set model.width=16 --set optim.batch_size=64 --set moco.K=256
      --set train.epochs=1 --set train.steps_per_epoch=5 --set knn.every=0 --set precision=fp32
      --set deterministic=true --set data.workers=2)
BACKEND=cuda
[ "$COMM" = single-cpu ] && { BACKEND=cpu; COMM=single; }
if UNMIX_RANK=0 UNMIX_WORLD_SIZE=1 "$UNMIX" train configs/cifar10/moco_sym_unmix.yaml --backend "$BACKEND" \
     --comm "$COMM" --nccl-id-file "$WORK/nccl.id" "${SETS[@]}" --out "$WORK/run_$COMM" --quiet &&
   "$UNMIX" train configs/cifar10/moco_sym_unmix.yaml --backend "$BACKEND" --comm single \
     "${SETS[@]}" --out "$WORK/run_ref" --quiet &&
   cmp -s <(cut -d, -f1-5 "$WORK/run_$COMM/steps.csv") <(cut -d, -f1-5 "$WORK/run_ref/steps.csv"); then
  echo "nccl-check: PASS $COMM (1 rank) and single give identical losses over 5 steps"
  cut -d, -f1,5 "$WORK/run_$COMM/steps.csv" | tr '\n' ' '; echo
else
  echo "nccl-check: FAIL $COMM (1 rank) and single differ or did not run" >&2
  paste -d'|' "$WORK/run_$COMM/steps.csv" "$WORK/run_ref/steps.csv" >&2 2>/dev/null
  FAIL=1
fi

# ---- 3 ----
if [ "$COMM" = nccl ]; then
  rm -f "$WORK/nccl2.id"
  for r in 0 1; do
    UNMIX_RANK=$r UNMIX_WORLD_SIZE=2 UNMIX_LOCAL_RANK=0 UNMIX_LOCAL_WORLD_SIZE=1 UNMIX_COMM_TIMEOUT=60 \
      "$UNMIX" train configs/cifar10/moco_sym_unmix.yaml --backend cuda --comm nccl \
      --nccl-id-file "$WORK/nccl2.id" "${SETS[@]}" --out "$WORK/run_2ranks" >"$WORK/rank$r.log" 2>&1 &
    eval "PID$r=$!"
  done
  wait "$PID0"; RC0=$?
  wait "$PID1"; RC1=$?
  if [ $RC0 -eq 0 ] && [ $RC1 -eq 0 ] && [ -s "$WORK/run_2ranks/steps.csv" ] &&
     ! grep -qiE 'nan|inf' <(cut -d, -f5 "$WORK/run_2ranks/steps.csv" | tail -n +2); then
    echo "nccl-check: PASS 2 ranks on one GPU through NCCL (5 steps, finite losses)"
  elif grep -qiE 'duplicate GPU|invalid usage' "$WORK/rank0.log" "$WORK/rank1.log"; then
    echo "nccl-check: NOT SUPPORTED 2 ranks on one GPU: this NCCL refuses a duplicate device"
  else
    echo "nccl-check: FAIL 2 ranks on one GPU (rc $RC0 / $RC1; see $WORK/rank0.log, rank1.log)"
    tail -3 "$WORK/rank0.log" "$WORK/rank1.log" | sed 's/^/  /'
    FAIL=1
  fi
fi
exit $FAIL
