#!/usr/bin/env bash
# Runs every libFuzzer harness of a fuzz build (make build-fuzz) for SECONDS each, starting
# from the seed corpus tests/fuzz/corpus/NAME plus what earlier runs found (BUILD/corpus/NAME),
# and prints one line per harness: executions, coverage (edges), features, corpus size.
#   tools/fuzz.sh BUILD_DIR SECONDS [NAME...]
# FUZZ_RUNS=N (environment) also stops a harness after N executions, whichever comes first:
# the project's bar before a release is 1e6 executions or 30 minutes per harness.
# Exit status 1 when a harness finds a crash, leak or timeout (its input: BUILD/crash-NAME-*).
set -uo pipefail
BUILD=${1:?usage: tools/fuzz.sh BUILD_DIR SECONDS [NAME...]}
SECS=${2:?usage: tools/fuzz.sh BUILD_DIR SECONDS [NAME...]}
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$ROOT"/tests/fuzz/fuzz_*.c; do n=$(basename "$f" .c); names+=("${n#fuzz_}"); done
fi
rc=0
for n in "${names[@]}"; do
  bin="$BUILD/tests/fuzz/fuzz_$n"
  [ -x "$bin" ] || { echo "fuzz: no $bin (make build-fuzz)" >&2; rc=1; continue; }
  mkdir -p "$BUILD/corpus/$n"
  log="$BUILD/fuzz-$n.log"
  # detect_leaks: a leak on an error path is a bug too; malloc_limit: an input asking for
  # gigabytes must be refused by a size check, not attempted
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  "$bin" -max_total_time="$SECS" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$BUILD/crash-$n-" "$BUILD/corpus/$n" "$ROOT/tests/fuzz/corpus/$n" >"$log" 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  if [ $status -ne 0 ]; then
    echo "fuzz $n: FAILED after ${execs:-?} executions (see $log and $BUILD/crash-$n-*)"
    grep -m3 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/  /'
    rc=1
  else
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)
    echo "fuzz $n: ${execs:-?} executions in ${secs:-$SECS} s, coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corp:-?}"
  fi
done
exit $rc
