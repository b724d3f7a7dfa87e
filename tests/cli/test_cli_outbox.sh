#!/usr/bin/env bash
#   The producer's job ids and the durable outbox on a full disk (issue 19,
#   tests/chaos/README.md "What the soak found in the library", 1 to 3).
#
#   Job ids never go back for one producer id: a worker's duplicate filter
#   is keyed by (producer id, job id), so a producer restarted under the
#   same --id that numbered its jobs from 1 again had them acked unrun.
#   The disk checks need a small filesystem that fills: run as root, this
#   script enters a private mount namespace (unshare -m) and mounts a 2 MiB
#   tmpfs there; where that is impossible they are skipped, saying why.

if [ -z "${T_OUTBOX_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null \
   && unshare -m --propagation private true 2>/dev/null; then
    T_OUTBOX_NS=1 exec unshare -m --propagation private "$BASH" "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

ID=0123456789abcdef0123456789abcdef

#   count LINE FILE: how many lines of FILE are exactly LINE
count () {
    grep -cx -- "$1" "$2"
}

#   Two durable runs on one outbox and a memory-only one, all with one
#   producer id, to one worker: every job of each runs, once
ids_never_go_back () {
    bg w work rq --count 9 --timeout 30
    sleep 0.5
    mb push rq first --count 3 --durable "$T_DIR/dir" --id $ID --timeout 20 2>"$T_DIR/p1.err"
    expect_rc $? 0 "first push (stderr: $(show "$T_DIR/p1.err"))" || return 1
    mb push rq second --count 3 --durable "$T_DIR/dir" --id $ID --timeout 20 2>"$T_DIR/p2.err"
    expect_rc $? 0 "second push (stderr: $(show "$T_DIR/p2.err"))" || return 1
    mb push rq third --count 3 --id $ID --timeout 20 2>"$T_DIR/p3.err"
    expect_rc $? 0 "third push (stderr: $(show "$T_DIR/p3.err"))" || return 1
    bg_wait w
    expect_rc $? 0 "work --count 9 (stderr: $(show "$T_DIR/w.err"))" || return 1
    local body
    for body in first second third; do
        [ "$(count $body "$T_DIR/w.out")" -eq 3 ] \
            || fail "$body ran $(count $body "$T_DIR/w.out") times, wanted 3: $(show "$T_DIR/w.out")" \
            || return 1
    done
    #   and a fourth, memory-only, restart under the same id
    bg w2 work rq --count 2 --timeout 30
    sleep 0.5
    mb push rq fourth --count 2 --id $ID --timeout 20 2>"$T_DIR/p4.err"
    expect_rc $? 0 "fourth push (stderr: $(show "$T_DIR/p4.err"))" || return 1
    bg_wait w2
    expect_rc $? 0 "the second worker (stderr: $(show "$T_DIR/w2.err"))" || return 1
    [ "$(count fourth "$T_DIR/w2.out")" -eq 2 ] || fail "fourth ran: $(show "$T_DIR/w2.out")"
}

#   A durable producer that exits before its acks come back leaves jobs the
#   worker ran in the outbox; restarted under the same id it sends them
#   again with the same ids, and the worker acks them without running them
#   twice. New jobs after that still run.
durable_restart_runs_once () {
    bg w work rd --timeout 25
    sleep 0.5
    seq 1 40 | mb push rd - --durable "$T_DIR/rdir" --id $ID --no-wait 2>"$T_DIR/p1.err"
    expect_rc $? 0 "push --no-wait (stderr: $(show "$T_DIR/p1.err"))" || return 1
    sleep 1
    mb push rd 41 --durable "$T_DIR/rdir" --id $ID --timeout 20 2>"$T_DIR/p2.err"
    expect_rc $? 0 "the restarted producer (stderr: $(show "$T_DIR/p2.err"))" || return 1
    mb push rd --count 0 --durable "$T_DIR/rdir" --id $ID --timeout 5 2>"$T_DIR/p3.err"
    expect_rc $? 0 "an empty push on the outbox (stderr: $(show "$T_DIR/p3.err"))" || return 1
    grep -q recovered "$T_DIR/p3.err" && { fail "jobs left: $(show "$T_DIR/p3.err")"; return 1; }
    local n
    for n in $(seq 1 41); do
        [ "$(count "$n" "$T_DIR/w.out")" -eq 1 ] \
            || fail "job $n ran $(count "$n" "$T_DIR/w.out") times: $(show "$T_DIR/w.out")" \
            || return 1
    done
}

#   A small filesystem of our own (in the private mount namespace)
T_MNT=$T_DIR/mnt
mount_small () {
    mkdir -p "$T_MNT" && mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$T_MNT"
}

#   free bytes on the small filesystem
avail () {
    df -B1 --output=avail "$T_MNT" | tail -n 1 | tr -d ' '
}

#   job BODY-FILE N: a 60 000-byte body whose first line is job-N
job () {
    { echo "job-$2"; head -c 60000 /dev/zero | tr '\0' x; } >"$1"
}

#   A disk that fills during a write (a short write: LMDB says EIO) and one
#   already full (ENOSPC) both say the disk is full, with the bytes free
full_disk_says_so () {
    mb push rf small --durable "$T_MNT/dir" --sync --no-wait 2>"$T_DIR/p0.err"
    expect_rc $? 0 "a first push (stderr: $(show "$T_DIR/p0.err"))" || return 1
    #   room for 10 pages, a job needs 15: the write is cut short
    head -c $(( $(avail) - 40960 )) /dev/zero >"$T_MNT/filler"
    job "$T_DIR/body" 1
    mb push rf --file "$T_DIR/body" --durable "$T_MNT/dir" --sync --no-wait 2>"$T_DIR/eio.err"
    expect_rc $? 1 "a push that fills the disk" || return 1
    grep -q "the disk is full: [0-9]* bytes free" "$T_DIR/eio.err" \
        || fail "a short write said: $(show "$T_DIR/eio.err")" || return 1
    head -c 16M /dev/zero >>"$T_MNT/filler" 2>/dev/null
    mb push rf --file "$T_DIR/body" --durable "$T_MNT/dir" --sync --no-wait 2>"$T_DIR/nospc.err"
    expect_rc $? 1 "a push on a full disk" || return 1
    grep -q "the disk is full: [0-9]* bytes free" "$T_DIR/nospc.err" \
        || fail "a full disk said: $(show "$T_DIR/nospc.err")"
}

#   push --sync one job at a time until the disk is full; once it has room
#   again, a new producer on the outbox recovers every committed job and a
#   worker runs each once
outbox_after_full_disk () {
    local i committed=0 failed=0
    for i in $(seq 1 60); do
        job "$T_DIR/body" "$i"
        if mb push rg --file "$T_DIR/body" --durable "$T_MNT/dir" --sync --no-wait \
               2>"$T_DIR/p.err"; then
            committed=$((committed + 1))
            echo "job-$i" >>"$T_DIR/committed"
        else
            failed=$((failed + 1))
            grep -q "the disk is full" "$T_DIR/p.err" || fail "push $i said: $(show "$T_DIR/p.err")" \
                || return 1
            [ $failed -ge 3 ] && break     #  and two more on the full disk
        fi
    done
    [ $failed -ge 3 ] || fail "60 jobs of 60 000 bytes fit on a 2 MiB disk" || return 1
    [ $committed -gt 5 ] || fail "only $committed jobs committed" || return 1
    mount -o remount,size=16m "$T_MNT" || { fail "cannot grow the tmpfs"; return 1; }
    bg w work rg --exec "head -n 1" --count $committed --timeout 30
    sleep 0.5
    mb push rg --count 0 --durable "$T_MNT/dir" --timeout 25 2>"$T_DIR/after.err"
    expect_rc $? 0 "a producer once the disk has room (stderr: $(show "$T_DIR/after.err"))" \
        || return 1
    grep -qx "recovered $committed jobs from $T_MNT/dir" "$T_DIR/after.err" \
        || fail "$committed committed, then: $(show "$T_DIR/after.err")" || return 1
    bg_wait w
    expect_rc $? 0 "work --count $committed (stderr: $(show "$T_DIR/w.err"))" || return 1
    sort "$T_DIR/committed" >"$T_DIR/want"
    sort "$T_DIR/w.out" >"$T_DIR/got"
    cmp -s "$T_DIR/want" "$T_DIR/got" \
        || fail "ran $(wc -l <"$T_DIR/got") of $committed jobs: $(show "$T_DIR/got")"
}

#   Group commit on a full disk: the reason, what is safe and what to do
#   (as for a full map, tests/cli/test_cli_faults.sh full_outbox_says_why)
group_full_disk_says_why () {
    job "$T_DIR/body" 1
    mb push rh --file "$T_DIR/body" --count 60 --durable "$T_MNT/dir" --no-wait \
        2>"$T_DIR/g.err"
    expect_rc $? 1 "a group-commit push that fills the disk" || return 1
    local line; line=$(grep "push failed" "$T_DIR/g.err")
    [[ $line == *"the disk is full"* && $line == *"bytes free"* \
       && $line == *"jobs of this push were committed"* && $line == *"free space"* ]] \
        || fail "said: $(show "$T_DIR/g.err")" || return 1
    #   small jobs on a disk with 8 KiB left: the group commit fails (at a
    #   push, or at the commit before "committed N jobs"), saying the same
    mount -o remount,size=4m "$T_MNT" || { fail "cannot grow the tmpfs"; return 1; }
    head -c $(( $(avail) - 8192 )) /dev/zero >"$T_MNT/filler"
    head -c 2000 /dev/zero | tr '\0' y >"$T_DIR/small"
    mb push rh --file "$T_DIR/small" --count 1000 --durable "$T_MNT/dir" --no-wait \
        2>"$T_DIR/s.err"
    expect_rc $? 1 "a group-commit push of small jobs on a full disk (df: $(df -B1 --output=used,avail "$T_MNT" | tail -n 1), stderr: $(show "$T_DIR/s.err"))" || return 1
    line=$(grep "push failed" "$T_DIR/s.err")
    [[ $line == *"the disk is full"* && $line == *"bytes free"* \
       && $line == *"jobs of this push were committed"* && $line == *"free space"* ]] \
        || fail "small jobs: said: $(show "$T_DIR/s.err")"
}

#   on_disk CHECK: run CHECK on a fresh 2 MiB tmpfs, then unmount it
on_disk () {
    mount_small 2m || { fail "cannot mount a tmpfs"; return 1; }
    "$1"
    local rc=$?
    t_reap
    umount "$T_MNT"
    return $rc
}

check ids_never_go_back ids_never_go_back
check durable_restart_runs_once durable_restart_runs_once
if [ -z "${T_OUTBOX_NS:-}" ]; then
    echo "SKIP the full-disk checks: they mount a tmpfs in a private mount namespace" \
         "(root and unshare -m needed)"
elif ! mount_small 2m 2>"$T_DIR/mount.err"; then
    echo "SKIP the full-disk checks: cannot mount a tmpfs: $(show "$T_DIR/mount.err")"
else
    umount "$T_MNT"
    check full_disk_says_so on_disk full_disk_says_so
    check outbox_after_full_disk on_disk outbox_after_full_disk
    check group_full_disk_says_why on_disk group_full_disk_says_why
fi
finish
