#!/usr/bin/env bash
# Python blocks (test/node/python-blocks.test.ts) run with the system python3; the DataFrame tests
# name /usr/bin/python3 as the interpreter and need Debian's pandas for it (python3-pandas installs
# for /usr/bin/python3 only), and the project `mage start` creates (test/cli/mage-template.test.ts)
# loads its CSV with requests. Quick and quiet when both are there already.
set -euo pipefail
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pandas, requests' >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "python: /usr/bin/python3 with pandas and requests is missing and apt-get is not available" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq python3 python3-pandas python3-requests >/dev/null
/usr/bin/python3 -c 'import pandas, requests' || { echo "python: installed, but /usr/bin/python3 cannot import pandas and requests" >&2; exit 1; }
echo "python: /usr/bin/python3 $(/usr/bin/python3 -c 'import sys, pandas, requests; print(sys.version.split()[0], "pandas", pandas.__version__, "requests", requests.__version__)')"
