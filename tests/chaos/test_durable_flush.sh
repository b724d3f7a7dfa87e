#!/usr/bin/env bash
#   A --durable push says "committed", and sends the job to a worker, only
#   once the commit is flushed to the disk: seen under strace, not through
#   another process reading the outbox (the page cache survives SIGKILL,
#   so visibility alone proves nothing about a power cut).
#
#   The trace (strace -f -y: every descriptor with its path) is walked in
#   order: a write to the outbox file through a descriptor opened without
#   O_DSYNC makes it dirty, an fdatasync / fsync / msync of it makes it
#   clean; a write through an O_DSYNC descriptor (LMDB's meta page) is on
#   the disk when it returns. At the "committed" line and at the first
#   send that carries the job's body, the outbox must be clean (every
#   write to it flushed) and flushed at least once. Both commit modes: --sync
#   (a commit per job) and the default group commit.
source "$(dirname "$0")/../cli/lib.sh"

if ! command -v strace >/dev/null; then
    echo "SKIP: strace is not installed (./install-deps.sh installs it)"
    exit 77
fi

#   trace_says_flushed TRACE MARK: 0 if the walk above holds, else a
#   reason on stdout
trace_says_flushed () {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import re, sys
trace, mark = sys.argv[1], sys.argv[2]
OUTBOX = "pipeline-outbox.lmdb>"
dsync_fds = set()        # descriptors of the outbox opened with O_DSYNC
dirty = False            # outbox written since its last flush
syncs = 0                # flushes of the outbox seen
seen_commit = seen_send = False
pending = {}             # pid -> the start of an <unfinished ...> line
for raw in open(trace, errors="replace"):
    pid, _, line = raw.rstrip("\n").partition(" ")
    line = line.strip()
    if line.endswith("<unfinished ...>"):
        pending[pid] = line[: -len("<unfinished ...>")]
        continue
    m = re.match(r"<\.\.\. \w+ resumed>(.*)", line)
    if m:
        line = pending.pop(pid, "") + m.group(1)
    call = line.split("(", 1)[0]
    if call == "openat" and "pipeline-outbox.lmdb\"" in line and "O_DSYNC" in line:
        fd = re.search(r"= (\d+)", line)
        if fd:
            dsync_fds.add(fd.group(1))
        continue
    fdm = re.match(r"\w+\((\d+)<([^>]*)>", line)
    on_outbox = fdm is not None and (fdm.group(2) + ">").endswith(OUTBOX)
    if on_outbox and call in ("pwrite64", "pwritev", "pwritev2", "write", "writev"):
        if fdm.group(1) not in dsync_fds:
            dirty = True
    elif on_outbox and call in ("fdatasync", "fsync", "msync") and "= 0" in line:
        dirty = False
        syncs += 1
    elif call == "write" and line.startswith("write(2") and "committed " in line:
        seen_commit = True
        if dirty or syncs == 0:
            print("'committed' written with the outbox %s" %
                  ("not flushed since its last write" if dirty else "never flushed"))
            sys.exit(1)
    elif call in ("sendto", "sendmsg", "write", "writev") and mark in line and not on_outbox:
        if not seen_send:
            seen_send = True
            if dirty or syncs == 0:
                print("the job was sent with the outbox not flushed: %s" % line[:120])
                sys.exit(1)
if not seen_commit:
    print("no 'committed' line in the trace")
    sys.exit(1)
if not seen_send:
    print("the job's body was never seen sent (strace -s too short?)")
    sys.exit(1)
EOF
}

TRACED=openat,fdatasync,fsync,msync,pwrite64,pwritev,pwritev2,write,writev,sendto,sendmsg

#   durable_push_flushes MODE...: a worker, then one traced durable push
durable_push_flushes () {
    local mark="durable-flush-$$-$RANDOM"
    bg worker work flush.q --count 1 --timeout 30
    #   the worker is announced (a call that waits stands for a sleep)
    mb peers --expect 1 --timeout 10 >/dev/null 2>&1
    timeout -k 3 "$T_BOUND" strace -f -y -s 4096 -o "$T_DIR/trace" \
        -e "trace=$TRACED" \
        "$MB" push flush.q "$mark" --durable "$T_DIR/box$1" "${@:2}" --timeout 20 -q \
        --cluster "$CLUSTER" >"$T_DIR/push.out" 2>"$T_DIR/push.err"
    expect_rc $? 0 "the traced push" || return 1
    bg_wait worker
    expect_rc $? 0 "the worker" || return 1
    grep -qx "$mark" "$T_DIR/worker.out" \
        || { fail "the worker printed $(show "$T_DIR/worker.out")"; return 1; }
    local why
    why=$(trace_says_flushed "$T_DIR/trace" "$mark") || { fail "$why"; return 1; }
}

sync_mode () { durable_push_flushes 1 --sync; }
group_mode () { durable_push_flushes 2; }

check sync_commit_flushed_before_committed_and_sent sync_mode
check group_commit_flushed_before_committed_and_sent group_mode
finish
