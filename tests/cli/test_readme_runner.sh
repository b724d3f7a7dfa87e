#!/usr/bin/env bash
#   The README runner (tests/readme_test.py) tested on a sample README
#   (tests/cli/readme_sample.rst): its passing block passes, and each
#   failing block is reported as failing, for its own reason; processes
#   left running by a block are ended.
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if [ ! -x $py ]; then echo "SKIP: needs $py"; exit 77; fi
if [ -z "${MESHBUS_TOOL:-}" ] || [ ! -x "$MESHBUS_TOOL" ]; then
    echo "SKIP: set MESHBUS_TOOL to the built meshbus tool"; exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
MESHBUS_README_TIMEOUT=8 timeout -k 5 120 $py "$here/../readme_test.py" "$here/readme_sample.rst" --repo "$here/../.." >"$out" 2>&1
rc=$?
cat "$out"
failed=0
expect () {
    if ! grep -q -- "$1" "$out"; then
        echo "FAIL runner: no line matching '$1'"
        failed=1
    fi
}
[ $rc -eq 1 ] || { echo "FAIL runner: exit $rc, wanted 1 (some blocks fail)"; failed=1; }
expect '^PASS block 1 '
expect '^FAIL block 2 .*stdout differs'
expect '^FAIL block 3 .*exit 1, expected 0'
expect '^FAIL block 4 .*background command still running'
expect '^FAIL block 5 .*still running at the block'
expect '^FAIL block 6 .*exit 0, expected 3'
expect '^FAIL readme_sample.rst:[0-9]*: a :: block'
expect '^readme_sample.rst: 7 blocks, 6 failed'
[ "$(grep -c '^FAIL' "$out")" -eq 6 ] || { echo "FAIL runner: $(grep -c '^FAIL' "$out") FAIL lines, wanted 6"; failed=1; }
for s in 617 618; do
    if pgrep -fx "sleep $s" >/dev/null; then
        echo "FAIL runner: 'sleep $s' of the sample still runs"
        failed=1
    fi
done
[ $failed = 0 ] && echo "readme runner: PASS"
exit $failed
