#!/usr/bin/env bash
# Runs the runtime suite (test/runtimes/suite.txt) on Deno and on Node, shows each run, and
# prints its counts as the last line: "<passed> <failed>" summed over both runtimes. A runtime
# whose run fails without a failing test (it crashed, or is not installed) counts one failure.
# .ci/run adds these to bun test's counts; run alone, it checks that counting.
set -uo pipefail
cd "$(dirname "$0")/.."
total_passed=0
total_failed=0
for runtime in deno node; do
  printf '\n== runtime suite on %s\n' "$runtime" >&2
  log="$(mktemp)"
  bash test/runtimes/run-suite.sh "$runtime" >"$log" 2>&1
  status=$?
  cat "$log" >&2
  line="$(grep -E "^${runtime}: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1)"
  passed=0
  failed=0
  if [ -n "$line" ]; then
    passed="$(sed -E 's/^[a-z]+: ([0-9]+) passed.*/\1/' <<<"$line")"
    failed="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
  fi
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  echo "runtime suite on ${runtime}: ${passed} passed, ${failed} failed" >&2
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  rm -f "$log"
done
echo "$total_passed $total_failed"
