#!/usr/bin/env bash
#   bench_idle.sh - CPU an idle node spends keeping 2 peers alive
#
#   Starts three `meshbus peers` on loopback (own cluster and beacon port),
#   waits until each has seen ENTER for the other two, then reads utime +
#   stime of one of them from /proc/PID/stat at t0 and t0 + SECONDS and
#   prints the CPU share over that window (100% = one core). What it pays
#   for: beacons, heartbeats (PING after outbound silence), liveness checks.
#
#   usage: bench/bench_idle.sh [SECONDS (default 20)] [--json]
#   env:   MESHBUS=path/to/meshbus (default build/release/tools/meshbus)
#          RUNS=1 (repeat and print the median)
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MESHBUS=${MESHBUS:-$HERE/../build/release/tools/meshbus}
WINDOW=20
JSON=0
for arg in "$@"; do
    case $arg in
        --json) JSON=1 ;;
        *) WINDOW=$arg ;;
    esac
done
RUNS=${RUNS:-1}
[[ -x $MESHBUS ]] || { echo "bench_idle: $MESHBUS not built (scons --variant=release)" >&2; exit 2; }

TMP=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ticks() {       #   utime + stime of a process, in clock ticks
    #   field 2 (comm) may hold spaces: cut after the closing parenthesis
    local stat
    stat=$(<"/proc/$1/stat") || return 1
    stat=${stat##*) }
    set -- $stat
    echo $(( ${12} + ${13} ))
}

run_ns() {      #   CPU time of all threads in ns (schedstat: finer than ticks)
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'
}

hz=$(getconf CLK_TCK)
precise=()
results=()
for run in $(seq "$RUNS"); do
    cluster="bidle-$$-$run"
    port=$(( 20000 + ($$ * 11 + run) % 20000 ))
    pids=()
    for i in 1 2 3; do
        "$MESHBUS" peers --cluster "$cluster" --port "$port" --name "idle$i" >"$TMP/n$i.out" &
        pids+=( $! )
    done
    #   connected: every node printed ENTER twice
    deadline=$(( SECONDS + 15 ))
    while :; do
        ok=1
        for i in 1 2 3; do
            (( $(grep -c '^ENTER' "$TMP/n$i.out") >= 2 )) || ok=0
        done
        (( ok )) && break
        if (( SECONDS > deadline )); then
            echo "bench_idle: the three nodes did not meet within 15 s" >&2
            exit 1
        fi
        sleep 0.1
    done
    pid=${pids[0]}
    t0=$(date +%s%N); c0=$(ticks "$pid"); s0=$(run_ns "$pid")
    sleep "$WINDOW"
    t1=$(date +%s%N); c1=$(ticks "$pid"); s1=$(run_ns "$pid")
    if grep -q '^EXIT\|^SUSPECT' "$TMP"/n*.out; then
        echo "bench_idle: a peer was suspected or lost while idle:" >&2
        grep -h '^EXIT\|^SUSPECT' "$TMP"/n*.out >&2
    fi
    results+=( $(awk -v c=$(( c1 - c0 )) -v hz="$hz" -v ns=$(( t1 - t0 )) \
                 'BEGIN { printf "%.3f", 100 * c / hz / (ns / 1e9) }') )
    precise+=( $(awk -v r=$(( s1 - s0 )) -v ns=$(( t1 - t0 )) 'BEGIN { printf "%.3f", 100 * r / ns }') )
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pids=()
done
median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{ v [NR] = $1 } END {
    if (NR % 2) print v [(NR + 1) / 2]; else printf "%.3f\n", (v [NR / 2] + v [NR / 2 + 1]) / 2 }')
if (( JSON )); then
    printf '{"bench":"idle","peers":2,"seconds":%s,"cpu_percent":%s,"schedstat_percent":[%s]}\n' \
        "$WINDOW" "$median" "$(IFS=,; echo "${precise[*]}")"
else
    echo "idle node with 2 peers: ${median}% CPU over ${WINDOW} s (utime+stime, median of $RUNS; runs: ${results[*]}; clock tick $((1000 / hz)) ms)"
    echo "  same window from schedstat (ns, all threads): ${precise[*]} %"
fi
