#!/usr/bin/env bash
# The runtime suite (test/runtimes) runs kiln's runtime-neutral tests under Deno too. Pinned:
# deno 2.9.6 was published for Linux only, so a newer pin breaks other platforms' clean installs.
set -euo pipefail
want=2.9.5
if command -v deno >/dev/null 2>&1 && deno --version | head -1 | grep -q "deno $want"; then exit 0; fi
npm install -g "deno@$want" >/dev/null 2>&1
deno --version | head -1
