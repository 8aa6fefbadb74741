#!/usr/bin/env bash
# The web UI's browser tests (test/ui) drive Debian's Chromium through playwright-core; install
# it where it is missing. Quick and quiet when /usr/bin/chromium is there already.
set -euo pipefail
# Renders one page headless and waits for it: the first start on a new machine builds its font
# cache and profile, which took the first browser tests past their 30 s waits (seen once, on a
# machine whose Chromium had just been installed); about a second once that is done.
warm_up() {
  timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom 'data:text/html,<p>kiln</p>' >/dev/null 2>&1 || echo "chromium: the warm-up page did not render (the browser tests will say why)" >&2
}
if [ -x /usr/bin/chromium ]; then
  warm_up
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: /usr/bin/chromium is missing and apt-get is not available" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium: installed, but /usr/bin/chromium is still missing" >&2; exit 1; }
warm_up
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
