#!/usr/bin/env bash
# The web UI's browser tests (test/ui) drive Debian's Chromium through playwright-core; install
# it where it is missing. Quick and quiet when /usr/bin/chromium is there already.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: /usr/bin/chromium is missing and apt-get is not available" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium: installed, but /usr/bin/chromium is still missing" >&2; exit 1; }
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
