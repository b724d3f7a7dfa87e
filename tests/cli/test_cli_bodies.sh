#!/usr/bin/env bash
#   Bodies are bytes (issue 14): every byte value and lengths at and around
#   every limit, through real processes, equal on both ends:
#     pub --file / sub --raw --count 1          (bytes compared)
#     push --file / work --exec sha256sum       (sha256 compared)
#     call --file / serve --echo                (bytes compared)
#   Lengths 0, 1, 256 (every byte value), 65535, 65536, 1 MiB; with
#   MESHBUS_TEST_FULL=1 also the body limit (256 MiB: through, and one byte
#   more: refused with exit 1, never split). `pub -` / `push -` with a
#   100 000-byte line arrive as one message of that length (D4), lines with
#   NUL bytes survive (D5); sub --json flags a binary body as base64.
. "$(dirname "$0")/lib.sh"

T_BOUND=60
LIMIT=$((256 * 1024 * 1024))

#   all three round trips of one body file at once
through_all () {
    local f=$1 tag=$2 t=${3:-20} rc why="" want p failed=0
    want=$(sha256sum <"$f" | cut -d' ' -f1)
    bg s.$tag sub "b.$tag" --raw --count 1 --timeout $((t + 5))
    bg w.$tag work "q.$tag" --exec sha256sum --count 1 --timeout $((t + 5))
    bg sv.$tag serve "s.$tag" --echo --count 1 --timeout $((t + 5))
    bg pub.$tag pub "b.$tag" --file "$f" --wait-subscribers 1 --timeout $t
    bg push.$tag push "q.$tag" --file "$f" --timeout $t
    bg call.$tag call "s.$tag" --file "$f" --wait --timeout $t
    for p in pub push call; do
        bg_wait "$p.$tag"; rc=$?
        [ $rc -eq 0 ] || { why+=" $p exit $rc ($(show "$T_DIR/$p.$tag.err"));"; failed=1; }
    done
    #   a sender that failed leaves its receiver waiting: end it now
    [ $failed = 0 ] || for p in s w sv; do kill "${PID[$p.$tag]}" 2>/dev/null; done
    for p in s w sv; do
        bg_wait "$p.$tag"; rc=$?
        [ $rc -eq 0 ] || why+=" $p exit $rc ($(show "$T_DIR/$p.$tag.err"));"
    done
    cmp -s "$f" "$T_DIR/s.$tag.out" \
        || why+=" sub --raw got $(wc -c <"$T_DIR/s.$tag.out") bytes, sha256 $(sha256sum <"$T_DIR/s.$tag.out" | head -c 12)...;"
    [ "$(cut -d' ' -f1 "$T_DIR/w.$tag.out")" = "$want" ] \
        || why+=" work's sha256sum printed $(show "$T_DIR/w.$tag.out");"
    cmp -s "$f" "$T_DIR/call.$tag.out" \
        || why+=" call printed $(wc -c <"$T_DIR/call.$tag.out") bytes, sha256 $(sha256sum <"$T_DIR/call.$tag.out" | head -c 12)...;"
    [ -z "$why" ] || fail "$(wc -c <"$f") bytes (sha256 ${want:0:12}...):$why"
}

#   $T_DIR/all: bytes 0..255 in order
make_all () {
    local esc="" b
    for ((b = 0; b < 256; b++)); do esc+=$(printf '\\%03o' $b); done
    printf '%b' "$esc" >"$T_DIR/all"
    [ "$(od -An -v -tu1 "$T_DIR/all" | tr -s ' \n' '  ')" = " $(seq -s ' ' 0 255) " ] \
        || fail "could not write the 256-byte file"
}

every_byte () {
    make_all || return 1
    through_all "$T_DIR/all" all
}

length () {
    local n=$1
    head -c "$n" /dev/urandom >"$T_DIR/len$n"
    through_all "$T_DIR/len$n" "l$n" ${2:-20}
}

len0 () { length 0; }
len1 () { printf '\0' >"$T_DIR/nul"; through_all "$T_DIR/nul" nul; }
len65535 () { length 65535; }
len65536 () { length 65536; }
len1m () { length $((1024 * 1024)); }
limit () { T_BOUND=300 length $LIMIT 240; }

#   one byte over the limit: refused by each sender, exit 1, nothing sent
over_limit () {
    local f=$T_DIR/over sub
    head -c $((LIMIT + 1)) /dev/zero >"$f"
    bg s sub b.over --count 1 --timeout 40
    for sub in "pub b.over" "push q.over" "call s.over"; do
        mb $sub --file "$f" --timeout 20 >/dev/null 2>"$T_DIR/e"
        expect_rc $? 1 "$sub --file (limit + 1 bytes)" || return 1
        grep -qi 'limit\|too \(long\|large\|big\)' "$T_DIR/e" || fail "$sub said $(show "$T_DIR/e")" || return 1
    done
    #   three times each: how the line comes through the pipe varies, and
    #   main at 145c2b6 let `pub -` through about one time in two
    local try
    for sub in "pub b.over" "push q.over"; do
        for try in 1 2 3; do
            { cat "$f"; echo; } | mb $sub - --timeout 20 >/dev/null 2>"$T_DIR/e"
            expect_rc $? 1 "$sub - with a line of limit + 1 bytes, try $try (stderr: $(show "$T_DIR/e"))" || return 1
        done
    done
    mb call s.over - --timeout 20 <"$f" >/dev/null 2>"$T_DIR/e"
    expect_rc $? 1 "call - with limit + 1 bytes on stdin (stderr: $(show "$T_DIR/e"))" || return 1
    kill "${PID[s]}"; wait "${PID[s]}"
    [ ! -s "$T_DIR/s.out" ] || fail "a refused body reached the subscriber: $(show "$T_DIR/s.out")"
}

#   D4: a 100 000-byte stdin line is one message of exactly that length
long_line () {
    head -c 300000 /dev/urandom | tr -d '\n' | head -c 100000 >"$T_DIR/line"
    [ "$(wc -c <"$T_DIR/line")" -eq 100000 ] || fail "could not make the line" || return 1
    { cat "$T_DIR/line"; echo; } >"$T_DIR/line.in"
    bg w work q.line --exec sha256sum --count 1 --timeout 25
    bg s sub b.line --raw --count 1 --timeout 25
    mb push q.line - --timeout 20 <"$T_DIR/line.in" 2>"$T_DIR/p.err"
    expect_rc $? 0 "push - (stderr: $(show "$T_DIR/p.err"))" || return 1
    mb pub b.line - --wait-subscribers 1 --timeout 20 <"$T_DIR/line.in" 2>"$T_DIR/pb.err"
    expect_rc $? 0 "pub - (stderr: $(show "$T_DIR/pb.err"))" || return 1
    bg_wait w; bg_wait s
    [ "$(cut -d' ' -f1 "$T_DIR/w.out")" = "$(sha256sum <"$T_DIR/line" | cut -d' ' -f1)" ] \
        || fail "push -: the job is not the line: $(show "$T_DIR/w.out")" || return 1
    cmp -s "$T_DIR/line" "$T_DIR/s.out" \
        || fail "pub -: sub --raw got $(wc -c <"$T_DIR/s.out") bytes, not the 100000 of the line"
}

#   D5: lines with NUL bytes (at the start, inside, only NULs) survive
nul_lines () {
    printf 'a\0b\n\0start\n\0\0\0\n' >"$T_DIR/nul.in"
    local l1 l2 l3
    l1=$(printf 'a\0b' | sha256sum | cut -d' ' -f1)
    l2=$(printf '\0start' | sha256sum | cut -d' ' -f1)
    l3=$(printf '\0\0\0' | sha256sum | cut -d' ' -f1)
    bg w work q.nul --exec sha256sum --count 3 --timeout 25
    bg s sub b.nul --raw --count 3 --timeout 25
    mb push q.nul - --timeout 20 <"$T_DIR/nul.in" 2>"$T_DIR/p.err"
    expect_rc $? 0 "push - (stderr: $(show "$T_DIR/p.err"))" || return 1
    mb pub b.nul - --wait-subscribers 1 --timeout 20 <"$T_DIR/nul.in" 2>"$T_DIR/pb.err"
    expect_rc $? 0 "pub - (stderr: $(show "$T_DIR/pb.err"))" || return 1
    bg_wait w; bg_wait s
    [ "$(cut -d' ' -f1 "$T_DIR/w.out" | sort | tr '\n' ' ')" = "$(printf '%s\n' $l1 $l2 $l3 | sort | tr '\n' ' ')" ] \
        || fail "push -: the jobs are not the three lines (sha256 $(cut -c1-12 "$T_DIR/w.out" | tr '\n' ' '))" || return 1
    #   one publisher: its messages arrive in order
    printf 'a\0b\0start\0\0\0' | cmp -s - "$T_DIR/s.out" \
        || fail "pub -: sub --raw got $(show "$T_DIR/s.out")"
}

#   sub --json: headers, and the body as text or base64 (flagged)
json () {
    local py=/usr/bin/python3
    [ -x $py ] || { echo "  (no $py: sub --json not checked)"; return 0; }
    make_all || return 1
    bg s sub 'b.json.*' --json --count 2 --timeout 25
    mb pub b.json.text 'héllo "x"' -H k1=v1 -H k2=v=2 --wait-subscribers 1 --timeout 20 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub -H (stderr: $(show "$T_DIR/p.err"))" || return 1
    mb pub b.json.bin --file "$T_DIR/all" --timeout 20 2>"$T_DIR/p.err"
    expect_rc $? 0 "pub --file (stderr: $(show "$T_DIR/p.err"))" || return 1
    bg_wait s
    $py - "$T_DIR/s.out" "$T_DIR/all" >"$T_DIR/json.why" 2>&1 <<'EOF'
import base64, json, sys
lines = open(sys.argv[1], 'rb').read().splitlines()
assert len(lines) == 2, "%d lines" % len(lines)
text, binary = [json.loads(l) for l in lines]
assert text["subject"] == "b.json.text", text
assert text["body"] == 'héllo "x"' and text["body_encoding"] == "text", text
assert text["headers"] == {"k1": "v1", "k2": "v=2"}, text["headers"]
for key in ("publisher", "seq", "content_type"):
    assert key in text, "no %s in %s" % (key, text)
assert "name" in text["publisher"] and "id" in text["publisher"], text["publisher"]
assert binary["body_encoding"] == "base64", binary
assert base64.b64decode(binary["body"]) == open(sys.argv[2], 'rb').read(), "base64 body differs"
EOF
    [ $? -eq 0 ] || fail "sub --json: $(tail -1 "$T_DIR/json.why") (output $(show "$T_DIR/s.out"))"
}

check every-byte-value every_byte
check length-0 len0
check length-1-nul len1
check length-65535 len65535
check length-65536 len65536
check length-1MiB len1m
check D4-100000-byte-stdin-line long_line
check D5-nul-in-stdin-lines nul_lines
check sub-json-headers-base64 json
if [ "${MESHBUS_TEST_FULL:-0}" = 1 ]; then
    check length-limit-256MiB limit
    check length-over-limit-refused over_limit
else
    echo "(the 256 MiB body limit is checked with MESHBUS_TEST_FULL=1)"
fi
finish
