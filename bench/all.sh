#!/bin/sh
#   bench/all.sh - every benchmark beside its raw alternative, N runs of
#   each alternated (run 1 of every benchmark, then run 2 of every one...,
#   so that a noisy minute of a shared machine hits all of them a little
#   rather than one of them whole), then one table: the median over the
#   runs of each figure and of its ratio, the range of the ratio, and the
#   goal of issue 20 beside it (bench/README.md says what each side does).
#
#   usage: bench/all.sh [--runs N] [--count C] [--rounds R] [--scale S]
#                       [--big] [--only REGEX] [--out FILE] [--keep DIR]
#
#   --runs N     runs of each benchmark (default 5)
#   --count C    messages / calls / jobs per round for every benchmark but
#                the handshake (200 clients)
#                (default: each benchmark's own)
#   --rounds R   rounds per run where a benchmark takes --rounds
#   --scale S    subscriptions and services of the scale rows (default 10000)
#   --big        also 10 x S over 10 subscriber nodes and 10 providers
#                (slow on a small machine)
#   --only RE    only the benchmarks whose id matches RE whole, e.g. 'ps.*|rr'
#                (ids: ps100 ps1k ps64k ps4 curve rr pl link stream hs subs
#                svcs subs10 svcs10)
#   --out FILE   also append the table, with date and machine, to FILE
#   --keep DIR   keep every run's JSON in DIR (default: a temporary one)
#
#   Env: MESHBUS (default build/release/tools/meshbus), BENCH_DIR (default
#   build/release/bench). Build them first: scons -Q -j2 --variant=release bench build/release/tools/meshbus
set -u
cd "$(dirname "$0")/.." || exit 2
MESHBUS=${MESHBUS:-build/release/tools/meshbus}
BENCH_DIR=${BENCH_DIR:-build/release/bench}
RUNS=5 COUNT='' ROUNDS='' SCALE=10000 BIG='' ONLY='.*' OUT='' KEEP=''
usage () { sed -n '9,24s/^#//p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)   RUNS=${2:?}; shift ;;
        --count)  COUNT=${2:?}; shift ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --scale)  SCALE=${2:?}; shift ;;
        --big)    BIG=1 ;;
        --only)   ONLY=${2:?}; shift ;;
        --out)    OUT=${2:?}; shift ;;
        --keep)   KEEP=${2:?}; shift ;;
        *)        usage ;;
    esac
    shift
done
for n in "$RUNS" "$SCALE" ${COUNT:+"$COUNT"} ${ROUNDS:+"$ROUNDS"}; do
    case "$n" in ''|*[!0-9]*|0) echo "bench/all.sh: '$n' is not a whole number >= 1" >&2; usage ;; esac
done
for f in "$MESHBUS" "$BENCH_DIR/bench_link" "$BENCH_DIR/bench_scale_subs" \
         "$BENCH_DIR/bench_scale_services"; do
    [ -x "$f" ] || { echo "bench/all.sh: no $f (scons -Q -j2 --variant=release bench build/release/tools/meshbus)" >&2; exit 2; }
done
if [ -n "$KEEP" ]; then
    DIR=$KEEP
    mkdir -p "$DIR" || exit 1
else
    DIR=$(mktemp -d) || exit 1
    trap 'rm -rf "$DIR"' EXIT
    trap 'exit 130' INT TERM
fi

C=${COUNT:+--count $COUNT}
R=${ROUNDS:+--rounds $ROUNDS}
#   id, then the command (one JSON object on stdout)
cmds () {
    echo "ps100   $MESHBUS bench pubsub --size 100 $C $R --json"
    echo "ps1k    $MESHBUS bench pubsub --size 1024 $C $R --json"
    echo "ps64k   $MESHBUS bench pubsub --size 65536 $C $R --json"
    echo "ps4     $MESHBUS bench pubsub --size 100 --subscribers 4 $C $R --json"
    echo "curve   $MESHBUS bench pubsub --size 100 --curve $C $R --json"
    echo "rr      $MESHBUS bench reqrep $C --json"
    echo "pl      $MESHBUS bench pipeline $C --json"
    echo "link    $MESHBUS bench link $C --json"
    echo "stream  $BENCH_DIR/bench_link $C $R --json"
    echo "hs      $MESHBUS bench handshake --json"
    echo "subs    $BENCH_DIR/bench_scale_subs --subs $SCALE $C $R --json"
    echo "svcs    $BENCH_DIR/bench_scale_services --services $SCALE $C $R --json"
    if [ -n "$BIG" ]; then
        echo "subs10  $BENCH_DIR/bench_scale_subs --subs $SCALE --nodes 10 $C $R --json"
        echo "svcs10  $BENCH_DIR/bench_scale_services --services $SCALE --providers 10 $C $R --json"
    fi
}
cmds | awk -v re="$ONLY" '$1 ~ "^(" re ")$"' >"$DIR/cmds"
[ -s "$DIR/cmds" ] || { echo "bench/all.sh: no benchmark matches '$ONLY'" >&2; exit 2; }

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run=1
while [ "$run" -le "$RUNS" ]; do
    while read -r id cmd; do
        echo "bench/all.sh: run $run of $RUNS: $id" >&2
        # shellcheck disable=SC2086  # the command is split into words on purpose
        if out=$(nice -n 5 $cmd 2>"$DIR/$id.err") && echo "$out" | grep -q '^{'; then
            echo "$out" | grep '^{' >>"$DIR/$id.jsonl"
        else
            echo $(( $(cat "$DIR/$id.jsonl.failed" 2>/dev/null || echo 0) + 1 )) \
                >"$DIR/$id.jsonl.failed"
            echo "bench/all.sh: $id failed: $(tail -n 3 "$DIR/$id.err")" >&2
        fi
    done <"$DIR/cmds"
    run=$((run + 1))
done

#   label | id | ratio key | meshbus key | other side's key | goal
cat >"$DIR/rows" <<EOF
pub-sub 100 B, 1 subscriber, msg/s | ps100 | ratio | meshbus | raw | >= 1.5
pub-sub 1 KiB, msg/s | ps1k | ratio | meshbus | raw | >= 1.3
pub-sub 64 KiB, msg/s | ps64k | ratio | meshbus | raw | >= 0.95
pub-sub 100 B, fan-out to 4, msg/s per subscriber | ps4 | ratio | meshbus | raw | >= 1.5
request-reply p50, us (lower is better) | rr | ratio | meshbus | raw | <= 1.05
request-reply p99, us (lower is better) | rr | ratio_p99 | meshbus_p99 | raw_p99 | <= 1.10
request-reply async, 3 providers, 256 in flight, calls/s | rr | async_ratio | async_meshbus | async_raw | >= 1.0
pipeline with acks vs raw PUSH/PULL without, jobs/s | pl | ratio | meshbus | raw | >= 1.0
pub-sub 100 B over CURVE, msg/s | curve | ratio | meshbus | raw | >= 2.5
link round trip p50, us (lower is better) | link | ratio | meshbus | raw | -
link one-way stream, msg/s | stream | ratio | meshbus | raw | -
CURVE handshake p50, 1000 trusted keys, us (lower is better) | hs | ratio | meshbus | raw | -
$SCALE subscriptions vs 1 on 1 node (other side: 1), msg/s | subs | ratio | many | one | >= 0.8
$SCALE services vs 1 on 1 provider (other side: 1), calls/s | svcs | ratio | many | one | >= 0.8
10 x $SCALE subscriptions over 10 nodes (other side: 1 each), msg/s | subs10 | ratio | many | one | >= 0.8
10 x $SCALE services over 10 providers (other side: 1), calls/s | svcs10 | ratio | many | one | >= 0.8
EOF
cut -d' ' -f1 "$DIR/cmds" | sed 's/.*/| & |/' >"$DIR/cmds.ids"
grep -F -f "$DIR/cmds.ids" "$DIR/rows" >"$DIR/rows.run"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
    echo "**$started**: bench/all.sh --runs $RUNS${COUNT:+ --count $COUNT}${ROUNDS:+ --rounds $ROUNDS} --scale $SCALE${BIG:+ --big}; $(nproc) x $cpu; $(git rev-parse --short HEAD 2>/dev/null || echo '?'); load average $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; ratios are meshbus / other side in the same run"
    echo
    /usr/bin/python3 bench/medians.py --table "$DIR/rows.run" "$DIR"
} >"$DIR/table"
cat "$DIR/table"
if [ -n "$OUT" ]; then
    { echo; cat "$DIR/table"; } >>"$OUT"
fi
