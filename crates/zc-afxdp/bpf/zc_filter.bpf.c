// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * zc's XDP filter: redirect UDP datagrams whose destination port is in
 * `zc_ports` and whose destination address is in `zc_addrs` (or any address,
 * when `zc_addrs` holds 0.0.0.0) to the AF_XDP socket of the receiving queue
 * (`zc_xsks`), and pass every other packet (ARP, ICMP, TCP, other UDP ports, IPv4 fragments, IPv6)
 * to the kernel stack, so the interface keeps working for everything else.
 *
 * Parsing follows zc-core's wire rules: Ethernet II with up to two VLAN tags
 * (802.1Q / 802.1ad), IPv4 with options (IHL), no fragments. Checksums and
 * lengths beyond the UDP header are left to the user-space parser, which
 * counts what it refuses.
 *
 * Receive timestamps: when user space sets ZC_OPT_RX_STAMP in `zc_options`,
 * each redirected frame carries a `struct zc_rx_meta` in its XDP metadata
 * (the bytes just in front of the frame, which AF_XDP hands over with it):
 * CLOCK_MONOTONIC when this program ran, in the receive softirq, before any
 * socket work. A frame whose metadata the driver refuses is still redirected,
 * without a stamp, and counted.
 *
 * Built twice (build.rs): with ZC_NIC_STAMP the program also asks the driver
 * for the NIC's receive stamp (the bpf_xdp_metadata_rx_timestamp kfunc, Linux
 * 6.3+), which needs the program loaded bound to its device
 * (BPF_F_XDP_DEV_BOUND_ONLY) and attached in native mode; without it the
 * object loads on any kernel.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ZC_MAX_QUEUES 64
#define ZC_MAX_PORTS 256
#define ZC_MAX_ADDRS 64

/* queue index -> AF_XDP socket */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, ZC_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} zc_xsks SEC(".maps");

/* UDP destination port (host byte order) -> 1 when redirected */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZC_MAX_PORTS);
	__type(key, __u16);
	__type(value, __u8);
} zc_ports SEC(".maps");

/* IPv4 destination address (network byte order) -> 1 when redirected;
 * the key 0 (0.0.0.0) matches every address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZC_MAX_ADDRS);
	__type(key, __u32);
	__type(value, __u8);
} zc_addrs SEC(".maps");

/* key 0: options set by user space (ZC_OPT_*) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} zc_options SEC(".maps");

#define ZC_OPT_RX_STAMP 1u

/* In front of a redirected frame when ZC_OPT_RX_STAMP is set; the magic
 * ("zcM1") tells user space the bytes were written for this frame. */
struct zc_rx_meta {
	__u64 xdp_ns;
	__u64 nic_ns; /* the NIC's stamp, 0 when it gave none */
	__u32 magic;
	__u32 reserved;
};

#define ZC_RX_META_MAGIC 0x7a634d31u

#ifdef ZC_NIC_STAMP
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym;
#endif

/* 0: matched a feed port (redirected, or passed when no socket is on that queue),
 * 1: passed to the kernel, 2: matched but the driver refused the metadata room,
 * 3: stamped with the NIC's time */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} zc_counters SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

static __always_inline int count(__u32 which, int action)
{
	__u64 *c = bpf_map_lookup_elem(&zc_counters, &which);
	if (c)
		*c += 1;
	return action;
}

/* Puts the receive stamp in front of the frame when asked. Moves ctx->data_meta,
 * so every packet pointer taken before is invalid afterwards. */
static __always_inline void stamp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 nic_ns = 0;
	__u32 *opt = bpf_map_lookup_elem(&zc_options, &zero);
	if (!opt || !(*opt & ZC_OPT_RX_STAMP))
		return;
#ifdef ZC_NIC_STAMP
	if (bpf_xdp_metadata_rx_timestamp(ctx, &nic_ns))
		nic_ns = 0;
#endif
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct zc_rx_meta))) {
		count(2, 0);
		return;
	}
	struct zc_rx_meta *meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data) {
		count(2, 0);
		return;
	}
	meta->xdp_ns = bpf_ktime_get_ns();
	meta->nic_ns = nic_ns;
	meta->magic = ZC_RX_META_MAGIC;
	meta->reserved = 0;
	if (nic_ns)
		count(3, 0);
}

SEC("xdp")
int zc_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur;
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > end)
		return count(1, XDP_PASS);
	proto = eth->h_proto;
	cur = eth + 1;
#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_tag *tag = cur;
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > end)
			return count(1, XDP_PASS);
		proto = tag->proto;
		cur = tag + 1;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return count(1, XDP_PASS);

	struct iphdr *ip = cur;
	if ((void *)(ip + 1) > end)
		return count(1, XDP_PASS);
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP)
		return count(1, XDP_PASS);
	/* Fragments (MF set or offset > 0) go to the kernel, which reassembles. */
	if (ip->frag_off & bpf_htons(0x3fff))
		return count(1, XDP_PASS);

	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return count(1, XDP_PASS);

	__u16 port = bpf_ntohs(udp->dest);
	if (!bpf_map_lookup_elem(&zc_ports, &port))
		return count(1, XDP_PASS);
	/* Another local address on the same port belongs to the kernel's sockets. */
	__u32 daddr = ip->daddr;
	__u32 any = 0;
	if (!bpf_map_lookup_elem(&zc_addrs, &daddr) && !bpf_map_lookup_elem(&zc_addrs, &any))
		return count(1, XDP_PASS);

	stamp(ctx);
	/* No socket on this queue: pass rather than drop. */
	return count(0, bpf_redirect_map(&zc_xsks, ctx->rx_queue_index, XDP_PASS));
}

char _license[] SEC("license") = "Dual MIT/GPL";
