#!/usr/bin/env bash
#   Names over the whole allowed alphabet, through real processes: for each
#   name a push/work, a call/serve and a pub/sub round trip between two
#   processes, so every announcement format (queues, services,
#   subscriptions) carries it and its parser gives it back (issue 14, D1
#   and its class: a name that collides with a format's own markers).
#
#   Names: bytes 0x21..0xff except '.', '*', '#' in tokens, tokens joined
#   by '.', 1..255 bytes. Deterministic: one name starting with each byte
#   of a sample covering every class (letters including the markers i, L,
#   S, digits, punctuation, DEL, 0x80..0xff; every allowed first byte with
#   MESHBUS_TEST_FULL=1), names of 1, 254 and 255 bytes; and random names
#   (seed printed; MESHBUS_TEST_SEED=N replays the run). A 256-byte name is
#   a usage error (exit 2) naming the 255-byte limit, for every subcommand.
#   MESHBUS_TEST_PARALLEL: names tried at once (default 4).
. "$(dirname "$0")/lib.sh"

T_BOUND=45
PARALLEL=${MESHBUS_TEST_PARALLEL:-4}
SEED=${MESHBUS_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "seed $SEED (MESHBUS_TEST_SEED=$SEED replays this run)"
RANDOM=$SEED

#   The contract's alphabet: bytes 0x21..0xff but '.', '*', '#' in tokens.
#   DEL (0x7f) is a control character like those below 0x21: refused as a
#   usage error wherever a name is given (its own check, name-byte-0x7f).
ALLOWED=()
for ((b = 0x21; b <= 0xff; b++)); do
    case $b in 35|42|46|127) ;; *) ALLOWED+=($b) ;; esac     #  '#' '*' '.' DEL
done

#   bytes_to NAME BYTE...: NAME= those bytes
bytes_to () {
    local _var=$1 _esc="" _b; shift
    for _b in "$@"; do _esc+=$(printf '\\x%02x' "$_b"); done
    printf -v "$_var" '%b' "$_esc"
}

#   random_token VAR LEN [FIRST]: LEN random allowed bytes (FIRST first)
random_token () {
    local _v=$1 _len=$2 _first=${3:-} _bytes=() _i
    [ -n "$_first" ] && { _bytes+=($_first); _len=$((_len - 1)); }
    for ((_i = 0; _i < _len; _i++)); do _bytes+=(${ALLOWED[RANDOM % ${#ALLOWED[@]}]}); done
    bytes_to "$_v" ${_bytes[@]+"${_bytes[@]}"}
}

#   random_name VAR LEN [FIRST]: LEN bytes, tokens of 1..40 bytes
random_name () {
    local _name=$1 _left=$2 _first1=${3:-} _out="" _tok _n
    while [ "$_left" -gt 0 ]; do
        _n=$((1 + RANDOM % 40))
        [ $_n -gt "$_left" ] && _n=$_left
        #   never leave room for only a '.' and an empty token
        [ $((_left - _n)) -eq 1 ] && _n=$_left
        random_token _tok $_n $_first1
        _first1=""
        _out+=$_tok
        _left=$((_left - _n))
        if [ "$_left" -gt 0 ]; then _out+=.; _left=$((_left - 1)); fi
    done
    printf -v "$_name" '%s' "$_out"
}

hex () { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | head -c 80; }

#   One name, three round trips at once; writes $d/result: "ok" or why not
round_trip () {
    local name=$1 d=$2 sep=() rc why=""
    #   a name starting with '-' goes after "--", as any positional would
    [ "${name:0:1}" = - ] && sep=(--)
    local opt=(--cluster "$CLUSTER")
    local body="body-${d##*/}"
    timeout -k 3 $T_BOUND "$MB" work "${opt[@]}" --count 1 --timeout 40 "${sep[@]}" "$name" >"$d/w.out" 2>"$d/w.err" & local w=$!
    timeout -k 3 $T_BOUND "$MB" serve "${opt[@]}" --echo --count 1 --timeout 40 "${sep[@]}" "$name" >"$d/sv.out" 2>"$d/sv.err" & local sv=$!
    timeout -k 3 $T_BOUND "$MB" sub "${opt[@]}" --count 1 --timeout 40 "${sep[@]}" "$name" >"$d/s.out" 2>"$d/s.err" & local s=$!
    timeout -k 3 $T_BOUND "$MB" push "${opt[@]}" --timeout 30 "${sep[@]}" "$name" "$body" >"$d/p.out" 2>"$d/p.err" & local p=$!
    timeout -k 3 $T_BOUND "$MB" call "${opt[@]}" --wait --timeout 30 "${sep[@]}" "$name" "$body" >"$d/c.out" 2>"$d/c.err" & local c=$!
    timeout -k 3 $T_BOUND "$MB" pub "${opt[@]}" --wait-subscribers 1 --timeout 30 "${sep[@]}" "$name" "$body" >"$d/pb.out" 2>"$d/pb.err" & local pb=$!
    wait $p; rc=$?
    [ $rc -eq 0 ] || why+=" push exit $rc ($(show "$d/p.err"));"
    wait $w; rc=$?
    [ $rc -eq 0 ] && [ "$(cat "$d/w.out")" = "$body" ] || why+=" work exit $rc printed $(show "$d/w.out") ($(show "$d/w.err"));"
    wait $c; rc=$?
    [ $rc -eq 0 ] && [ "$(cat "$d/c.out")" = "$body" ] || why+=" call exit $rc printed $(show "$d/c.out") ($(show "$d/c.err"));"
    wait $sv; rc=$?
    [ $rc -eq 0 ] || why+=" serve exit $rc ($(show "$d/sv.err"));"
    wait $pb; rc=$?
    [ $rc -eq 0 ] || why+=" pub exit $rc ($(show "$d/pb.err"));"
    wait $s; rc=$?
    #   the subject as sub prints it may be escaped; the body is plain
    [ $rc -eq 0 ] && [[ $(cat "$d/s.out") == *"	$body" ]] || why+=" sub exit $rc printed $(show "$d/s.out") ($(show "$d/s.err"));"
    echo "${why:-ok}" >"$d/result"
}

NAMES=()
LABELS=()
add () { NAMES+=("$1"); LABELS+=("$2"); }

#   one name starting with each first byte of the sample (or all)
if [ "${MESHBUS_TEST_FULL:-0}" = 1 ]; then
    FIRSTS=("${ALLOWED[@]}")
else
    #   markers of the announcement formats (i: pipeline incarnation line;
    #   0 1: pub-sub mode; L S -: pub-sub flags), letters, digits,
    #   punctuation around the forbidden ones, DEL, and the high half
    FIRSTS=(0x69 0x49 0x4c 0x53 0x2d 0x30 0x31 0x39 0x61 0x7a 0x41 0x5a 0x21 0x22 0x24 0x25
            0x2b 0x2f 0x3e 0x40 0x5c 0x7e 0x80 0xa0 0xc3 0xe2 0xff)
fi
for b in "${FIRSTS[@]}"; do
    random_name n $((1 + RANDOM % 24)) $((b))
    add "$n" "first byte $(printf '0x%02x' $((b)))"
done
random_token n 1;   add "$n" "1 byte"
random_name n 254 $((0x69)); add "$n" "254 bytes, first 'i'"
random_token n 255; add "$n" "255 bytes, one token"
random_name n 255;  add "$n" "255 bytes, tokens"
for i in $(seq "${MESHBUS_TEST_RANDOM:-12}"); do
    random_name n $((1 + RANDOM % 255))
    add "$n" "random $i"
done

names_round_trip () {
    local i j k running=() why
    for ((i = 0; i < ${#NAMES[@]}; i += PARALLEL)); do
        running=()
        for ((j = i; j < i + PARALLEL && j < ${#NAMES[@]}; j++)); do
            mkdir -p "$T_DIR/n$j.$1"
            round_trip "${NAMES[j]}" "$T_DIR/n$j.$1" &
            running+=($!)
        done
        for k in "${running[@]}"; do wait "$k"; done
        for ((j = i; j < i + PARALLEL && j < ${#NAMES[@]}; j++)); do
            why=$(head -c 900 "$T_DIR/n$j.$1/result" 2>/dev/null || echo "no result")
            if [ "$why" = ok ]; then
                echo "  ok   ${LABELS[j]} (${#NAMES[j]} bytes)"
            else
                echo "  FAIL ${LABELS[j]} (${#NAMES[j]} bytes, hex $(hex "${NAMES[j]}")...):$why"
                T_WHY+=" [${LABELS[j]}]"
            fi
        done
    done
    [ -z "$T_WHY" ] || fail "names that did not make the round trip:$T_WHY"
}

#   256 bytes: refused as a usage error that names the limit
name_256 () {
    local n sub
    random_name n 256 $((0x61))
    for sub in "push @ b" "work @" "call @ b" "serve @ --echo" "pub @ b" "sub @"; do
        local args=() a
        for a in $sub; do [ "$a" = @ ] && args+=("$n") || args+=("$a"); done
        T_BOUND=10 mb "${args[@]}" </dev/null >/dev/null 2>"$T_DIR/e"
        expect_rc $? 2 "${args[0]} with a 256-byte name" || return 1
        grep -q 255 "$T_DIR/e" || fail "${args[0]} with a 256-byte name said $(show "$T_DIR/e")" || return 1
    done
}

#   DEL: first, inside a token, alone: a usage error naming the rule,
#   for every subcommand that takes a name
name_del () {
    local n1 a b n
    random_token a 5; random_token b 5
    bytes_to n1 0x7f
    for n in "$n1$a" "$a$n1$b.$b" "$a.$n1"; do
        for sub in "push @ b" "work @" "call @ b" "serve @ --echo" "pub @ b" "sub @"; do
            local args=() w
            for w in $sub; do [ "$w" = @ ] && args+=("$n") || args+=("$w"); done
            T_BOUND=10 mb "${args[@]}" </dev/null >/dev/null 2>"$T_DIR/e"
            expect_rc $? 2 "${args[0]} with DEL in a name" || return 1
            grep -q "control character" "$T_DIR/e" \
                || fail "${args[0]} with DEL in a name said $(show "$T_DIR/e")" || return 1
        done
    done
}

check names-round-trip names_round_trip main
check name-byte-0x7f name_del
check name-256-refused name_256
finish
