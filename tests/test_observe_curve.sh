#!/usr/bin/env bash
#   top, monitor and stats on a CURVE mesh (--curve, --trust): the watchers
#   join with keys of the trust directory like every other node and see
#   the nodes and their pattern tables; a node whose key is not trusted
#   is seen by none of them, and a watcher with such a key sees none of
#   the trusted nodes.
#   Loopback, a cluster of this run's own; every wait polls with a bound.
#   usage: test_observe_curve.sh MESHBUS_TOOL
set -u
tool=$1
cluster="observe-curve-$$-$RANDOM"
port=$((20000 + RANDOM % 40000))
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; exit 1; }

mkdir -p "$dir/trust"
for k in server subscriber watcher stranger; do
    "$tool" keygen "$dir/$k" >/dev/null || fail "keygen $k"
done
cp "$dir/server.pub" "$dir/subscriber.pub" "$dir/watcher.pub" "$dir/trust/"
as() { echo --cluster "$cluster" --port "$port" --curve "$dir/$1.key" --trust "$dir/trust"; }

"$tool" serve svc.secure --echo --name server $(as server) >/dev/null 2>&1 &
pids+=($!)
"$tool" sub 'secure.#' --name subscriber $(as subscriber) >/dev/null 2>&1 &
pids+=($!)
#   trusts nobody but itself: the others refuse it, and it them
mkdir -p "$dir/alone" && cp "$dir/stranger.pub" "$dir/alone/"
"$tool" sub 'secure.#' --name stranger --cluster "$cluster" --port "$port" \
    --curve "$dir/stranger.key" --trust "$dir/alone" >/dev/null 2>&1 &
pids+=($!)

"$tool" peers --expect 2 --timeout 60 $(as watcher) >/dev/null || fail "the trusted nodes did not meet"
"$tool" call svc.secure hello $(as watcher) >/dev/null || fail "call over CURVE"
"$tool" pub secure.x hi --count 3 --wait-subscribers 1 $(as watcher) >/dev/null \
    || fail "pub over CURVE"

"$tool" monitor --http 127.0.0.1:0 --interval 0.5 --name monitor $(as watcher) > "$dir/monitor.out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
    grep -qs "^monitor: http" "$dir/monitor.out" && break
    sleep 0.2
done
base=$(awk '/^monitor: / { print $2 }' "$dir/monitor.out")
[ -n "$base" ] || fail "the monitor did not serve: $(cat "$dir/monitor.out")"
ok=0
for _ in $(seq 300); do
    metrics=$(/usr/bin/python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "${base}metrics" 2>/dev/null)
    if echo "$metrics" | grep -q 'meshbus_service_served_total{.*node_name="server",service="svc.secure"} 1' \
    && echo "$metrics" | grep -q 'meshbus_subscription_received_total{.*node_name="subscriber",subject="secure.#",subscription="1"} 3'; then
        ok=1
        break
    fi
    sleep 0.2
done
[ $ok = 1 ] || fail "the monitor over CURVE lacks the pattern series: $(echo "$metrics" | grep -E 'served|received' | head)"
echo "$metrics" | grep -q 'node_name="stranger"' && fail "the untrusted node is in /metrics"
echo "monitor over CURVE: the server's service and the subscriber's subscription in /metrics; no stranger"

once=$("$tool" top --once --select server $(as watcher) 2>/dev/null) || fail "top --once over CURVE: $once"
for want in "server" "subscriber" "SERVICE (served here)" "svc.secure"; do
    echo "$once" | grep -qF "$want" || fail "top --once over CURVE lacks '$want': $once"
done
echo "$once" | grep -Eq "^stranger +[0-9a-f]{8} " && fail "top shows the untrusted node: $once"
echo "top --once over CURVE: both trusted nodes and the server's services; no stranger"

json=$("$tool" stats --json $(as watcher)) || fail "stats over CURVE"
echo "$json" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
names = {v["name"]: v for v in d["peers"].values()}
assert {"server", "subscriber"} <= set(names) and "stranger" not in names, sorted(names)
assert names["subscriber"]["patterns"]["pubsub"]["subscriptions"][0]["received"] == 3
' || fail "stats --json over CURVE: $json"
echo "stats --json over CURVE: the pattern tables of both"

#   a watcher with the stranger's key (trusted by the stranger alone) sees
#   none of the trusted nodes
alone=$("$tool" top --once --cluster "$cluster" --port "$port" --curve "$dir/stranger.key" \
        --trust "$dir/alone" 2>/dev/null)
echo "$alone" | grep -q "^meshbus top - " || fail "the untrusted watcher's top: $alone"
echo "$alone" | grep -Eq "^(server|subscriber) " && fail "an untrusted watcher sees the mesh: $alone"
echo "a watcher with an untrusted key sees none of the trusted nodes"
echo "test_observe_curve: passed"
