#!/usr/bin/env bash
#   `meshbus top` driven in tmux (send-keys, capture-pane): it shows every
#   node of the mesh and the selected one's subscriptions, sorts by name
#   (and reversed) and by uptime, and quits
#   with q leaving the terminal as it was (exit 0); `top --once` prints
#   every node without escapes. Loopback, a cluster of this run's own, its
#   own tmux server; every wait polls with a functional bound.
#   usage: test_observe_top.sh MESHBUS_TOOL
set -u
tool=$1
cluster="observe-top-$$-$RANDOM"
port=$((20000 + RANDOM % 40000))
common=(--cluster "$cluster" --port "$port")
sock="observe-top-$$"
exit_file=$(mktemp)
pids=()
cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null
    rm -f "$exit_file"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
fail() { echo "FAILED: $*"; echo "--- screen:"; screen; exit 1; }
screen() { tmux -L "$sock" capture-pane -p -t top 2>/dev/null; }

#   names that sort differently from the order they start in
for name in zeta alpha mid; do
    "$tool" sub 'orders.#' --name "$name" "${common[@]}" >/dev/null 2>&1 &
    pids+=($!)
done

#   wait until text matches (grep -E), bounded by 60 s of polls
wait_screen() {
    for _ in $(seq 300); do
        screen | grep -Eq "$1" && return 0
        sleep 0.2
    done
    return 1
}
#   the names of the node rows, top to bottom
rows() { screen | awk '$1 ~ /^(alpha|mid|zeta|top)$/ && $4 ~ /^(ALIVE|SELF)$/ { print $1 }' | tr '\n' ' '; }

#   the three are up before top starts: top is the youngest node
"$tool" peers --expect 3 --timeout 60 "${common[@]}" >/dev/null || fail "the nodes did not meet"
tmux -L "$sock" -f /dev/null new-session -d -s top -x 160 -y 40 \
    "$tool top --interval 0.5 --name top ${common[*]}; echo \$? > $exit_file; sleep 600" \
    || fail "tmux did not start"
ok=0
for _ in $(seq 300); do
    [ "$(rows)" = "alpha mid top zeta " ] && { ok=1; break; }
    sleep 0.2
done
[ $ok = 1 ] || fail "not every node shown in name order (rows: $(rows))"
echo "top shows alpha, mid, top, zeta in name order"

#   the second pane: the selected node's subscriptions; k moves the
#   selection up to alpha, the first row
for _ in 1 2 3; do
    screen | grep -Eq "^alpha \(.*\) patterns" && break
    tmux -L "$sock" send-keys -t top k
    sleep 0.3
done
wait_screen "^alpha \(.*\) patterns" || fail "k did not select alpha"
wait_screen "^  orders\.# +[0-9]+ +[0-9.]+ *$" || fail "alpha's pane lacks its subscription orders.#"
echo "k selects alpha: the pattern pane shows its subscription orders.#"

tmux -L "$sock" send-keys -t top R
wait_screen "sorted by name \(reversed\)" || fail "R did not reverse"
[ "$(rows)" = "zeta top mid alpha " ] || fail "reversed order wrong: $(rows)"
echo "R: zeta, top, mid, alpha"

#   uptime, biggest first (R again first): top started after all the others
tmux -L "$sock" send-keys -t top R u
wait_screen "sorted by uptime" || fail "u did not sort by uptime"
last=$(rows | awk '{ print $NF }')
[ "$last" = top ] || fail "by uptime the youngest node (top) is not last: $(rows)"
echo "u: by uptime, top (the youngest) last: $(rows)"

tmux -L "$sock" send-keys -t top q
for _ in $(seq 300); do
    [ -s "$exit_file" ] && break
    sleep 0.2
done
[ -s "$exit_file" ] || fail "q did not quit"
status=$(cat "$exit_file")
[ "$status" = 0 ] || fail "top exited $status after q"
screen | grep -q "meshbus top" && fail "the terminal still shows top's screen after q"
echo "q: top exited 0 and gave the screen back"

once=$("$tool" top --once --sort name "${common[@]}" 2>&1) || fail "top --once failed: $once"
for name in alpha mid zeta; do
    echo "$once" | grep -Eq "^$name +[0-9a-f]{8} .* ALIVE " || fail "--once lacks $name: $once"
done
case "$once" in *$'\033'*) fail "--once printed escapes" ;; esac
echo "top --once: every node, no escapes"
echo "test_observe_top: passed"
