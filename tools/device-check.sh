#!/usr/bin/env bash
# The whole GPU validation as one script, run from the repository root on a lent GPU machine
# (H100/H200, sm_90) in one call: environment report, our Debian libraries from the carried
# .deb/pkgs (see tools/fetch-debs.sh), configure + build with CUDA ON, `ctest -L gpu`,
# compute-sanitizer (memcheck, then racecheck on the shared-memory kernels) over the GPU op
# suite, the CUDA benchmarks, and a short summary table printed last. Logs go to $OUT.
#
#   here:   tools/fetch-debs.sh                      (once; downloads into .deb/pkgs)
#   there:  run(command="bash tools/device-check.sh", carry=[".deb/pkgs", ".deb/cudnn-include"],
#               timeout_s=540)
#   here, without a GPU, to test everything but the GPU steps:  tools/device-check.sh --no-gpu
#
# Expected on an H100: about 1.5 min build, 1-2 min GPU suites (cuDNN's Find runs once per
# conv geometry), 1-2 min sanitizers, under 1 min benchmarks; the whole script stops itself
# within UNMIX_CHECK_BUDGET seconds (default 450), skipping what no longer fits.
# Knobs: UNMIX_CHECK_BUDGET, UNMIX_CHECK_BUILD (build dir, default build-gpu),
# UNMIX_CHECK_FORCE_DEBS=1 (run against the carried shared libraries even where the system
# has them: tests the carried tree), UNMIX_CHECK_BENCH_SECONDS (default 0.3).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
GPU=1
case "${1:-}" in
  --no-gpu) GPU=0 ;;
  "") ;;
  *) echo "usage: tools/device-check.sh [--no-gpu]" >&2; exit 2 ;;
esac
OUT=${OUT:-$REPO/build-devcheck/out}
mkdir -p "$OUT"
BUILD=${UNMIX_CHECK_BUILD:-$REPO/build-gpu}
BUDGET=${UNMIX_CHECK_BUDGET:-450}
BENCH_SECONDS=${UNMIX_CHECK_BENCH_SECONDS:-0.3}
JOBS=$(nproc 2>/dev/null || echo 4)
[ "$GPU" = 0 ] && JOBS=2 # the build machine is shared
T0=$(date +%s)
ENVLOG=$OUT/env.log BUILDLOG=$OUT/build.log CTESTLOG=$OUT/ctest.log SANLOG=$OUT/sanitizer.log
BENCHLOG=$OUT/bench.log SUMMARY=$OUT/summary.txt
: >"$ENVLOG"; : >"$BUILDLOG"; : >"$CTESTLOG"; : >"$SANLOG"; : >"$BENCHLOG"

STEPS=()
FAILED=0
note() { echo "device-check: $*" | tee -a "$ENVLOG"; }
left() { echo $((T0 + BUDGET - $(date +%s))); }
record() { STEPS+=("$(printf '%-22s %-8s %5ss  %s' "$1" "$2" "$3" "$4")"); }

# run_step NAME CAP_SECONDS LOG CMD...: runs CMD under a timeout that respects the budget.
run_step() {
  local name=$1 cap=$2 log=$3
  shift 3
  local l t s rc status
  l=$(left)
  t=$((l - 20 < cap ? l - 20 : cap))
  if [ "$t" -lt 15 ]; then
    record "$name" skipped 0 "no time left in the ${BUDGET}s budget"
    FAILED=1
    return 1
  fi
  echo "==== $name (limit ${t}s): $*" >>"$log"
  s=$(date +%s)
  timeout -k 5 "$t" "$@" >>"$log" 2>&1
  rc=$?
  status=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status=timeout; elif [ $rc -ne 0 ]; then status="rc=$rc"; fi
  [ "$status" = ok ] || FAILED=1
  record "$name" "$status" $(($(date +%s) - s)) "log: $(basename "$log")"
  echo "device-check: $name $status ($(($(date +%s) - s))s)"
  [ "$status" = ok ]
}

# ---- 1. environment ----------------------------------------------------------------------------
{
  echo "== uname: $(uname -a)"
  echo "== os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "== glibc: $(ldd --version 2>/dev/null | head -1)"
  echo "== cores: $(nproc)"
  if [ "$GPU" = 1 ]; then
    echo "== nvidia-smi"
    nvidia-smi 2>&1
  fi
  echo "== nvcc: $(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)"
  (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -2
  echo "== cmake: $(cmake --version 2>&1 | head -1); ninja: $(command -v ninja)"
  echo "== cc: $(cc --version 2>&1 | head -1)"
  echo "== pkg-config: $(command -v pkg-config)"
  echo "== compute-sanitizer: $(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
  echo "== cuBLAS: $(ls /usr/local/cuda/lib64/libcublas.so* /usr/local/cuda/targets/x86_64-linux/lib/libcublas.so* 2>/dev/null | head -2 | tr '\n' ' ')"
  echo "== cuDNN: $(ls /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h 2>/dev/null | tr '\n' ' ')"
} >>"$ENVLOG" 2>&1
if [ "$GPU" = 1 ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null |
    sed 's/^/device-check: gpu: /'
fi
export PATH="$PATH:/usr/local/cuda/bin"

# ---- 2. our Debian libraries, from the carried packages ------------------------------------------
ROOT=$REPO/.deb/root
if [ -d "$REPO/.deb/pkgs" ]; then
  run_step deps-unpack 60 "$BUILDLOG" tools/fetch-debs.sh --unpack
fi
CMAKE_EXTRA=()
if [ -d "$ROOT" ]; then
  ML=x86_64-linux-gnu
  export PKG_CONFIG_LIBDIR="$ROOT/usr/lib/$ML/pkgconfig:$ROOT/usr/lib/$ML/openblas-openmp/pkgconfig:$ROOT/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$ROOT"
  export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 # keep -I$ROOT/usr/include
  export CPATH="$ROOT/usr/include:$ROOT/usr/include/$ML/openblas-openmp${CPATH:+:$CPATH}"
  # Shared libraries: only the sonames the system lacks are exposed (an older copy of a
  # library the system has, e.g. libgomp, would shadow it for every program).
  RT=$REPO/.deb/rt
  rm -rf "$RT"
  mkdir -p "$RT"
  for d in "$ROOT/usr/lib/$ML" "$ROOT/lib/$ML" "$ROOT/usr/lib/$ML/openblas-openmp"; do
    [ -d "$d" ] || continue
    for f in "$d"/lib*.so.*; do
      so=$(basename "$f")
      [[ "$so" =~ \.so\.[0-9]+$ ]] || continue
      if [ "${UNMIX_CHECK_FORCE_DEBS:-0}" = 1 ] || ! ldconfig -p 2>/dev/null | grep -q "[[:space:]]$so ("; then
        ln -sfn "$f" "$RT/$so"
      fi
    done
  done
  export LD_LIBRARY_PATH="$RT${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  note "carried libraries exposed: $(ls "$RT" | tr '\n' ' ')"
  if ! command -v pkg-config >/dev/null 2>&1; then
    CMAKE_EXTRA+=("-DPKG_CONFIG_EXECUTABLE=$ROOT/usr/bin/pkgconf")
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$ROOT/usr/lib/$ML"
    note "no pkg-config on this machine: using the carried pkgconf"
  fi
else
  note "no .deb/root: using the system's libraries"
fi

# ---- 3. cuDNN and cuBLAS: the toolkit's, else the Python wheels' ------------------------------------
py_pkg_dir() { python3 -c "import nvidia.$1 as m; print(list(m.__path__)[0])" 2>/dev/null; }
any_exists() {
  local f
  for f in "$@"; do [ -e "$f" ] && return 0; done
  return 1
}
if ! any_exists /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h; then
  CUDNN_DIR=$(py_pkg_dir cudnn)
  if [ -n "$CUDNN_DIR" ] && [ -f "$CUDNN_DIR/lib/libcudnn.so.9" ]; then
    inc="$CUDNN_DIR/include"
    [ -f "$inc/cudnn.h" ] || inc="$REPO/.deb/cudnn-include"
    CMAKE_EXTRA+=("-DCUDNN_LIBRARY=$CUDNN_DIR/lib/libcudnn.so.9" "-DCUDNN_INCLUDE_DIR=$inc")
    export LD_LIBRARY_PATH="$CUDNN_DIR/lib:$LD_LIBRARY_PATH"
    note "cuDNN from the Python wheel: $CUDNN_DIR (headers: $inc)"
  else
    note "cuDNN not found in the toolkit nor as the nvidia-cudnn wheel: the configure step will fail"
  fi
fi
if ! any_exists /usr/local/cuda/lib64/libcublas.so* /usr/local/cuda/targets/x86_64-linux/lib/libcublas.so*; then
  CUBLAS_DIR=$(py_pkg_dir cublas)
  if [ -n "$CUBLAS_DIR" ]; then
    CMAKE_EXTRA+=("-DCUDA_cublas_LIBRARY=$(ls "$CUBLAS_DIR"/lib/libcublas.so.* | head -1)"
                  "-DCUDA_cublasLt_LIBRARY=$(ls "$CUBLAS_DIR"/lib/libcublasLt.so.* | head -1)")
    export CPATH="$CUBLAS_DIR/include:${CPATH:-}" LD_LIBRARY_PATH="$CUBLAS_DIR/lib:$LD_LIBRARY_PATH"
    note "cuBLAS from the Python wheel: $CUBLAS_DIR"
  fi
fi

# ---- 4. configure and build ---------------------------------------------------------------------
GEN=()
command -v ninja >/dev/null 2>&1 && [ ! -f "$BUILD/Makefile" ] && GEN=(-G Ninja)
CUDA_FLAG=-DUNMIX_CUDA=ON
[ "$GPU" = 0 ] && ! command -v nvcc >/dev/null 2>&1 && CUDA_FLAG=-DUNMIX_CUDA=AUTO
run_step configure 120 "$BUILDLOG" cmake -S "$REPO" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  "$CUDA_FLAG" -DUNMIX_DIST=AUTO -DCMAKE_CUDA_ARCHITECTURES=90 "${CMAKE_EXTRA[@]}" &&
  run_step build 300 "$BUILDLOG" cmake --build "$BUILD" -j"$JOBS"
BUILT=$?
grep -E "^(-- unmix|.*(OPENBLAS|YAML|JANSSON|ZLIB|JPEG|CHECK)_LINK_LIBRARIES)" "$BUILD/CMakeCache.txt" "$BUILDLOG" 2>/dev/null |
  sed 's/^/  /' >>"$ENVLOG"

# ---- 5. tests and sanitizers ----------------------------------------------------------------------
if [ $BUILT -eq 0 ]; then
  run_step ctest-gpu 240 "$CTESTLOG" env UNMIX_LOG=debug ctest --test-dir "$BUILD" -L gpu -V
  if [ "$GPU" = 1 ]; then
    # With a GPU present a skipped case is a failure: a backend that does not start makes
    # every case print SKIPPED, and ctest alone would still pass.
    NSKIP=$(grep -c 'SKIPPED (' "$CTESTLOG" 2>/dev/null)
    if [ "${NSKIP:-0}" -gt 0 ]; then
      record "gpu cases ran" FAIL 0 "${NSKIP} GPU cases skipped although a GPU is present"
      FAILED=1
      echo "device-check: FAIL: ${NSKIP} GPU cases skipped with a GPU present"
    else
      record "gpu cases ran" ok 0 "no GPU case skipped"
    fi
    SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    # Sanitizers slow kernels 10-100x: the suites' small mode keeps multi-block shapes but
    # drops the largest (the plain ctest run above covers those, with guards).
    # API errors are our code's own checks to report (and the contract case provokes an
    # out-of-memory on purpose), so the tools look at kernels only.
    run_step memcheck 150 "$SANLOG" env CK_FORK=no UNMIX_GPU_TEST_SMALL=1 "$SAN" --tool memcheck \
      --report-api-errors no --error-exitcode 9 "$BUILD/tests/test_gpu_ops"
    # The library-backed paths (cuBLAS/cuDNN calls, our bf16 conversion kernels, the staged
    # uploads) and a few training steps of each method.
    run_step "memcheck dense" 120 "$SANLOG" env CK_FORK=no UNMIX_GPU_TEST_SMALL=1 "$SAN" --tool memcheck \
      --report-api-errors no --error-exitcode 9 "$BUILD/tests/test_gpu_dense"
    run_step "memcheck train" 120 "$SANLOG" env CK_FORK=no UNMIX_GPU_TEST_SMALL=1 "$SAN" --tool memcheck \
      --report-api-errors no --error-exitcode 9 "$BUILD/tests/test_gpu_train"
    for tc in reduce rows topk bn pool; do
      run_step "racecheck $tc" 60 "$SANLOG" env CK_FORK=no CK_RUN_CASE=$tc UNMIX_GPU_TEST_SMALL=1 "$SAN" --tool racecheck \
        --report-api-errors no --error-exitcode 9 "$BUILD/tests/test_gpu_ops"
    done
  fi
fi

# ---- 6. benchmarks ----------------------------------------------------------------------------------
if [ $BUILT -eq 0 ] && [ "$GPU" = 1 ]; then
  run_step "bench ops" 90 "$BENCHLOG" "$BUILD/unmix" bench ops --backend cuda --seconds "$BENCH_SECONDS"
  # The issue's three steps, ours next to the official PyTorch step at matching precision.
  BS="$BUILD/unmix bench step --backend cuda --steps 10 --warmup 3"
  for prec in tf32 fp32 bf16; do
    run_step "step cifar $prec" 60 "$BENCHLOG" $BS configs/cifar10/moco_sym_unmix.yaml --set precision=$prec
  done
  run_step "step swav" 60 "$BENCHLOG" $BS configs/swav_cifar10/swav_unmix.yaml
  # SimCLR / BYOL + Un-Mix (Figure 2): Adam's update runs on the host on a GPU backend, so their
  # steps next to MoCo's show what that costs
  run_step "step simclr" 60 "$BENCHLOG" $BS configs/cifar10/simclr_unmix.yaml
  run_step "step byol" 60 "$BENCHLOG" $BS configs/cifar10/byol_unmix.yaml
  # ImageNet MoCo v2 + Un-Mix: the largest batch of 256 / 128 / 64 that fits one GPU
  # (a larger batch running out of memory is not a failure when a smaller one then runs)
  F0=$FAILED
  for b in 256 128 64; do
    if run_step "step imagenet b$b" 90 "$BENCHLOG" $BS configs/imagenet/mocov2_unmix_200.yaml --batch $b; then
      FAILED=$F0
      break
    fi
  done
  # the NCCL communicator with one rank (the id through a file; no MPI on the GPU image)
  if grep -q "NCCL ON" "$BUILDLOG" 2>/dev/null; then
    run_step "nccl 1 rank" 120 "$BENCHLOG" tools/nccl-check.sh "$BUILD" "$BUILD/nccl-check" nccl
  fi
  if python3 -c "import torch, torchvision" 2>/dev/null; then
    PB="python3 tools/bench_pytorch.py --device cuda --batch 512 --width 64 --steps 10 --warmup 3"
    run_step "pytorch cifar fp32" 60 "$BENCHLOG" $PB
    run_step "pytorch cifar tf32" 60 "$BENCHLOG" $PB --tf32
    run_step "pytorch cifar amp" 60 "$BENCHLOG" $PB --amp --channels-last
  fi
fi

# ---- 7. summary (printed last) ------------------------------------------------------------------------
{
  echo
  echo "================ device-check summary ($(($(date +%s) - T0))s of ${BUDGET}s) ================"
  [ "$GPU" = 1 ] && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  printf '%-22s %-8s %6s  %s\n' step status time notes
  for s in "${STEPS[@]}"; do echo "$s"; done
  nok=$(grep -c '^gpu-check .* ok' "$CTESTLOG" 2>/dev/null)
  nfail=$(grep -c '^gpu-check .*FAIL' "$CTESTLOG" 2>/dev/null)
  nskip=$(grep -c 'SKIPPED (' "$CTESTLOG" 2>/dev/null)
  echo "gpu-check comparisons: ${nok:-0} ok, ${nfail:-0} FAIL; cases skipped: ${nskip:-0}"
  grep '^gpu-check .*FAIL' "$CTESTLOG" 2>/dev/null | head -15
  grep -E 'Checks: [0-9]+' "$CTESTLOG" 2>/dev/null | sed 's/^[0-9]*: //' | head -4
  # What only the hardware can tell, one PASS/FAIL line each (the cases print these lines
  # only when they ran to the end).
  if [ "$GPU" = 1 ]; then
    neng=$(grep -c '^gpu-check .* engaged (probe .* ok' "$CTESTLOG" 2>/dev/null)
    [ "${neng:-0}" -eq 18 ] && echo "PASS tf32/bf16 change the arithmetic (18 of 18 GEMM/conv precision probes)" ||
      echo "FAIL tf32/bf16 change the arithmetic (${neng:-0} of 18 GEMM/conv precision probes passed)"
    if grep -q '^gpu-check conv bf16 fallbacks' "$CTESTLOG" 2>/dev/null; then
      echo "PASS bf16 conv runs natively on C, K multiples of 8 (all passes, det too); odd shapes: $(grep -h '^gpu-check conv bf16 fallbacks' "$CTESTLOG" | sed 's/.*) *//')"
    else
      echo "FAIL bf16 conv natively on C, K multiples of 8 (case failed or did not run)"
    fi
    nrow=$(grep -c 'cuDNN row ' "$CTESTLOG" 2>/dev/null)
    ndef=$(grep -c 'its default-math kernel may use TF32' "$CTESTLOG" 2>/dev/null)
    [ "${nrow:-0}" -gt 0 ] && [ "${ndef:-0}" -eq 0 ] &&
      echo "PASS cuDNN lists an FMA-only row for every fp32 conv pass (${nrow} plans logged with row and math)" ||
      echo "FAIL cuDNN conv rows: ${nrow:-0} plans logged, ${ndef:-0} fp32 passes on a default-math row"
    grep -h 'cuDNN row ' "$CTESTLOG" 2>/dev/null | sed 's/.*conv /  conv /' | sort | uniq | head -12
  fi
  # Per tolerance class, the comparison closest to its limit.
  awk '/^gpu-check .* err / { e = ""; t = "";
         for (i = 1; i < NF; i++) { if ($i == "err") e = $(i + 1); if ($i == "tol") t = $(i + 1) }
         if (t + 0 > 0 && (!(t in best) || e / t > best[t])) { best[t] = e / t; line[t] = $0 } }
       END { for (t in best) printf "closest to tol %s: %s\n", t, line[t] }' "$CTESTLOG" 2>/dev/null | sort
  grep -h 'ERROR SUMMARY' "$SANLOG" 2>/dev/null | sort | uniq -c | sed 's/^/sanitizer: /'
  grep -hE 'sgemm|slowest|^nccl-check' "$BENCHLOG" 2>/dev/null | head -6
  grep -hE '^manifest |^images/s|^achieved TFLOP|^share of GEMM|^device MiB|^projected full run|^pytorch ' "$BENCHLOG" 2>/dev/null | head -48
  [ "$FAILED" = 0 ] && echo "RESULT: all steps passed" || echo "RESULT: FAILED (see the logs in $OUT)"
} >"$SUMMARY"
cat "$SUMMARY"
exit "$FAILED"
