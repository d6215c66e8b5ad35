#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS on a copy of its committed seed corpus
# (tests/fuzz/corpus/<target>/: seeds, and every input that once crashed, kept
# as a regression). A crash, a leak of the properties the targets check, or a
# timeout fails the run; the input is left in OUT/artifacts for a regression.
# Usage: tests/fuzz/run.sh BIN_DIR SECONDS [OUT]
set -euo pipefail
bin=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
out=${3:-$(dirname "$bin")/fuzz-out}
mkdir -p "$out/artifacts"
status=0
for target in fuzz_cursor fuzz_jwt fuzz_http fuzz_plugin; do
  name=${target#fuzz_}
  work="$out/corpus-$name"
  mkdir -p "$work"
  echo "== $target: ${seconds}s from $(ls "$here/corpus/$name" | wc -l) seeds"
  # timeout: a target that does not exit after its run is a failure, not a hang of make test
  if ! ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      timeout --kill-after=10 $((seconds + 120)) "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$name-" "$work" "$here/corpus/$name" >"$out/$name.log" 2>&1; then
    echo "$target FAILED; the last lines of $out/$name.log:"
    tail -40 "$out/$name.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov: " "$out/$name.log" | tail -2
  fi
done
exit $status
