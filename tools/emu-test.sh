#!/usr/bin/env bash
# Runs the GPU suites (ctest label gpu) of an UNMIX_CUDA=EMU build on the emulated CUDA device
# (test infrastructure: no GPU needed) and fails if any case was SKIPPED -- on the emulator every
# GPU case must run. Used by `make test-emu` / `make test-emu-asan`.
#   tools/emu-test.sh BUILD_DIR [extra ctest args]
# Environment: EMU_SEED (thread order; printed on failure), EMU_STRICT_STREAMS=1 (defer stream
# work until a synchronising call), EMU_ALIGN=left, EMU_RACECHECK=LAUNCHES[,BLOCKS].
set -uo pipefail
B=${1:?usage: tools/emu-test.sh BUILD_DIR [ctest args]}
shift
if ! grep -q '^UNMIX_CUDA:STRING=EMU' "$B/CMakeCache.txt" 2>/dev/null; then
  echo "emu-test: $B is not an UNMIX_CUDA=EMU build" >&2
  exit 2
fi
log=$B/emu-test.log
# Shrunk shapes (never fewer checks) keep the emulated suites to minutes on 2 cores.
export UNMIX_GPU_TEST_SMALL=${UNMIX_GPU_TEST_SMALL:-1}
ctest --test-dir "$B" -L gpu -V --timeout 1800 -j"${JOBS:-2}" "$@" >"$log" 2>&1
rc=$?
grep -E '^[0-9]+: (gpu-check .*FAIL|.*:F:|.*:E:|emu: )' "$log" | head -40
sed -n '/tests passed/,$p' "$log"
ran=$(grep -cE '^[0-9]+: .*(Checks: [0-9]+)' "$log")
skipped=$(grep -E '^[0-9]+: SKIPPED' "$log" | sort -u)
if [ -n "$skipped" ]; then
  echo "emu-test: GPU cases were skipped on the emulated device (every case must run):" >&2
  echo "$skipped" >&2
  rc=1
fi
if [ "$ran" -eq 0 ]; then
  echo "emu-test: no GPU suite ran (see $log)" >&2
  rc=1
fi
[ $rc -eq 0 ] && echo "emu-test: $ran GPU suites passed on the emulated device, none skipped (log: $log)"
exit $rc
