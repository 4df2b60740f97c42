#!/usr/bin/env bash
# Proves that the emulated CUDA device (test infrastructure) can fail: applies deliberate bugs to
# the CUDA backend, one at a time, in a scratch copy of the tree, builds the UNMIX_CUDA=EMU variant
# there and demands that the named GPU suite FAILS with each bug (and passes without any).
#   tools/emu-breakage.sh [NAME ...]     (default: every break; list: tools/emu-breakage.sh --list)
# Work directory: $EMU_BREAK_DIR (default build-emu-breakage/, reused between runs). Prints one
# "caught"/"MISSED" line per break with the first line of evidence; exits 1 if any was missed.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
W=${EMU_BREAK_DIR:-$REPO/build-emu-breakage}
SRC=$W/src
B=$W/build
JOBS=${JOBS:-2}

# name | file | old text (must occur exactly once) | new text | suite | CK_RUN_CASE | extra env
BREAKS=$(cat <<'EOF'
drop-barrier|core/backend/cuda/internal.cuh|  if (lane == 0) sh[warp] = v;\n  __syncthreads();\n  double t = lane < nw ? sh[lane] : 0.0;|  if (lane == 0) sh[warp] = v;\n  double t = lane < nw ? sh[lane] : 0.0;|test_gpu_ops|rows|
drop-barrier-topk|core/backend/cuda/topk.cu|    for (int b = tid; b < 256; b += blockDim.x) hist[b] = 0u;\n    __syncthreads();|    for (int b = tid; b < 256; b += blockDim.x) hist[b] = 0u;|test_gpu_ops|topk|
grid-stride-off-by-one|core/backend/cuda/internal.cuh|threadIdx.x; i < (n);|threadIdx.x; i <= (n);|test_gpu_ops|elementwise|
warp-mask-half|core/backend/cuda/internal.cuh|  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);|  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0x0000ffffu, v, o);|test_gpu_ops|reduce|
nchw-descriptor-on-nhwc|core/backend/cuda/conv.cu|cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NHWC,|cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW,|test_gpu_dense|conv|
conv-mode-swapped|core/backend/cuda/conv.cu|CUDNN_CROSS_CORRELATION|CUDNN_CONVOLUTION|test_gpu_dense|conv|
gemm-transpose-swapped|core/backend/cuda/dense.cu|opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N|opa = ta ? CUBLAS_OP_N : CUBLAS_OP_T|test_gpu_dense|gemm|
missing-stream-sync|core/backend/cuda/backend.cu|  UNMIX_CUDA_CHECK(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, unmix_cuda.stream));\n  UNMIX_CUDA_CHECK(cudaStreamSynchronize(unmix_cuda.stream));|  UNMIX_CUDA_CHECK(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, unmix_cuda.stream));|test_gpu_memory||EMU_STRICT_STREAMS=1
host-read-of-device-pointer|core/backend/cuda/reduce.cu|void unmix_cuda_sum(int64_t n, const float *x, float *out) {|void unmix_cuda_sum(int64_t n, const float *x, float *out) {\n  if (n > 0 \&\& x[0] > 1e30f) return;\n|test_gpu_ops|reduce|
workspace-too-small|core/backend/cuda/conv.cu|  if (cudaMalloc(\&p, bytes) != cudaSuccess) {|  if (cudaMalloc(\&p, bytes / 2) != cudaSuccess) {|test_gpu_dense|conv|
EOF
)

if [ "${1:-}" = "--list" ]; then
  echo "$BREAKS" | cut -d'|' -f1,2,5
  exit 0
fi
want=("$@")

mkdir -p "$W"
# A scratch copy of the tracked files (with uncommitted edits), refreshed every run.
rm -rf "$SRC"
mkdir -p "$SRC"
(cd "$REPO" && git ls-files -z | tar --null -T - -cf -) | tar -C "$SRC" -xf -
cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DUNMIX_CUDA=EMU -DUNMIX_DIST=OFF >/dev/null || exit 2

apply() { # file old new -> 0 when replaced exactly once
  python3 - "$SRC/$1" "$2" "$3" <<'PY'
import sys
p, old, new = sys.argv[1], sys.argv[2].replace('\\n', '\n').replace('\\&', '&'), sys.argv[3].replace('\\n', '\n').replace('\\&', '&')
s = open(p).read()
if s.count(old) != 1:
    sys.exit(f"{p}: the text to break occurs {s.count(old)} times (expected once): {old!r}")
open(p, 'w').write(s.replace(old, new))
PY
}

run_suite() { # suite case env... -> rc; output in $W/last.log
  local suite=$1 case=$2
  shift 2
  cmake --build "$B" -j"$JOBS" --target "$suite" >"$W/build.log" 2>&1 </dev/null || { cat "$W/build.log" | tail -20; return 99; }
  (cd "$B" && env CK_FORK=no OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE UNMIX_GPU_TEST_SMALL=1 \
     ${case:+CK_RUN_CASE=$case} "$@" timeout 900 "./tests/$suite") >"$W/last.log" 2>&1 </dev/null
}

missed=0
declare -A baseline_done
while IFS='|' read -r name file old new suite case env; do
  [ -n "$name" ] || continue
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  key="$suite/$case/$env"
  if [ -z "${baseline_done[$key]:-}" ]; then
    # shellcheck disable=SC2086
    if ! run_suite "$suite" "$case" $env; then
      echo "BASELINE FAILS: $suite ${case:+(case $case)} ${env} fails without any break:" >&2
      tail -20 "$W/last.log" >&2
      exit 2
    fi
    baseline_done[$key]=1
  fi
  cp "$REPO/$file" "$SRC/$file"
  if ! apply "$file" "$old" "$new"; then
    missed=$((missed + 1))
    echo "MISSED  $name: could not apply (the code changed?)"
    continue
  fi
  # shellcheck disable=SC2086
  run_suite "$suite" "$case" $env
  rc=$?
  cp "$REPO/$file" "$SRC/$file"
  evidence=$(grep -m1 -E 'emu: |gpu-check .*FAIL|:F:|:E:|cuDNN error|cuBLAS error|CUDA error|panic' "$W/last.log" | cut -c1-220)
  if [ $rc -ne 0 ] && [ $rc -ne 99 ]; then
    printf 'caught  %-28s %-16s rc=%-3s %s\n' "$name" "$suite" "$rc" "$evidence"
  else
    missed=$((missed + 1))
    printf 'MISSED  %-28s %-16s rc=%-3s (the suite passed with the bug)\n' "$name" "$suite" "$rc"
  fi
done <<<"$BREAKS"
# Leave the scratch tree unbroken.
[ $missed -eq 0 ] && echo "emu-breakage: every deliberate break was caught" || echo "emu-breakage: $missed break(s) missed"
exit $((missed > 0))
