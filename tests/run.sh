#!/usr/bin/env bash
#   Run every test program; print one closing line "N passed, N failed".
#   usage: run.sh --plain|--valgrind TOOL PROGRAM... [--fuzz FUZZER...]
#   Fuzzers run FUZZ_RUNS executions each (default 200000) from an empty
#   corpus in a temporary directory: a smoke test, not a campaign.
#   Scenario tests find the meshbus tool through $MESHBUS_TOOL.
set -u
mode=$1; shift
export MESHBUS_TOOL=$1; shift
export MESHBUS_SRC=$(cd "$(dirname "$0")/.." && pwd)
passed=0; failed=0; failures=()
fuzzing=0
for prog in "$@"; do
    if [ "$prog" = --fuzz ]; then fuzzing=1; continue; fi
    name=$(basename "$prog")
    echo "=== $name"
    if [ $fuzzing = 1 ]; then
        corpus=$(mktemp -d)
        "$prog" -runs="${FUZZ_RUNS:-200000}" -max_len=4096 -print_final_stats=1 \
                -artifact_prefix="$corpus/" "$corpus" 2>&1 | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY|crash-" 
        rc=${PIPESTATUS[0]}
        rm -rf "$corpus"
    elif [ "$mode" = --valgrind ]; then
        #   children (the tool) are not traced: they are tested by their own runs
        valgrind --quiet --error-exitcode=99 --leak-check=full \
                 --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                 --suppressions="$MESHBUS_SRC/tests/valgrind.supp" "$prog"
        rc=$?
    else
        "$prog"
        rc=$?
    fi
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name (exit $rc)"); fi
done
#   The pattern scenarios again with CURVE on every link (issue 6), and
#   with a cluster secret alone (HELLO MACs, connections bound to the
#   HELLO that proved them): every process they start reads its settings
#   from the environment (MESHBUS_CURVE, MESHBUS_TRUST, MESHBUS_SECRET),
#   so the same assertions hold secured.
keys=$(mktemp -d)
if "$MESHBUS_TOOL" keygen "$keys/cluster" >/dev/null && mkdir "$keys/trust" \
   && cp "$keys/cluster.pub" "$keys/trust/" \
   && head -c 32 /dev/urandom > "$keys/secret" && chmod 600 "$keys/secret"; then
    for mode in curve secret; do
        for prog in "$@"; do
            case $(basename -- "$prog") in
                test_pubsub_scenarios|test_reqrep_scenarios|test_pipeline_scenarios) ;;
                *) continue ;;
            esac
            name="$(basename -- "$prog") ($mode)"
            echo "=== $name"
            if [ $mode = curve ]; then
                MESHBUS_CURVE="$keys/cluster.key" MESHBUS_TRUST="$keys/trust" "$prog"
            else
                MESHBUS_SECRET="$keys/secret" "$prog"
            fi
            rc=$?
            if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name (exit $rc)"); fi
        done
    done
else
    failed=$((failed + 1)); failures+=("meshbus keygen (for the secured runs)")
fi
rm -rf "$keys"
for f in ${failures[@]+"${failures[@]}"}; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
