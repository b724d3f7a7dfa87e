#!/usr/bin/env bash
#   The command line as a session uses it (issue 14 items 4, 6, 8 and the
#   environment): Ctrl-C ends a command cleanly (a durable push commits what
#   it took, a subscriber exits 0), a progress line shows on a terminal and
#   never in a pipe or with --quiet, MESHBUS_* variables stand in for the
#   common flags and a flag wins over them, and direct messages go to a
#   peer by name or id (an ambiguous name is refused).
. "$(dirname "$0")/lib.sh"

#   Ctrl-C during `push - --durable`: what was read is committed, the
#   process ends at once with BYE, and the next producer on DIR delivers it
ctrl_c_durable_push () {
    mkfifo "$T_DIR/in"
    timeout -k 3 30 "$MB" push cc.jobs - --durable "$T_DIR/ob" --cluster "$CLUSTER" \
        <"$T_DIR/in" >"$T_DIR/push.out" 2>"$T_DIR/push.err" &
    local push=$!
    T_PIDS+=($push)
    exec 7>"$T_DIR/in"
    printf 'one\ntwo\nthree\n' >&7
    #   the lines are taken once the producer has them in its outbox: wait
    #   for the outbox file, then interrupt while stdin is still open
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$T_DIR/ob/data.mdb" ] || [ -n "$(ls "$T_DIR/ob" 2>/dev/null)" ] && break
        sleep 0.1
    done
    sleep 1
    kill -INT $push
    wait $push
    local rc=$?
    exec 7>&-
    [ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "push did not end on SIGINT" || return 1
    grep -q "committed 3 jobs" "$T_DIR/push.err" \
        || fail "interrupted push said $(show "$T_DIR/push.err")" || return 1
    bg worker work cc.jobs --count 3 --timeout 20
    mb push cc.jobs --count 0 --durable "$T_DIR/ob" --timeout 20 2>"$T_DIR/again.err"
    expect_rc $? 0 "the next producer on the outbox" || return 1
    bg_wait worker
    [ "$(sort "$T_DIR/worker.out" | tr '\n' ' ')" = "one three two " ] \
        || fail "worker got $(show "$T_DIR/worker.out")"
}

#   Ctrl-C ends a subscriber with exit 0 and it says BYE: its peer sees it
#   leave at once (EXIT bye, not after the gone timeout)
ctrl_c_sub_says_bye () {
    bg peers peers --timeout 20 --gone-ms 30000 --suspect-ms 20000
    bg sub sub 'cc.#' --name ccsub --timeout 20
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "^ENTER ccsub" "$T_DIR/peers.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "^ENTER ccsub" "$T_DIR/peers.out" || fail "peers never saw ccsub" || return 1
    kill -INT "${PID[sub]}"
    bg_wait sub
    expect_rc $? 0 "sub after SIGINT" || return 1
    for ((i = 0; i < 100; i++)); do
        grep -q "^EXIT ccsub" "$T_DIR/peers.out" && break
        sleep 0.1
    done
    grep -q "^EXIT ccsub.*bye" "$T_DIR/peers.out" \
        || fail "no EXIT bye for the interrupted sub: $(show "$T_DIR/peers.out")"
}

#   A progress line on a terminal (script(1) gives the tool a pty), none
#   in a pipe, none with --quiet
progress_only_on_a_terminal () {
    command -v script >/dev/null || { echo "SKIP: no script(1)"; return 0; }
    bg worker work pg.jobs --count 60 --timeout 30 --quiet
    script -qec "timeout -k 3 30 '$MB' push pg.jobs --count 60 --cluster '$CLUSTER' --timeout 30" \
        /dev/null >"$T_DIR/tty.out" 2>&1
    expect_rc $? 0 "push on a terminal" || return 1
    bg_wait worker
    grep -q "pushed [0-9]*, acked" "$T_DIR/tty.out" \
        || fail "no progress line on a terminal: $(show "$T_DIR/tty.out")" || return 1
    grep -q "done [0-9]*" "$T_DIR/worker.err" && fail "work --quiet showed progress" && return 1
    bg worker2 work pg.jobs --count 60 --timeout 30
    mb push pg.jobs --count 60 --timeout 30 2>"$T_DIR/pipe.err"
    expect_rc $? 0 "push in a pipe" || return 1
    bg_wait worker2
    ! grep -q "pushed\|acked" "$T_DIR/pipe.err" \
        || fail "progress in a pipe: $(show "$T_DIR/pipe.err")" || return 1
    script -qec "timeout -k 3 30 '$MB' push pg.jobs --count 60 --quiet --cluster '$CLUSTER' --timeout 2" \
        /dev/null >"$T_DIR/quiet.out" 2>&1
    ! grep -q "pushed [0-9]*, acked" "$T_DIR/quiet.out" \
        || fail "progress with --quiet: $(show "$T_DIR/quiet.out")"
}

#   MESHBUS_CLUSTER stands in for --cluster; the flag wins over it
environment_and_flag () {
    bg sub sub 'env.#' --count 1 --timeout 20
    MESHBUS_CLUSTER=$CLUSTER timeout -k 3 20 "$MB" pub env.a 'from the environment' \
        --wait-subscribers 1 --timeout 10 2>"$T_DIR/pub.err"
    expect_rc $? 0 "pub with MESHBUS_CLUSTER" || return 1
    bg_wait sub
    grep -q "from the environment" "$T_DIR/sub.out" \
        || fail "sub got $(show "$T_DIR/sub.out")" || return 1
    #   another cluster in the environment, ours as a flag: the flag wins
    bg sub2 sub 'env.#' --count 1 --timeout 20
    MESHBUS_CLUSTER=elsewhere-$$ timeout -k 3 20 "$MB" pub env.b 'flag wins' \
        --cluster "$CLUSTER" --wait-subscribers 1 --timeout 10 2>"$T_DIR/pub2.err"
    expect_rc $? 0 "pub with --cluster over MESHBUS_CLUSTER" || return 1
    bg_wait sub2
    grep -q "flag wins" "$T_DIR/sub2.out" || fail "sub2 got $(show "$T_DIR/sub2.out")" || return 1
    #   a bad value from the environment is a usage error too
    MESHBUS_PORT=nope timeout -k 3 20 "$MB" peers --timeout 1 2>"$T_DIR/port.err"
    expect_rc $? 2 "MESHBUS_PORT=nope"
}

#   send by name and by id; an ambiguous name is refused, naming the fix
direct_messages () {
    bg recv recv --name rcv --count 2 --timeout 20
    mb send rcv 'by name' --name snd --timeout 10
    expect_rc $? 0 "send by name" || return 1
    local id
    id=$(mb peers --expect 1 --timeout 10 | awk '$2 == "rcv" { print $3; exit }')
    [ ${#id} -eq 32 ] || fail "no id for rcv from peers" || return 1
    mb send "$id" $'by id\twith a tab' --name snd --timeout 10
    expect_rc $? 0 "send by id" || return 1
    bg_wait recv
    #   the sender's name, a tab, the body escaped as sub does
    [ "$(cat "$T_DIR/recv.out")" = $'snd\tby name\nsnd\tby id\\twith a tab' ] \
        || fail "recv printed $(show "$T_DIR/recv.out")" || return 1
    bg twin1 recv --name twin --timeout 15
    bg twin2 recv --name twin --timeout 15
    mb peers --expect 2 --timeout 10 >/dev/null
    mb send twin 'which one?' --timeout 5 2>"$T_DIR/twin.err"
    expect_rc $? 1 "send to an ambiguous name" || return 1
    grep -q "2 peers are called twin" "$T_DIR/twin.err" \
        || fail "ambiguous send said $(show "$T_DIR/twin.err")"
}

check ctrl-c-durable-push ctrl_c_durable_push
check ctrl-c-sub-says-bye ctrl_c_sub_says_bye
check progress-only-on-a-terminal progress_only_on_a_terminal
check environment-and-flag environment_and_flag
check direct-messages direct_messages
finish
