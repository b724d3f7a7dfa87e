#!/usr/bin/env bash
#   Shared by the command-line tests (sourced, not run).
#
#   Every meshbus process a test starts is bounded by `timeout` and joins a
#   cluster of this script's own (from its PID), so tests running at the
#   same time never meet each other's nodes. Background processes are
#   recorded and ended by PID after each check; everything a check writes
#   goes to a temporary directory removed at exit.
#
#   A script is a list of `check NAME FUNCTION` lines; a function returns 0
#   when the behaviour holds, else calls `fail WHY` (which returns 1).
#   MESHBUS_TEST_ONLY=REGEX runs only the checks whose name matches.
#   Exit status: 0 all passed, 1 some failed, 77 skipped (printed why).

set -u
export LC_ALL=C                 #  names and bodies are bytes, not characters

if [ -z "${MESHBUS_TOOL:-}" ] || [ ! -x "${MESHBUS_TOOL:-}" ]; then
    echo "SKIP: set MESHBUS_TOOL to the built meshbus tool (e.g. build/debug/tools/meshbus)"
    exit 77
fi
for t_cmd in timeout sha256sum od cmp head; do
    if ! command -v "$t_cmd" >/dev/null; then
        echo "SKIP: this test needs $t_cmd"
        exit 77
    fi
done
MB=$MESHBUS_TOOL
case $MB in /*) ;; *) MB=$PWD/$MB ;; esac

T_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)    #  the repository
T_SCRIPT=$(basename "$0" .sh)
CLUSTER="${T_SCRIPT#test_}-$$"
T_DIR=$(mktemp -d)
T_PIDS=()                       #  background processes of the current check
declare -A PID=()               #  their PIDs by the name given to bg
T_PASSED=0
T_FAILED=()
T_WHY=""
T_BOUND=${T_BOUND:-40}          #  seconds any single meshbus process may run

t_reap () {
    local p
    for p in ${T_PIDS[@]+"${T_PIDS[@]}"}; do
        kill "$p" 2>/dev/null
    done
    for p in ${T_PIDS[@]+"${T_PIDS[@]}"}; do
        wait "$p" 2>/dev/null
    done
    T_PIDS=()
    PID=()
}

t_cleanup () {
    t_reap
    rm -rf "$T_DIR"
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM
#   a tool that wrongly writes files (keygen NAME, --help.key) writes them here
cd "$T_DIR" || exit 1

#   mb SUBCMD ARGS...: the tool in the foreground, in this script's
#   cluster, bounded (exit status 124 when the bound ended it)
mb () {
    local sub=$1; shift
    timeout -k 3 "$T_BOUND" "$MB" "$sub" --cluster "$CLUSTER" "$@"
}

#   bg NAME SUBCMD ARGS...: the tool in the background, stdout in
#   $T_DIR/NAME.out, stderr in $T_DIR/NAME.err, its PID in ${PID[NAME]}
bg () {
    local name=$1 sub=$2; shift 2
    timeout -k 3 "$T_BOUND" "$MB" "$sub" --cluster "$CLUSTER" "$@" \
        >"$T_DIR/$name.out" 2>"$T_DIR/$name.err" &
    PID[$name]=$!
    T_PIDS+=($!)
}

#   bg_wait NAME: wait for a background process, return its exit status
bg_wait () {
    wait "${PID[$1]}"
}

#   fail WHY...: record why the current check failed; returns 1
fail () {
    T_WHY="$*"
    return 1
}

#   show FILE: a file's first lines for a failure message, bytes escaped
show () {
    if [ ! -s "$1" ]; then
        printf '(empty)'
    else
        #   control bytes as ^X (a tab is ^I), ends of lines as |
        head -c 400 "$1" | cat -vT | head -6 | tr '\n' '|'
    fi
}

#   expect_rc GOT WANT WHAT: compare exit statuses (124 = bound reached)
expect_rc () {
    if [ "$1" -eq "$2" ]; then return 0; fi
    if [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; then
        fail "$3: still running at its time bound (wanted exit $2)"
    else
        fail "$3: exit $1, wanted $2"
    fi
}

check () {
    local name=$1; shift
    if [ -n "${MESHBUS_TEST_ONLY:-}" ] && ! [[ $name =~ $MESHBUS_TEST_ONLY ]]; then
        return 0
    fi
    T_WHY=""
    if "$@"; then
        echo "PASS $name"
        T_PASSED=$((T_PASSED + 1))
    else
        echo "FAIL $name: ${T_WHY:-(no reason given)}"
        T_FAILED+=("$name")
    fi
    t_reap
}

finish () {
    local f
    for f in ${T_FAILED[@]+"${T_FAILED[@]}"}; do
        echo "FAILED: $f"
    done
    echo "$T_SCRIPT: ${T_PASSED} passed, ${#T_FAILED[@]} failed"
    [ ${#T_FAILED[@]} -eq 0 ]
    exit $?
}
