#!/usr/bin/env bash
#   bench/scale.sh - N nodes, on loopback or on H lab hosts: time until all
#   see all, idle CPU and RSS per node, false SUSPECT/EXIT over a hold, time
#   to EXIT after kill -9 of one node.
#
#   usage: bench/scale.sh [N [H [HOLD_S]]]   (H = 0: loopback; else lab hosts, root)
#   env:   MESHBUS=path/to/meshbus (default build/release/tools/meshbus)
#   Times include process start. CPU: utime+stime from /proc over the hold.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MESHBUS=${MESHBUS:-$HERE/../build/release/tools/meshbus}
LAB=$HERE/../tests/lab/lab.sh
N=${1:-16}; H=${2:-0}; HOLD=${3:-10}
[[ -x $MESHBUS ]] || { echo "scale: $MESHBUS not built" >&2; exit 2; }
now_ms() { date +%s%3N; }
OUT=$(mktemp -d); cluster="scale-$$"; port=$(( 20000 + $$ % 10000 ))
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; (( H )) && "$LAB" down >/dev/null 2>&1; rm -rf "$OUT"; }
trap cleanup EXIT
if (( H )); then
    [[ $(id -u) == 0 ]] || { echo "scale: lab hosts need root; skipped"; exit 0; }
    export LAB_PREFIX="sc$(( $$ % 100000 ))"
    "$LAB" up "$H" >/dev/null 2>&1 || { echo "scale: lab.sh up $H failed; skipped"; exit 0; }
fi
t0=$(now_ms)
for i in $(seq 0 $((N - 1))); do
    if (( H )); then
        "$LAB" run "h$((1 + i % H))" "$MESHBUS" peers --name "n$i" --iface eth0 \
            --cluster "$cluster" --port "$port" >"$OUT/n$i" 2>&1 &
    else
        "$MESHBUS" peers --name "n$i" --cluster "$cluster" --port "$port" >"$OUT/n$i" 2>&1 &
    fi
    pids+=($!)
done
deadline=$(( t0 + 120000 ))
while :; do
    ok=0
    for i in $(seq 0 $((N - 1))); do
        (( $(grep -c '^ENTER' "$OUT/n$i") >= N - 1 )) && ok=$((ok + 1))
    done
    (( ok == N )) && break
    (( $(now_ms) > deadline )) && { echo "scale: only $ok of $N saw all within 120 s"; break; }
    sleep 0.05
done
t_all=$(( $(now_ms) - t0 ))
sleep 2    # settle: gossip and the first probe rounds
ticks() { local s=0 p; for p in "${pids[@]}"; do s=$(( s + $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0) )); done; echo $s; }
before=$(grep -c '' "$OUT"/n* | awk -F: '{s+=$2} END{print s}')
c0=$(ticks); w0=$(now_ms)
sleep "$HOLD"
c1=$(ticks); w1=$(now_ms)
hz=$(getconf CLK_TCK)
cpu=$(awk -v c=$((c1 - c0)) -v hz=$hz -v ms=$((w1 - w0)) -v n=$N 'BEGIN{printf "%.3f", 100 * c / hz / (ms / 1000) / n}')
rss=$(for p in "${pids[@]}"; do awk '/VmRSS/{print $2}' /proc/$p/status; done | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
false_events=$(cat "$OUT"/n* | grep -cE '^(SUSPECT|EXIT)')
#   kill -9 of the last node: time until every other node printed its EXIT
victim=$((N - 1)); k0=$(now_ms)
kill -9 "${pids[$victim]}"
while :; do
    seen=0
    for i in $(seq 0 $((N - 2))); do grep -q "^EXIT n$victim " "$OUT/n$i" && seen=$((seen + 1)); done
    (( seen == N - 1 )) && break
    (( $(now_ms) - k0 > 60000 )) && break
    sleep 0.005
done
t_kill=$(( $(now_ms) - k0 ))
reason=$(grep -h "^EXIT n$victim " "$OUT/n0" | awk '{print $5}')
echo "nodes $N hosts ${H:-0}: all see all ${t_all} ms; idle CPU per node ${cpu} % of a core over ${HOLD} s;" \
     "RSS per node (median) ${rss} KiB; SUSPECT/EXIT while held: ${false_events};" \
     "kill -9 -> EXIT ($reason) on all ${t_kill} ms (polled every 5 ms, includes grep)"
