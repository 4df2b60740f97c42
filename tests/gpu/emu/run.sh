#!/usr/bin/env bash
# Runs the GPU op suites with the CUDA backend's kernels executed by the CPU emulator in this
# folder (no GPU needed): builds a CUDA-less core into build-emu/, rewrites the backend's .cu
# sources for emu.h (launch syntax -> emu_launcher), compiles them as C++20 and runs
# test_gpu_ops (all cases) and test_gpu_dense (GEMM/linear; cuDNN is not emulated).
#   tests/gpu/emu/run.sh [CASE ...]     e.g. run.sh topk bn   (default: every emulatable case)
# UNMIX_GPU_TEST_SMALL=1 is the default (one CPU thread per CUDA thread is slow); set it to 0
# for the full shapes. A logic or indexing bug shows as a FAIL line or a guard message.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
E=$REPO/tests/gpu/emu
B=$REPO/build-emu
export UNMIX_GPU_TEST_SMALL=${UNMIX_GPU_TEST_SMALL:-1} CK_FORK=no OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cmake -S "$REPO" -B "$B/core" -DCMAKE_BUILD_TYPE=Release -DUNMIX_CUDA=OFF -DUNMIX_DIST=OFF >/dev/null
cmake --build "$B/core" -j2 --target unmixcore >/dev/null
rm -rf "$B/src" "$B/obj" && mkdir -p "$B/src/core/backend/cuda" "$B/obj"
python3 - "$REPO" "$B" <<'PY'
import glob, os, re, sys
repo, b = sys.argv[1], sys.argv[2]
for f in glob.glob(repo + '/core/backend/cuda/*.cu') + [repo + '/core/backend/cuda/cuda_internal.cuh']:
    if f.endswith('cuda_conv.cu'):
        continue
    s = open(f).read()
    s = re.sub(r'#include <(cublas_v2|cuda_runtime|cudnn)\.h>', '#include "emu.h"', s)
    s = re.sub(r'([\w:]+(?:<[^<>;]*>)?)<<<(.*?)>>>', r'emu_launcher(\1, \2)', s, flags=re.S)
    name = os.path.basename(f)
    if name.endswith('.cu'):
        name = name[:-3] + '.cpp'
    open(os.path.join(b, 'src/core/backend/cuda', name), 'w').write(s)
PY
read -r -a BLAS_INC <<<"$(pkg-config --cflags openblas)"
CXX=(g++ -std=c++20 -O2 -g -ffp-contract=off -Wall -Wno-unused-parameter -Wno-unused-function -D_DEFAULT_SOURCE
     -DUNMIX_WITH_CUDA "-I$E" "-I$B/src" "-I$REPO" "-I$B/core/generated" "${BLAS_INC[@]}")
CC=(gcc -std=c11 -O2 -g -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DUNMIX_WITH_CUDA "-I$REPO"
    "-I$B/core/generated" "-DUNMIX_SOURCE_DIR=\"$REPO\"" "-DUNMIX_BINARY_DIR=\"$B/core\"")
for f in "$B"/src/core/backend/cuda/*.cpp "$E/emu.cpp"; do "${CXX[@]}" -c "$f" -o "$B/obj/$(basename "$f" .cpp).o" & done
wait
"${CC[@]}" -c "$REPO/core/backend/registry.c" -o "$B/obj/registry.o" # this one knows "cuda"
"${CC[@]}" -c "$REPO/tests/support/testutil.c" -o "$B/obj/testutil.o"
LIBS=$(pkg-config --libs openblas yaml-0.1 jansson zlib libjpeg check)
for t in test_gpu_ops test_gpu_dense; do
  "${CC[@]}" -c "$REPO/tests/gpu/$t.c" -o "$B/obj/$t.o"
  # shellcheck disable=SC2086
  g++ -o "$B/$t" "$B/obj/$t.o" "$B/obj/registry.o" "$B/obj/testutil.o" "$B"/obj/cuda_*.o "$B/obj/emu.o" \
    "$B/core/libunmixcore.a" $LIBS -fopenmp -lpthread -lm
done
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(elementwise pool bn rows reduce optim topk contract gemm)
rc=0
for c in "${cases[@]}"; do
  suite=test_gpu_ops
  [ "$c" = gemm ] || [ "$c" = conv ] && suite=test_gpu_dense
  echo "== $c ($suite, emulated)"
  CK_RUN_CASE=$c "$B/$suite" | grep -vE ' ok( \(|$)' || rc=1
done
exit $rc
