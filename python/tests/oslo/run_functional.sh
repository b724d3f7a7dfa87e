#!/bin/sh
#   oslo.messaging's own functional suite over meshbus:// (issue 16's
#   acceptance), run exactly as oslo runs it: unittest loader (so the
#   scenarios of notify/test_logger expand), Debian's Python first on PATH
#   (the suite starts `python3` subprocesses that must see Debian's
#   packages). Exits non-zero on any failure or error.
#
#   Usage: python/tests/oslo/run_functional.sh [PYTHONPATH-FOLDER]
#   The folder is what `scons python` builds (default build/debug/python).
#   Skipped tests are listed with the suite's own reasons (skips.py).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
#   from the test suite: the package built next to $MESHBUS_TOOL
default=$root/build/debug/python
[ -n "${MESHBUS_TOOL:-}" ] && default=$(dirname "$MESHBUS_TOOL")/../python
folder=${1:-$default}
if [ ! -d "$folder/meshbus" ]; then
    echo "run_functional: $folder has no meshbus package: run 'scons python' first" >&2
    exit 2
fi
folder=$(cd "$folder" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cd "$(mktemp -d)"
rc=0
PYTHONPATH="$folder" PATH=/usr/bin:$PATH \
RPC_TRANSPORT_URL=meshbus:// NOTIFY_TRANSPORT_URL=meshbus:// \
    /usr/bin/python3 -m testtools.run \
    oslo_messaging.tests.functional.test_functional \
    oslo_messaging.tests.functional.notify.test_logger >"$log" 2>&1 || rc=$?
grep -E '^(FAIL|ERROR):' "$log" || true
tail -n 3 "$log"
PYTHONPATH="$folder" RPC_TRANSPORT_URL=meshbus:// NOTIFY_TRANSPORT_URL=meshbus:// \
    /usr/bin/python3 "$here/skips.py"
if [ "$rc" -ne 0 ]; then
    echo "run_functional: FAILED (testtools exit $rc); full log follows" >&2
    cat "$log" >&2
fi
exit "$rc"
