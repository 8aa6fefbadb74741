#!/usr/bin/env bash
# The project `mage start` creates (test/cli/mage-template.test.ts) loads its CSV with requests:
# Debian's python3-requests for /usr/bin/python3 (pandas comes from python.sh). Quick and quiet
# when it is there already.
set -euo pipefail
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import requests' >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "python-requests: /usr/bin/python3 with requests is missing and apt-get is not available" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq python3 python3-requests >/dev/null
/usr/bin/python3 -c 'import requests' || { echo "python-requests: installed, but /usr/bin/python3 cannot import requests" >&2; exit 1; }
echo "python-requests: /usr/bin/python3 requests $(/usr/bin/python3 -c 'import requests; print(requests.__version__)')"
