#!/usr/bin/env bash
#   Run every test program; print one closing line "N passed, N failed".
#   usage: run.sh --plain|--valgrind TOOL PROGRAM...
#   Scenario tests find the meshbus tool through $MESHBUS_TOOL.
set -u
mode=$1; shift
export MESHBUS_TOOL=$1; shift
export MESHBUS_SRC=$(cd "$(dirname "$0")/.." && pwd)
passed=0; failed=0; failures=()
for prog in "$@"; do
    name=$(basename "$prog")
    echo "=== $name"
    if [ "$mode" = --valgrind ]; then
        #   children (the tool) are not traced: they are tested by their own runs
        valgrind --quiet --error-exitcode=99 --leak-check=full \
                 --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                 --suppressions="$MESHBUS_SRC/tests/valgrind.supp" "$prog"
    else
        "$prog"
    fi
    rc=$?
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name (exit $rc)"); fi
done
for f in ${failures[@]+"${failures[@]}"}; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
