#!/usr/bin/env bash
#   bench_discovery.sh - time from start to ENTER
#
#   1. two nodes on loopback: two `meshbus peers --expect 1` started together
#      (own cluster and beacon port each run); time until both exit 0.
#   2. sixteen LAN hosts (tests/lab/lab.sh namespaces, needs root): one
#      `meshbus peers --iface eth0` per host; time until every host printed
#      ENTER for the 15 others (polled every 20 ms). Skipped, with the
#      reason, when not root.
#
#   Each figure is the median of RUNS runs (default 5 and 3). The time
#   includes process start (and for the LAN, `lab.sh run`): it is what a
#   script that starts nodes and waits for them sees.
#
#   usage: bench/bench_discovery.sh [--json]
#   env:   MESHBUS=path/to/meshbus (default build/release/tools/meshbus)
#          RUNS_LOOPBACK=5 RUNS_LAN=3 LAN_HOSTS=16
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MESHBUS=${MESHBUS:-$HERE/../build/release/tools/meshbus}
LAN_SH=$HERE/../tests/lab/lab.sh
RUNS_LOOPBACK=${RUNS_LOOPBACK:-5}
RUNS_LAN=${RUNS_LAN:-3}
LAN_HOSTS=${LAN_HOSTS:-16}
JSON=0
[[ ${1:-} == --json ]] && JSON=1

[[ -x $MESHBUS ]] || { echo "bench_discovery: $MESHBUS not built (scons --variant=release)" >&2; exit 2; }
MESHBUS=$(cd "$(dirname "$MESHBUS")" && pwd)/$(basename "$MESHBUS")

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

median() {      #   numbers on stdin -> median
    sort -n | awk '{ v [NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v [(NR + 1) / 2]; else print (v [NR / 2] + v [NR / 2 + 1]) / 2 }'
}

#   ---------------------------------------------------------------------
#   1. two nodes on loopback
loop_times=()
for run in $(seq "$RUNS_LOOPBACK"); do
    cluster="bdisc-$$-$run"
    port=$(( 20000 + ($$ * 7 + run) % 20000 ))
    t0=$(now_ms)
    "$MESHBUS" peers --expect 1 --timeout 10 --cluster "$cluster" --port "$port" >/dev/null &
    a=$!
    "$MESHBUS" peers --expect 1 --timeout 10 --cluster "$cluster" --port "$port" >/dev/null &
    b=$!
    wait "$a"; ra=$?
    wait "$b"; rb=$?
    t1=$(now_ms)
    if (( ra != 0 || rb != 0 )); then
        echo "bench_discovery: loopback run $run failed (exit $ra, $rb)" >&2
        exit 1
    fi
    loop_times+=( $(( t1 - t0 )) )
done
loop_med=$(printf '%s\n' "${loop_times[@]}" | median)
(( JSON )) || echo "2 nodes, loopback: median ${loop_med} ms to both ENTER (runs: ${loop_times[*]} ms)"

#   ---------------------------------------------------------------------
#   2. LAN_HOSTS hosts on an emulated LAN
lan_med=null
lan_skip=""
if [[ $(id -u) != 0 ]]; then
    lan_skip="not root: lab.sh needs CAP_SYS_ADMIN and CAP_NET_ADMIN"
elif [[ ! -x $LAN_SH ]]; then
    lan_skip="$LAN_SH not found"
fi
if [[ -n $lan_skip ]]; then
    (( JSON )) || echo "$LAN_HOSTS hosts, LAN: skipped ($lan_skip)"
else
    export LAB_PREFIX="bd$(( $$ % 10000000 ))"
    trap '"$LAN_SH" down >/dev/null 2>&1' EXIT
    if ! "$LAN_SH" up "$LAN_HOSTS" >/dev/null 2>&1; then
        echo "bench_discovery: lab.sh up $LAN_HOSTS failed" >&2
        exit 1
    fi
    #   `peers --expect 15` cannot be used here: the first host to see all
    #   15 exits and says BYE, and then no other host can ever see 15. So
    #   every host runs `peers` until stopped, and the clock stops when
    #   every host has printed an ENTER for each of the others.
    OUT=$(mktemp -d)
    lan_times=()
    for run in $(seq "$RUNS_LAN"); do
        cluster="bdlan-$$-$run"
        pids=()
        t0=$(now_ms)
        for h in $(seq "$LAN_HOSTS"); do
            "$LAN_SH" run "h$h" "$MESHBUS" peers --iface eth0 --cluster "$cluster" \
                >"$OUT/h$h.out" 2>&1 &
            pids+=( $! )        #   lab.sh run execs: this is meshbus's PID
        done
        deadline=$(( t0 + 20000 ))
        while :; do
            done_hosts=0
            for h in $(seq "$LAN_HOSTS"); do
                (( $(grep -c '^ENTER' "$OUT/h$h.out") >= LAN_HOSTS - 1 )) \
                    && done_hosts=$(( done_hosts + 1 ))
            done
            (( done_hosts == LAN_HOSTS )) && break
            (( $(now_ms) > deadline )) && break
            sleep 0.02
        done
        t1=$(now_ms)
        for pid in "${pids[@]}"; do
            kill "$pid" 2>/dev/null
        done
        for pid in "${pids[@]}"; do
            wait "$pid" 2>/dev/null
        done
        if (( done_hosts < LAN_HOSTS )); then
            echo "bench_discovery: LAN run $run: only $done_hosts of $LAN_HOSTS hosts saw all peers in 20 s" >&2
            rm -rf "$OUT"
            exit 1
        fi
        lan_times+=( $(( t1 - t0 )) )
    done
    rm -rf "$OUT"
    lan_med=$(printf '%s\n' "${lan_times[@]}" | median)
    (( JSON )) || echo "$LAN_HOSTS hosts, LAN: median ${lan_med} ms to all ENTER (runs: ${lan_times[*]} ms)"
fi

if (( JSON )); then
    printf '{"bench":"discovery","loopback_2_ms":%s,"lan_hosts":%d,"lan_ms":%s}\n' \
        "$loop_med" "$LAN_HOSTS" "$lan_med"
fi
