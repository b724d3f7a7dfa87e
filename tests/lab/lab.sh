#!/usr/bin/env bash
# lab.sh - meshbus's LAN lab: N "hosts" on one Linux machine, each a
# network namespace with one interface on a shared bridge, for tests and
# benches that cross hosts (tests/lab/README.md).
#
#   lab.sh up N              create hosts h1..hN (no-op if exactly so already)
#   lab.sh run HOST CMD..    run a command on a host (its own netns and
#                            hostname); exec's, so the PID is the command's.
#                            Exports LAB_HOST, LAB_ADDR, LAB_IFACE.
#   lab.sh cut HOST [--link] cut a host off: its switch port leaves the
#                            bridge (silent: the host keeps carrier, TCP
#                            sees nothing until its timeouts); --link: the
#                            port goes down (the host sees NO-CARRIER)
#   lab.sh split H.. [-- H..] partition: the listed hosts move to a second
#                            bridge; they still reach each other
#   lab.sh loss HOST PCT     random loss PCT % each way (0 removes it)
#   lab.sh drop FROM TO      drop every IPv4 packet FROM -> TO (TO -> FROM
#                            still flows); "lab.sh drop FROM -" removes it
#   lab.sh rate HOST RATE    token-bucket rate limit each way (e.g. 1mbit)
#   lab.sh heal HOST|all     undo cut/split/loss/drop/rate
#   lab.sh addr HOST         print HOST's address
#   lab.sh status            hosts, addresses, ports, qdiscs
#   lab.sh down              end the processes started in the lab (by PID),
#                            delete every namespace of this lab
#
# HOST may be written h3, 3 or NET.13.
#
# Topology: a "switch" namespace (<prefix>-sw) holds bridges br0 and br1
# (split); host namespace <prefix>-hI has eth0, the I-th veth, address
# NET.(10+I)/24 and no default route. Nothing is created in the root
# namespace and the switch has no address, so packets only travel between
# the lab's namespaces. Several labs run at once under different prefixes.
#
# loss and drop load a small tc BPF program (lab_bpf.c, built with clang)
# because a kernel may lack sch_netem and act_gact; cls_bpf is enough.
#
# Environment: LAB_PREFIX (default lab; [a-z][a-z0-9]{0,8}), LAB_NET
# (default 10.250.0, a private /24), LAB_STATE (default /run/<prefix>),
# LAB_IPV6=1 keeps IPv6 link-local on hosts (default: off, less noise).
# Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2.
set -euo pipefail

P=${LAB_PREFIX:-lab}
NET=${LAB_NET:-10.250.0}
STATE=${LAB_STATE:-/run/$P}
SW="$P-sw"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAXHOSTS=200

log() { printf '%s\n' "lab.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

check_env() {
    command -v ip >/dev/null || die "iproute2 'ip' not found"
    [[ $P =~ ^[a-z][a-z0-9]{0,8}$ ]] || die "LAB_PREFIX must be [a-z][a-z0-9]{0,8}"
    [[ $NET =~ ^(10\.[0-9]{1,3}\.[0-9]{1,3}|172\.(1[6-9]|2[0-9]|3[01])\.[0-9]{1,3}|192\.168\.[0-9]{1,3})$ ]] \
        || die "LAB_NET=$NET is not a private /24 prefix (want e.g. 10.250.0)"
    [[ $(id -u) == 0 ]] || die "needs root (CAP_SYS_ADMIN for 'ip netns add', CAP_NET_ADMIN for links)"
}

lock() {
    mkdir -p "$(dirname "$STATE")"
    exec 9>"$STATE.lock"
    if command -v flock >/dev/null; then flock -w 60 9 || die "lock $STATE.lock busy"; fi
}

ns_list() { ip netns list 2>/dev/null | awk '{print $1}'; }
host_namespaces() {   # this lab's host namespaces, in numeric order
    ns_list | grep -E "^$P-h[0-9]+$" | awk -F-h '{print $NF, $0}' | sort -n | awk '{print $2}' || true
}
ns_exists() { ns_list | grep -qx "$1"; }

host_index() {        # h3 | 3 | NET.13  ->  3
    local h=$1 i
    case $h in
        h[0-9]*) i=${h#h} ;;
        "$NET".*) i=$(( ${h##*.} - 10 )) ;;
        *) i=$h ;;
    esac
    [[ $i =~ ^[0-9]+$ ]] && (( i >= 1 && i <= MAXHOSTS )) || die "bad host '$h'"
    ns_exists "$P-h$i" || die "host h$i does not exist (run: lab.sh up N)"
    echo "$i"
}

is_up() {
    local n=$1 i
    ns_exists "$SW" || return 1
    [[ $(host_namespaces | wc -l) == "$n" ]] || return 1
    ip -n "$SW" link show br0 >/dev/null 2>&1 || return 1
    for ((i = 1; i <= n; i++)); do
        ip -n "$P-h$i" -4 addr show dev eth0 2>/dev/null | grep -q "inet $NET.$((10 + i))/24" || return 1
    done
}

# The PIDs this lab started: those `run` recorded that still live in one of
# our namespaces (a recycled PID elsewhere is never touched), and whatever
# else lives in our namespaces (only we start processes there).
our_pids() {
    local ns ino pid
    declare -A inos=()
    for ns in $(host_namespaces) "$SW"; do
        ino=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null) && inos[$ino]=1
    done
    if [[ -s $STATE/pids ]]; then
        while read -r pid; do
            [[ $pid =~ ^[0-9]+$ ]] || continue
            ino=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || continue
            [[ -n ${inos[$ino]:-} ]] && echo "$pid"
        done <"$STATE/pids"
    fi
    for ns in $(host_namespaces) "$SW"; do ip netns pids "$ns" 2>/dev/null || true; done
}

stop_pids() {
    local pids t
    pids=$(our_pids | sort -u | tr '\n' ' ')
    [[ -z ${pids// /} ]] && return 0
    log "stopping processes left in the lab: $pids"
    kill -TERM $pids 2>/dev/null || true
    kill -CONT $pids 2>/dev/null || true
    for t in $(seq 1 15); do
        pids=$(our_pids | sort -u | tr '\n' ' ')
        [[ -z ${pids// /} ]] && return 0
        sleep 0.2
    done
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
}

teardown() {
    local ns left
    stop_pids
    for ns in $(host_namespaces) "$SW"; do
        ns_exists "$ns" || continue
        ip netns del "$ns" 2>/dev/null || log "warning: could not delete $ns"
    done
    rm -rf "$STATE"
    left=$(ns_list | grep -E "^$P-(h[0-9]+|sw)$" || true)
    [[ -z $left ]] || die "namespaces left behind: $left"
}

sysctl_ns() { ip netns exec "$1" sysctl -qw "${@:2}" >/dev/null 2>&1 || true; }

#   The kernel's ARP table is one for all namespaces, and its limits
#   (gc_thresh*) can only be set from the root namespace: N hosts that all
#   talk need N*(N-1) entries, and past gc_thresh3 (1024 by default: 33
#   hosts) new entries fail ("neighbor table overflow") and hosts silently
#   stop reaching each other. Raise the limits for this lab (and others
#   running), never lower them.
neigh_room() {
    local need=$(( $1 * $1 + 1024 )) k cur
    for k in 1:4 2:2 3:1; do
        cur=$(sysctl -n "net.ipv4.neigh.default.gc_thresh${k%%:*}" 2>/dev/null) || return 0
        (( cur < need / ${k##*:} )) \
            && sysctl -qw "net.ipv4.neigh.default.gc_thresh${k%%:*}=$(( need / ${k##*:} ))" >/dev/null 2>&1
    done
    return 0
}

cmd_up() {
    local n=${1:-} i ns t
    [[ $n =~ ^[0-9]+$ ]] && (( n >= 1 && n <= MAXHOSTS )) || die "usage: lab.sh up N (1..$MAXHOSTS)"
    lock
    if is_up "$n"; then log "already up with $n hosts"; return 0; fi
    teardown
    trap 'log "setup failed; rolling back"; teardown; exit 1' ERR INT TERM
    mkdir -p "$STATE"
    neigh_room "$n"
    ip netns add "$SW" || die "'ip netns add' failed (needs CAP_SYS_ADMIN and a writable /run/netns)"
    ip -n "$SW" link set lo up
    sysctl_ns "$SW" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    for b in br0 br1; do
        ip -n "$SW" link add "$b" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
        ip -n "$SW" link set "$b" up
    done
    for ((i = 1; i <= n; i++)); do
        ns="$P-h$i"
        ip netns add "$ns"
        [[ ${LAB_IPV6:-0} == 1 ]] \
            || sysctl_ns "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
        ip -n "$SW" link add "p$i" type veth peer name eth0 netns "$ns"
        ip -n "$SW" link set "p$i" master br0
        ip -n "$SW" link set "p$i" up
        ip -n "$ns" addr add "$NET.$((10 + i))/24" brd + dev eth0
        ip -n "$ns" link set eth0 up
    done
    echo "$n" >"$STATE/n"
    trap - ERR INT TERM
    for ((i = 1; i <= n; i++)); do   # carrier on every host, bounded
        for t in $(seq 1 50); do
            ip -n "$P-h$i" -br link show eth0 | grep -q ' UP ' && break
            sleep 0.05
        done
    done
    log "up: $n hosts, $NET.11..$NET.$((10 + n)), prefix $P"
}

cmd_down() { lock; teardown; rm -f "$STATE.lock"; }

cmd_run() {
    local i
    i=$(host_index "${1:-}")
    shift
    (( $# )) || die "usage: lab.sh run HOST cmd [args..]"
    mkdir -p "$STATE"
    echo $$ >>"$STATE/pids"          # exec below keeps this PID
    exec ip netns exec "$P-h$i" \
        env LAB_HOST="h$i" LAB_ADDR="$NET.$((10 + i))" LAB_IFACE=eth0 \
        unshare --uts -- sh -c 'hostname "$0" && exec "$@"' "h$i" "$@"
}

cmd_cut() {
    local i mode=${2:-}
    i=$(host_index "${1:-}")
    if [[ $mode == --link ]]; then
        ip -n "$SW" link set "p$i" down
    else
        ip -n "$SW" link set "p$i" nomaster
    fi
    log "h$i cut ${mode:---silent}"
}

cmd_split() {
    local h i
    (( $# )) || die "usage: lab.sh split HOST.."
    for h in "$@"; do
        [[ $h == -- ]] && continue
        i=$(host_index "$h")
        ip -n "$SW" link set "p$i" master br1
    done
    log "split: {$*} isolated from the rest"
}

# (Re)load the BPF filters of host i's switch port from its state files:
# ingress (packets from the host) gets loss and the drop rule, egress loss
bpf_apply() {
    local i=$1 per10k=0 dst=0 ma obj
    [[ -s $STATE/h$i.loss ]] && per10k=$(cat "$STATE/h$i.loss")
    [[ -s $STATE/h$i.drop ]] && dst=$(cat "$STATE/h$i.drop")
    tc -n "$SW" qdisc del dev "p$i" clsact 2>/dev/null || true
    (( per10k == 0 && dst == 0 )) && return 0
    command -v clang >/dev/null || die "loss and drop need clang (bpf target)"
    ma=$(gcc -print-multiarch 2>/dev/null || clang -print-multiarch 2>/dev/null || true)
    build() {       # loss, dst -> object path
        local o="$STATE/bpf_$1_$2.o"
        [[ -s $o ]] || clang -O2 -target bpf ${ma:+-I/usr/include/$ma} -DLOSS_PER_10K="$1" \
                             -DDROP_DST="$2" -c "$HERE/lab_bpf.c" -o "$o"
        echo "$o"
    }
    tc -n "$SW" qdisc add dev "p$i" clsact
    # tc's "ingress" of p$i: what the host sends into the switch
    obj=$(build "$per10k" "$dst")
    tc -n "$SW" filter add dev "p$i" ingress bpf da obj "$obj" sec tc
    if (( per10k )); then
        obj=$(build "$per10k" 0)
        tc -n "$SW" filter add dev "p$i" egress bpf da obj "$obj" sec tc
    fi
}

cmd_loss() {
    local i pct=${2:-}
    i=$(host_index "${1:-}")
    [[ $pct =~ ^[0-9]+(\.[0-9]{1,2})?$ ]] || die "usage: lab.sh loss HOST PCT (0..100)"
    mkdir -p "$STATE"
    awk -v p="$pct" 'BEGIN{printf "%d\n", p*100 + 0.5}' >"$STATE/h$i.loss"
    bpf_apply "$i"
    log "h$i loss ${pct}% each way"
}

cmd_drop() {
    local i j to=${2:-} a b c d
    i=$(host_index "${1:-}")
    [[ -n $to ]] || die "usage: lab.sh drop FROM TO|-"
    mkdir -p "$STATE"
    if [[ $to == - ]]; then
        rm -f "$STATE/h$i.drop"
        bpf_apply "$i"
        log "h$i drop rule removed"
        return 0
    fi
    j=$(host_index "$to")
    IFS=. read -r a b c d <<<"$NET.$((10 + j))"
    echo $(( (a << 24) | (b << 16) | (c << 8) | d )) >"$STATE/h$i.drop"
    bpf_apply "$i"
    log "h$i -> h$j dropped (h$j -> h$i still flows)"
}

cmd_rate() {
    local i rate=${2:-}
    i=$(host_index "${1:-}")
    [[ -n $rate ]] || die "usage: lab.sh rate HOST RATE (e.g. 1mbit)"
    tc -n "$SW" qdisc replace dev "p$i" root tbf rate "$rate" burst 32kbit latency 200ms
    tc -n "$P-h$i" qdisc replace dev eth0 root tbf rate "$rate" burst 32kbit latency 200ms
    log "h$i rate $rate each way"
}

heal_one() {
    local i=$1
    ip -n "$SW" link set "p$i" master br0
    ip -n "$SW" link set "p$i" up
    rm -f "$STATE/h$i.loss" "$STATE/h$i.drop"
    tc -n "$SW" qdisc del dev "p$i" clsact 2>/dev/null || true
    tc -n "$SW" qdisc del dev "p$i" root 2>/dev/null || true
    tc -n "$P-h$i" qdisc del dev eth0 root 2>/dev/null || true
}

cmd_heal() {
    local h=${1:-} ns
    [[ -n $h ]] || die "usage: lab.sh heal HOST|all"
    if [[ $h == all ]]; then
        for ns in $(host_namespaces); do heal_one "${ns##*-h}"; done
        log "all healed"
    else
        heal_one "$(host_index "$h")"
        log "$h healed"
    fi
}

cmd_addr() { local i; i=$(host_index "${1:-}"); echo "$NET.$((10 + i))"; }

cmd_status() {
    local ns i master state q
    ns_exists "$SW" || { echo "no lab (prefix $P)"; return 0; }
    printf '%-5s %-14s %-10s %-8s %s\n' host addr port bridge tc
    for ns in $(host_namespaces); do
        i=${ns##*-h}
        master=$(ip -n "$SW" -o link show "p$i" | grep -o 'master [a-z0-9]*' | awk '{print $2}' || true)
        state=$(ip -n "$SW" -br link show "p$i" | awk '{print $2}')
        q=$(tc -n "$SW" qdisc show dev "p$i" | awk '{print $2}' | { grep -v -E '^(noqueue|noop)$' || true; } | tr '\n' ' ')
        printf '%-5s %-14s %-10s %-8s %s\n' "h$i" "$NET.$((10 + i))" "$state" "${master:--}" "${q:--}"
    done
}

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
        up|down|run|cut|split|loss|drop|rate|heal|addr|status) check_env; "cmd_$cmd" "$@" ;;
        *) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 64 ;;
    esac
}
main "$@"
