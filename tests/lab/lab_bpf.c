/*  lab_bpf.c - the lab's tc (clsact) classifier: drops a random share of
    packets and/or every IPv4 packet to one address.

    Why BPF: the kernels we test on may lack sch_netem and act_gact, so
    "tc qdisc ... netem loss" and "tc filter ... action drop" can be
    missing, while cls_bpf in direct-action mode is built in. lab.sh
    compiles one object per setting:

        clang -O2 -target bpf -DLOSS_PER_10K=<n> -DDROP_DST=<u32> -c lab_bpf.c

    LOSS_PER_10K: drop probability in units of 0.01 % (0 = none).
    DROP_DST: an IPv4 destination in host byte order whose packets are all
    dropped (0 = none): "lab.sh drop h1 h2" puts it on h1's switch port,
    so h1 -> h2 is cut while h2 -> h1 and everything else still flows. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>

#ifndef LOSS_PER_10K
#define LOSS_PER_10K 0
#endif
#ifndef DROP_DST
#define DROP_DST 0
#endif

static __u32 (*bpf_get_prandom_u32) (void) = (void *) BPF_FUNC_get_prandom_u32;

__attribute__ ((section ("tc"), used))
int lab_filter (struct __sk_buff *skb)
{
#if DROP_DST
    void *data = (void *) (long) skb->data;
    void *end = (void *) (long) skb->data_end;
    struct ethhdr *eth = data;
    if ((void *) (eth + 1) <= end && eth->h_proto == __builtin_bswap16 (ETH_P_IP)) {
        struct iphdr *ip = (struct iphdr *) (eth + 1);
        if ((void *) (ip + 1) <= end && ip->daddr == __builtin_bswap32 (DROP_DST))
            return TC_ACT_SHOT;
    }
#endif
#if LOSS_PER_10K
    if (bpf_get_prandom_u32 () % 10000 < LOSS_PER_10K)
        return TC_ACT_SHOT;
#endif
    return TC_ACT_OK;
}

char _license [] __attribute__ ((section ("license"), used)) = "GPL";
