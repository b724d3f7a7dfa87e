#!/usr/bin/env bash
#   One check per defect of issue 14 (D1..D16) that a shell can see, each
#   asserting what the CLI contract says instead. Real processes on
#   loopback; every process bounded; no wall-clock threshold (where the
#   issue is about "never ends", the bound itself is the check).
#   usage: MESHBUS_TOOL=build/debug/tools/meshbus tests/cli/test_cli_defects.sh
. "$(dirname "$0")/lib.sh"
SRC=$T_SRC

#   D1: a queue whose name starts with 'i' (the pipeline announcement's
#   incarnation marker) gets its job, as do its neighbours in the alphabet
d1_one () {
    local q=$1
    bg w work "$q" --count 1 --timeout 25
    mb push "$q" "job-$q" --timeout 20 >"$T_DIR/p.out" 2>"$T_DIR/p.err"
    local rc=$?
    expect_rc $rc 0 "push $q (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait w; rc=$?
    expect_rc $rc 0 "work $q" || return 1
    [ "$(cat "$T_DIR/w.out")" = "job-$q" ] || fail "work $q printed $(show "$T_DIR/w.out")"
}
d1 () {
    d1_one invoices && d1_one images.resize && d1_one i.x && d1_one i
}

#   D2: `dlq replay --id N` replays that dead letter (--job is the same);
#   the global node --id does not take the flag
d2 () {
    local dir=$T_DIR/outbox
    bg nack work q2 --exec 'cat >/dev/null; exit 3' --timeout 25
    printf 'alpha\nbeta\n' | mb push q2 - --durable "$dir" --max-deliveries 1 --timeout 15 2>"$T_DIR/p1.err"
    kill "${PID[nack]}"; wait "${PID[nack]}"
    mb dlq list q2 --durable "$dir" >"$T_DIR/list" 2>"$T_DIR/list.err"
    expect_rc $? 0 "dlq list (stderr: $(show "$T_DIR/list.err"))" || return 1
    local a b
    a=$(awk -F'\t' '$NF == "alpha" {print $1}' "$T_DIR/list")
    b=$(awk -F'\t' '$NF == "beta" {print $1}' "$T_DIR/list")
    [ -n "$a" ] && [ -n "$b" ] || fail "dlq list shows no dead letters alpha and beta: $(show "$T_DIR/list")" || return 1
    [ "$a" != "$b" ] || fail "alpha and beta have the same job id $a: $(show "$T_DIR/list")" || return 1
    bg w work q2 --count 1 --timeout 25
    mb dlq replay q2 --durable "$dir" --id "$a" --timeout 15 2>"$T_DIR/r.err"
    expect_rc $? 0 "dlq replay --id $a (stderr: $(show "$T_DIR/r.err"))" || return 1
    bg_wait w
    [ "$(cat "$T_DIR/w.out")" = alpha ] || fail "replay --id $a delivered $(show "$T_DIR/w.out")" || return 1
    bg w work q2 --count 1 --timeout 25
    mb dlq replay q2 --durable "$dir" --job "$b" --timeout 15 2>"$T_DIR/r.err"
    expect_rc $? 0 "dlq replay --job $b (stderr: $(show "$T_DIR/r.err"))" || return 1
    bg_wait w
    [ "$(cat "$T_DIR/w.out")" = beta ] || fail "replay --job $b delivered $(show "$T_DIR/w.out")"
}

#   Not in the issue, found by D2's first version: two producers run one
#   after the other on one outbox gave their jobs the same id, so
#   `dlq replay --job ID` cannot name one of them
outbox_ids () {
    local dir=$T_DIR/outbox2 p
    bg nack work q2b --exec 'cat >/dev/null; exit 3' --timeout 25
    for p in alpha beta; do
        mb push q2b "$p" --durable "$dir" --max-deliveries 1 --timeout 15 2>/dev/null
    done
    mb dlq list q2b --durable "$dir" >"$T_DIR/list" 2>"$T_DIR/list.err"
    expect_rc $? 0 "dlq list (stderr: $(show "$T_DIR/list.err"))" || return 1
    [ "$(wc -l <"$T_DIR/list")" -eq 2 ] || fail "dlq list: $(show "$T_DIR/list"), wanted 2 dead letters" || return 1
    [ "$(cut -f1 "$T_DIR/list" | sort -u | wc -l)" -eq 2 ] \
        || fail "two runs on one outbox gave the same job id: $(show "$T_DIR/list")"
}

#   D3: SUBCMD --help / -h prints its usage on stdout, exits 0, acts not
#   (keygen writes no file; nothing blocks: the bound is the check)
d3 () {
    local sub opt
    mkdir "$T_DIR/d3" || return 1
    for sub in demo peers stats pub sub serve call push work dlq keygen bench send recv; do
        for opt in --help -h; do
            (cd "$T_DIR/d3" && T_BOUND=10 mb "$sub" "$opt" </dev/null >"$T_DIR/h.out" 2>"$T_DIR/h.err")
            expect_rc $? 0 "$sub $opt (stderr: $(show "$T_DIR/h.err"))" || return 1
            grep -q -- "$sub" "$T_DIR/h.out" \
                || fail "$sub $opt: usage on stdout does not name $sub: $(show "$T_DIR/h.out")" || return 1
        done
    done
    local made
    made=$(ls -A "$T_DIR/d3")
    [ -z "$made" ] || fail "--help wrote files: $made"
}

#   D4: a stdin line over 65535 bytes is one message of exactly its length
d4 () {
    head -c 100000 /dev/zero | tr '\0' 'x' >"$T_DIR/long"
    { cat "$T_DIR/long"; printf '\nend\n'; } >"$T_DIR/in"
    bg w work q4 --exec 'wc -c' --count 2 --timeout 25
    mb push q4 - --timeout 20 <"$T_DIR/in" 2>"$T_DIR/p.err"
    expect_rc $? 0 "push - (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait w
    [ "$(sort -n "$T_DIR/w.out" | tr -d ' ' | tr '\n' ,)" = "3,100000," ] \
        || fail "push -: jobs of sizes $(tr '\n' , <"$T_DIR/w.out"), wanted 100000 and 3" || return 1
    bg s sub y.4 --raw --count 2 --timeout 25
    mb pub y.4 - --wait-subscribers 1 --timeout 20 <"$T_DIR/in" 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub - (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait s
    { cat "$T_DIR/long"; printf end; } | cmp -s - "$T_DIR/s.out" \
        || fail "pub -: sub --raw got $(wc -c <"$T_DIR/s.out") bytes, wanted 100003"
}

#   D5: NUL bytes survive `push -`, `pub -` and show (escaped) in sub
d5 () {
    printf 'a\0b\n' >"$T_DIR/in"
    bg w work q5 --exec 'od -An -tx1' --count 1 --timeout 25
    mb push q5 - --timeout 20 <"$T_DIR/in" 2>"$T_DIR/p.err"
    expect_rc $? 0 "push - (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait w
    [ "$(tr -s ' \n' ' ' <"$T_DIR/w.out")" = " 61 00 62 " ] \
        || fail "push -: the worker got bytes $(cat "$T_DIR/w.out"), wanted 61 00 62" || return 1
    bg raw sub y.5 --raw --count 1 --timeout 25
    bg txt sub y.5 --count 1 --timeout 25
    mb pub y.5 - --wait-subscribers 2 --timeout 20 <"$T_DIR/in" 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub - (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait raw; bg_wait txt
    printf 'a\0b' | cmp -s - "$T_DIR/raw.out" \
        || fail "pub -: sub --raw got $(show "$T_DIR/raw.out"), wanted a NUL b" || return 1
    grep -qix 'y\.5	a\\x00b' "$T_DIR/txt.out" \
        || fail "sub printed $(show "$T_DIR/txt.out"), wanted y.5<TAB>a\\x00b"
}

#   D6: newline, tab, CR and backslash in a body are escaped: one line each
d6 () {
    bg s sub y.6 --count 1 --timeout 25
    mb pub y.6 $'a\nb\tc\rd\\e' --wait-subscribers 1 --timeout 20 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait s
    printf 'y.6\ta\\nb\\tc\\rd\\\\e\n' | cmp -s - "$T_DIR/s.out" \
        || fail "sub printed $(show "$T_DIR/s.out"), wanted 'y.6<TAB>a\\nb\\tc\\rd\\\\e' and a newline"
}

#   D7: a closed stdout ends sub, work and peers (exit 0): `| head -1`
d7 () {
    local rc
    bg p pub x.7 tick --count 1000 --interval-ms 20 --timeout 30
    timeout -k 3 20 bash -c '"$0" sub "x.#" --cluster "$1" | head -1 >"$2"; exit ${PIPESTATUS[0]}' \
        "$MB" "$CLUSTER" "$T_DIR/sub.head"
    rc=$?
    expect_rc $rc 0 "sub 'x.#' | head -1" || return 1
    [ "$(cat "$T_DIR/sub.head")" = "x.7	tick" ] || fail "head got $(show "$T_DIR/sub.head")" || return 1
    bg push push q7 job --count 20 --timeout 30
    timeout -k 3 20 bash -c '"$0" work q7 --cluster "$1" | head -1 >"$2"; exit ${PIPESTATUS[0]}' \
        "$MB" "$CLUSTER" "$T_DIR/work.head"
    rc=$?
    expect_rc $rc 0 "work q7 | head -1" || return 1
    [ "$(cat "$T_DIR/work.head")" = job ] || fail "head got $(show "$T_DIR/work.head")" || return 1
    #   two other nodes: peers has a second line to write after head left
    bg n1 sub nobody.1 --timeout 30
    bg n2 sub nobody.2 --timeout 30
    timeout -k 3 20 bash -c '"$0" peers --cluster "$1" | head -1 >/dev/null; exit ${PIPESTATUS[0]}' \
        "$MB" "$CLUSTER"
    rc=$?
    expect_rc $rc 0 "peers | head -1"
}

#   D8: work --job-timeout kills the command (its whole process group) and
#   nacks the job: the producer sees it redelivered, then dead-lettered
d8 () {
    local pids=$T_DIR/sleepers rc
    : >"$pids"
    T_BOUND=25 bg w work q8 --exec "sleep 30 & echo \$! >>'$pids'; wait" --job-timeout 1 --timeout 12
    mb push q8 slow --max-deliveries 2 --timeout 20 2>"$T_DIR/p.err"
    rc=$?
    expect_rc $rc 1 "push (its job can only be dead-lettered; stderr: $(show "$T_DIR/p.err"))" || return 1
    grep -qi 'dead' "$T_DIR/p.err" || fail "push stderr does not report the dead letter: $(show "$T_DIR/p.err")" || return 1
    bg_wait w; rc=$?
    expect_rc $rc 0 "work --job-timeout 1 --timeout 12 (stderr: $(show "$T_DIR/w.err"))" || return 1
    grep -q '^NACK' "$T_DIR/w.err" || fail "work printed no NACK line: $(show "$T_DIR/w.err")" || return 1
    [ "$(wc -l <"$pids")" -ge 2 ] || fail "the command ran $(wc -l <"$pids") times, wanted 2 (one redelivery)" || return 1
    local p i
    for p in $(cat "$pids"); do
        #   bounded: a killed child may be reaped by init a moment later
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then
            kill "$p"
            fail "the command's child $p outlived its job timeout"
            return 1
        fi
    done
}

#   D9: a timeout must be a finite number in range: usage error, at once
d9 () {
    local sub v
    for v in nan inf -1 1e999; do
        for sub in "sub x.9" "pub x.9 b" "call s9 b" "push q9 b" "work q9" "peers --expect 1"; do
            T_BOUND=10 mb $sub --timeout "$v" >/dev/null 2>"$T_DIR/e"
            expect_rc $? 2 "$sub --timeout $v" || return 1
        done
    done
}

#   D10: an unknown flag is a usage error, never a body
d10 () {
    bg s sub a.10 --count 1 --timeout 25
    mb pub a.10 --bogus >/dev/null 2>"$T_DIR/e"
    expect_rc $? 2 "pub a.10 --bogus" || return 1
    grep -q -- '--bogus' "$T_DIR/e" || fail "the error does not name --bogus: $(show "$T_DIR/e")" || return 1
    mb pub a.10 end --wait-subscribers 1 --timeout 20 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub a.10 end" || return 1
    bg_wait s
    [ "$(cat "$T_DIR/s.out")" = "a.10	end" ] || fail "the subscriber got $(show "$T_DIR/s.out") first" || return 1
    local sub
    for sub in "sub x" "call s b" "serve s --echo" "push q b" "work q" "peers" "stats" "keygen k" \
               "dlq list q --durable $T_DIR" "recv" "send p b"; do
        T_BOUND=10 mb $sub --bogus >/dev/null 2>&1
        expect_rc $? 2 "$sub --bogus" || return 1
    done
}

#   D11: a plain `pub` reaches a subscriber that was already running; with
#   nobody subscribed, pub says so on stderr
d11 () {
    bg s sub y.11 --count 1 --timeout 25
    mb peers --expect 1 --timeout 20 >/dev/null 2>&1
    expect_rc $? 0 "peers --expect 1 (the subscriber's node)" || return 1
    mb pub y.11 hello 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub y.11 hello" || return 1
    bg_wait s
    expect_rc $? 0 "sub y.11 --count 1 (got $(show "$T_DIR/s.out"))" || return 1
    [ "$(cat "$T_DIR/s.out")" = "y.11	hello" ] || fail "sub printed $(show "$T_DIR/s.out")" || return 1
    mb pub nobody.listens.11 hello 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub with no subscriber" || return 1
    grep -qi 'no subscribers' "$T_DIR/p.err" || fail "pub with no subscriber said $(show "$T_DIR/p.err")"
}

#   D12: dlq on a directory that does not exist: exit 1, nothing created
d12 () {
    mb dlq list q12 --durable "$T_DIR/does/not/exist" >/dev/null 2>"$T_DIR/e"
    expect_rc $? 1 "dlq list on a missing dir" || return 1
    grep -qi 'no such' "$T_DIR/e" || fail "dlq said $(show "$T_DIR/e")" || return 1
    [ ! -e "$T_DIR/does" ] || fail "dlq list created $T_DIR/does/not/exist"
}

#   D13: key and secret files readable by others are refused with the
#   chmod line; bare --curve is a usage error; --curve-ephemeral works
d13 () {
    local k=$T_DIR/k13
    (cd "$T_DIR" && T_BOUND=10 mb keygen k13 >/dev/null 2>&1) || fail "keygen k13" || return 1
    T_BOUND=10 mb sub x.13 --curve "$k.key" --timeout 1 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 0 "sub --curve with a 0600 key (stderr: $(show "$T_DIR/e"))" || return 1
    chmod 644 "$k.key"
    T_BOUND=10 mb sub x.13 --curve "$k.key" --timeout 1 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 1 "sub --curve with a 0644 key" || return 1
    grep -q "chmod 600 $k.key" "$T_DIR/e" || fail "0644 key: stderr $(show "$T_DIR/e")" || return 1
    MESHBUS_CURVE=$k.key T_BOUND=10 mb sub x.13 --timeout 1 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 1 "MESHBUS_CURVE with a 0644 key" || return 1
    grep -q "chmod 600" "$T_DIR/e" || fail "0644 key from the environment: stderr $(show "$T_DIR/e")" || return 1
    head -c 32 /dev/urandom >"$T_DIR/secret"
    chmod 640 "$T_DIR/secret"
    T_BOUND=10 mb sub x.13 --secret "$T_DIR/secret" --timeout 1 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 1 "sub --secret with a 0640 file" || return 1
    grep -q "chmod 600 $T_DIR/secret" "$T_DIR/e" || fail "0640 secret: stderr $(show "$T_DIR/e")" || return 1
    T_BOUND=10 mb sub x.13 --timeout 1 --curve >/dev/null 2>"$T_DIR/e"
    expect_rc $? 2 "bare --curve" || return 1
    T_BOUND=10 mb sub x.13 --curve-ephemeral --timeout 1 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 0 "--curve-ephemeral (stderr: $(show "$T_DIR/e"))"
}

#   D14: usage errors all exit 2; --version
d14 () {
    local args
    while IFS= read -r args; do
        eval "set -- $args"
        #   in this script's cluster, should a wrong "yes" start a node
        case ${1:-} in ''|nosuchcommand) ;; *) set -- "$1" --cluster "$CLUSTER" "${@:2}" ;; esac
        timeout -k 3 10 "$MB" "$@" </dev/null >/dev/null 2>"$T_DIR/e"
        expect_rc $? 2 "meshbus $args" || return 1
        [ -s "$T_DIR/e" ] || fail "meshbus $args: exit 2 without a word on stderr" || return 1
    done <<'EOF'

nosuchcommand
pub
sub
call
serve s
push
work
keygen
dlq
dlq list
dlq frob q --durable d
sub a.b c.d
sub x --count x
sub x --count -1
pub 'a..b' x
push 'q.*' x
call s b --retries many
work q --prefetch 0
peers --expect
stats --timeout
EOF
    timeout 10 "$MB" --version >"$T_DIR/v" 2>"$T_DIR/e"
    expect_rc $? 0 "meshbus --version" || return 1
    grep -Eqx 'meshbus [0-9]+\.[0-9]+\.[0-9]+' "$T_DIR/v" || fail "--version printed $(show "$T_DIR/v")" || return 1
    timeout 10 "$MB" --help >"$T_DIR/h" 2>&1
    expect_rc $? 0 "meshbus --help" || return 1
    grep -qi 'exit' "$T_DIR/h" && grep -qi 'usage error' "$T_DIR/h" \
        || fail "meshbus --help does not document the exit statuses (0, 1, 2 = usage error)"
}

#   D15: each failure in its own words
d15 () {
    T_BOUND=10 mb sub x.15 --since 99999999 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 2 "sub --since 99999999" || return 1
    ! grep -qi 'not a number' "$T_DIR/e" || fail "--since 99999999 said $(show "$T_DIR/e")" || return 1
    local long
    long=$(head -c 300 /dev/zero | tr '\0' a)
    T_BOUND=10 mb pub "$long" x >/dev/null 2>"$T_DIR/e"
    expect_rc $? 2 "pub with a 300-byte subject" || return 1
    grep -q '255' "$T_DIR/e" || fail "300-byte subject: $(show "$T_DIR/e") (no 255-byte limit named)" || return 1
    T_BOUND=20 mb call s15 x --wait --timeout 2 >/dev/null 2>"$T_DIR/e"
    expect_rc $? 1 "call --wait with no provider" || return 1
    grep -q 'no responders for s15' "$T_DIR/e" || fail "call --wait with no provider said $(show "$T_DIR/e")" || return 1
    T_BOUND=10 mb sub 'orders.>' --timeout 1 >/dev/null 2>"$T_DIR/e"
    local rc=$?
    [ $rc -ne 124 ] || fail "sub 'orders.>' --timeout 1 did not end" || return 1
    grep -q "#" "$T_DIR/e" || fail "sub 'orders.>' gave no hint that '#' is the wildcard: $(show "$T_DIR/e")"
}

#   D16: every flag of the contract is in --help; the sources point only
#   to documents that exist
d16 () {
    local line sub flag
    while read -r sub line; do
        T_BOUND=10 mb "$sub" --help </dev/null >"$T_DIR/h" 2>/dev/null
        for flag in $line; do
            grep -q -- "$flag" "$T_DIR/h" || fail "meshbus $sub --help does not list $flag" || return 1
        done
    done <<'EOF'
pub --file -H --count --wait-subscribers --no-wait --timeout --interval-ms --linger --ctype --data-dir
sub --count --timeout --raw --json --durable --last-value --block --no-replay --since
call --file -H --timeout --retries --wait --all --ctype
serve --echo --exec --count --timeout
push --file -H --count --durable --sync --no-wait --timeout --ack-timeout --max-deliveries --backoff-ms --hold --quiet
work --exec --job-timeout --prefetch --count --timeout --delay-ms --quiet
dlq --durable --job
recv --count --timeout
peers --expect --timeout
stats --json
EOF
    { timeout 10 "$MB" --help; T_BOUND=10 mb pub --help; } >"$T_DIR/h" 2>/dev/null
    for flag in --name --cluster --iface --port --seed --no-beacon --bind --id --suspect-ms \
                --gone-ms --beacon-ms --hwm --verbose --curve --curve-ephemeral --trust --secret \
                MESHBUS_CLUSTER MESHBUS_SEEDS MESHBUS_IFACE MESHBUS_PORT MESHBUS_CURVE \
                MESHBUS_TRUST MESHBUS_SECRET; do
        grep -q -- "$flag" "$T_DIR/h" || fail "neither meshbus --help nor pub --help lists $flag" || return 1
    done
    local ref f missing=""
    #   every C source and header of the library, the tool and the
    #   examples, wherever they live (tests build paths in format strings)
    local files d dirs=()
    for d in src patterns tools include examples; do [ -d "$SRC/$d" ] && dirs+=("$SRC/$d"); done
    mapfile -t files < <(find ${dirs[@]+"${dirs[@]}"} -type f \( -name '*.c' -o -name '*.h' \))
    for f in ${files[@]+"${files[@]}"}; do
        for ref in $(grep -oE '[A-Za-z0-9_./-]+\.md' "$f" | sort -u); do
            [ -e "$SRC/$ref" ] || [ -e "$SRC/docs/$ref" ] || missing+=" ${f#$SRC/}->$ref"
        done
    done
    [ -z "$missing" ] || fail "sources point to documents that do not exist:$missing"
}

check D1-queue-starting-with-i d1
check D2-dlq-replay-id d2
check outbox-job-ids-unique-across-runs outbox_ids
check D3-subcommand-help d3
check D4-long-stdin-line d4
check D5-nul-bytes d5
check D6-sub-escapes-newline d6
check D7-closed-stdout-ends d7
check D8-work-job-timeout d8
check D9-timeout-nan d9
check D10-unknown-flag d10
check D11-pub-reaches-running-sub d11
check D12-dlq-missing-dir d12
check D13-key-file-mode d13
check D14-usage-exit-2-version d14
check D15-messages d15
check D16-help-lists-flags d16
finish
