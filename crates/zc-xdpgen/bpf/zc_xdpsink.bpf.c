// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * zc's receiving sink: an XDP program for the far end of the testbed that
 * counts and drops the UDP datagrams sent to one port (zc_port) and passes
 * everything else (ARP, IPv6 neighbour discovery, other ports) to the kernel.
 * It measures what a generator delivers with the least receive work possible.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* UDP destination port counted and dropped, in host byte order; set by user
 * space before the program is attached. */
__u16 zc_port = 0;

/* 0: datagrams to zc_port, dropped; 1: other frames, passed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} zc_sink_counts SEC(".maps");

static __always_inline int count(__u32 which, int action)
{
	__u64 *c = bpf_map_lookup_elem(&zc_sink_counts, &which);

	if (c)
		*c += 1;
	return action;
}

SEC("xdp")
int zc_xdpsink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(1, XDP_PASS);
	if (ip->ihl < 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
		return count(1, XDP_PASS);
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end || udp->dest != bpf_htons(zc_port))
		return count(1, XDP_PASS);
	return count(0, XDP_DROP);
}

char _license[] SEC("license") = "Dual MIT/GPL";
