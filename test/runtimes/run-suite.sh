#!/usr/bin/env bash
# Runs the runtime suite (test/runtimes/suite.txt, or the files given) on one runtime:
#   test/runtimes/run-suite.sh deno|node|bun [test file...]
# Deno and Node run the bun:test files through the shim (run.ts); Bun runs them with bun test.
# Deno and Node end with "<runtime>: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/../.."
runtime="${1:-}"
shift || true
if [ "$#" -gt 0 ]; then files=("$@"); else mapfile -t files < <(grep -v -e '^#' -e '^$' test/runtimes/suite.txt); fi
case "$runtime" in
  deno)
    command -v deno >/dev/null 2>&1 || { echo "deno is not installed (.ci/setup.d/deno.sh installs it)"; echo "deno: 0 passed, 1 failed, 0 skipped"; exit 1; }
    exec deno run -A --config test/runtimes/deno.json test/runtimes/run.ts --timeout 60000 "${files[@]}" ;;
  node)
    exec node --import tsx --import ./test/runtimes/node-register.mjs test/runtimes/run.ts --timeout 60000 "${files[@]}" ;;
  bun)
    exec bun test --timeout 60000 "${files[@]}" ;;
  *)
    echo "usage: test/runtimes/run-suite.sh deno|node|bun [test file...]" >&2
    exit 2 ;;
esac
