#!/usr/bin/env bash
#   bench/scale.sh - N nodes, on loopback or on H lab hosts: time until all
#   see all, idle CPU and RSS per node (and what the RSS is made of), false
#   SUSPECT/EXIT over a hold, time to EXIT after kill -9 of a node (KILLS
#   times, median), and on lab hosts time to EXIT after a host is cut.
#
#   usage: bench/scale.sh [N [H [HOLD_S [KILLS]]]]   (H = 0: loopback; else lab hosts, root)
#   env:   MESHBUS=path/to/meshbus (default build/release/tools/meshbus)
#          STAGGER_MS=M: start the nodes M ms apart (default 0: all at once)
#   Times include process start. CPU: utime+stime from /proc over the hold.
#   Kill and cut times are seen by node n0 (on h1), polled every ~2 ms: a
#   fork of grep per poll, so they are upper bounds.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MESHBUS=${MESHBUS:-$HERE/../build/release/tools/meshbus}
LAB=$HERE/../tests/lab/lab.sh
N=${1:-16}; H=${2:-0}; HOLD=${3:-10}; KILLS=${4:-20}
GONE=3000       # the default gone timeout, for the cut
[[ -x $MESHBUS ]] || { echo "scale: $MESHBUS not built" >&2; exit 2; }
(( KILLS < N - 2 )) || KILLS=$(( N > 3? N - 3: 0 ))
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
    (( ${STAGGER_MS:-0} )) && sleep "$(awk -v m="$STAGGER_MS" 'BEGIN{print m / 1000}')"
done
deadline=$(( t0 + 120000 ))
while :; do
    #   one grep for all the files: a grep per node per turn took a core
    ok=$(grep -c '^ENTER' "$OUT"/n* | awk -F: -v want=$((N - 1)) '$2 >= want {k++} END {print k + 0}')
    (( ok == N )) && break
    (( $(now_ms) > deadline )) && { echo "scale: only $ok of $N saw all within 120 s"; break; }
    sleep 0.05
done
t_all=$(( $(now_ms) - t0 ))
sleep 2    # settle: gossip and the first probe rounds
ticks() { local s=0 p; for p in "${pids[@]}"; do s=$(( s + $(awk '{print $14 + $15}' /proc/$p/stat 2>/dev/null || echo 0) )); done; echo $s; }
verdicts() { cat "$OUT"/n* | grep -cE '^(SUSPECT|EXIT)'; }
v0=$(verdicts); c0=$(ticks); w0=$(now_ms)
sleep "$HOLD"
c1=$(ticks); w1=$(now_ms); v1=$(verdicts)
hz=$(getconf CLK_TCK)
cpu=$(awk -v c=$((c1 - c0)) -v hz=$hz -v ms=$((w1 - w0)) -v n=$N 'BEGIN{printf "%.3f", 100 * c / hz / (ms / 1000) / n}')
rss=$(for p in "${pids[@]}"; do awk '/VmRSS/{print $2}' /proc/$p/status; done | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
#   what one node's RSS is made of: anonymous memory (heap, thread stacks
#   touched) against file pages (the shared libraries, shared with the
#   other nodes)
anon=$(awk '/^Anonymous:/{print $2}' /proc/${pids[0]}/smaps_rollup)
file=$(awk '/^Rss:/{r=$2} /^Anonymous:/{a=$2} END{print r - a}' /proc/${pids[0]}/smaps_rollup)
heap=$(awk '/\[heap\]/{h=1; next} h && /^Rss:/{print $2; exit}' /proc/${pids[0]}/smaps)
threads=$(ls /proc/${pids[0]}/task | wc -l)
#   kill -9 of KILLS nodes in turn, from the last (never n0's host's own
#   nodes on the lab): the time until n0 printed its EXIT
kill_ms=(); reasons=""
victim=$((N - 1))
for k in $(seq 1 "$KILLS"); do
    while (( H && victim % H == 0 )); do victim=$((victim - 1)); done
    k0=$(now_ms)
    kill -9 "${pids[$victim]}"; wait "${pids[$victim]}" 2>/dev/null
    while ! grep -q "^EXIT n$victim " "$OUT/n0"; do
        (( $(now_ms) - k0 > 30000 )) && break
        sleep 0.002
    done
    kill_ms+=($(( $(now_ms) - k0 )))
    reasons+=" $(grep -h "^EXIT n$victim " "$OUT/n0" | awk '{print $5}')"
    victim=$((victim - 1))
    sleep 0.3
done
kill_med=$(printf '%s\n' "${kill_ms[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
kill_max=$(printf '%s\n' "${kill_ms[@]}" | sort -n | tail -1)
reasons=$(echo $reasons | tr ' ' '\n' | sort | uniq -c | awk '{printf "%s %s ", $1, $2}')
echo "nodes $N hosts $H (started ${STAGGER_MS:-0} ms apart): all see all ${t_all} ms; idle CPU per node ${cpu} % of a core over ${HOLD} s;" \
     "SUSPECT/EXIT while held: $((v1 - v0)) (since start: $v1);" \
     "RSS per node (median) ${rss} KiB (n0: anonymous ${anon} KiB of which heap ${heap:-?} KiB," \
     "file-backed ${file} KiB, ${threads} threads);" \
     "kill -9 -> EXIT at n0: median ${kill_med} ms, max ${kill_max} ms of ${KILLS} (${reasons% })"
#   a host cut: h2 leaves the bridge; n0 (on h1) must see its nodes EXIT
if (( H >= 2 )); then
    cut=(); for i in $(seq 0 $((N - 1))); do (( i % H == 1 && i <= victim )) && cut+=($i); done
    c0=$(now_ms)
    "$LAB" cut h2 >/dev/null
    for i in "${cut[@]}"; do
        while ! grep -q "^EXIT n$i " "$OUT/n0"; do
            (( $(now_ms) - c0 > 60000 )) && break
            sleep 0.005
        done
    done
    t_cut=$(( $(now_ms) - c0 ))
    creasons=$(for i in "${cut[@]}"; do grep -h "^EXIT n$i " "$OUT/n0" | awk '{print $5}'; done | sort | uniq -c | awk '{printf "%s %s ", $1, $2}')
    echo "host cut (h2, ${#cut[@]} nodes): all EXIT at n0 within ${t_cut} ms (gone ${GONE} ms; ${creasons% })"
fi
