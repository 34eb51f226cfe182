// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * zc's traffic generator, run by user space with BPF_PROG_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES) on the sending interface. The kernel hands
 * each run a page holding an Ethernet/IPv4/UDP frame built by user space (the
 * template); this program writes the next 32-byte market-data message of the
 * message ring into its payload, completes the UDP checksum and returns
 * XDP_TX, which the kernel turns into a transmit on that interface (for veth:
 * straight into the peer's receive ring, no socket buffer on the way).
 *
 * User space fills the ring ahead of each run (sequence numbers with the
 * feed's gaps and duplicates, the open-loop intended send times) and reads
 * zc_gen.next afterwards: the number of frames built, exactly.
 *
 * The program is attached to the sending device as well, through a BPF link
 * held for the generator's life: the kernel then keeps it in its XDP
 * dispatcher, and BPF_PROG_RUN no longer adds and removes it there, which
 * costs two RCU grace periods (milliseconds) per call. On that path it sees
 * the frames the device receives, and passes them.
 *
 * Pages are recycled without being rewritten, so a page may still hold an
 * earlier message: every byte that varies (the message and the checksum) is
 * written on every run, and the checksum is summed from zc_gen.csum_base, never
 * from what the page held.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

/* Ethernet (14) + IPv4 without options (20) + UDP (8): the template's layout. */
#define ZC_PAYLOAD_OFF 42
#define ZC_UDP_CHECK_OFF 40
#define ZC_MSG_LEN 32
#define ZC_TS_WORD 3 /* bytes 24..32 of the message: the timestamp */

/* Entries of the message ring, a power of two: the most frames one run
 * builds (RING in src/gen.rs). */
#define ZC_RING 1024

struct zc_msg {
	__u64 w[ZC_MSG_LEN / 8];
};

/* Everything user space shares with the program: the only variable in .bss,
 * so it sits at offset 0 of the mapped section (src/gen.rs mirrors it). */
struct zc_gen_state {
	/* Frames built since the program was loaded; ring entry next % ZC_RING
	 * goes into the next one. */
	__u64 next;
	/* One's-complement sum, in the byte order loads from the packet give, of
	 * the UDP pseudo-header and header with a zero checksum field: all that the
	 * UDP checksum covers except the message, folded to 16 bits. */
	__u32 csum_base;
	/* Non-zero: overwrite each message's timestamp with bpf_ktime_get_ns()
	 * (CLOCK_MONOTONIC) as the frame is built, for runs without a schedule. */
	__u32 stamp_now;
	/* The template's Ethernet source address (two bytes of padding). */
	__u8 src_mac[8];
	struct zc_msg ring[ZC_RING];
};

struct zc_gen_state zc_gen = {};

SEC("xdp")
int zc_xdpgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct zc_msg *out = data + ZC_PAYLOAD_OFF;
	__u16 *check = data + ZC_UDP_CHECK_OFF;
	struct zc_msg *msg;
	__u64 sum, w;
	__u16 csum;
	int i;

	/* The program is also attached to the device (see below): frames the
	 * device really receives are passed untouched. Only the template
	 * carries our source address. */
	if ((void *)(out + 1) > end)
		return XDP_PASS;
	if (*(__u32 *)&eth->h_source[0] != *(__u32 *)&zc_gen.src_mac[0] ||
	    *(__u16 *)&eth->h_source[4] != *(__u16 *)&zc_gen.src_mac[4])
		return XDP_PASS;

	msg = &zc_gen.ring[zc_gen.next & (ZC_RING - 1)];
	zc_gen.next++;

	sum = zc_gen.csum_base;
#pragma unroll
	for (i = 0; i < ZC_MSG_LEN / 8; i++) {
		w = msg->w[i];
		if (i == ZC_TS_WORD && zc_gen.stamp_now)
			w = bpf_ktime_get_ns();
		out->w[i] = w;
		/* 32-bit halves: a one's-complement sum may be taken in any
		 * word size and folded afterwards (RFC 1071). */
		sum += (w & 0xffffffff) + (w >> 32);
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	csum = ~(__u16)sum;
	/* 0 means "no checksum" in UDP over IPv4: a computed 0 is sent as 0xffff. */
	*check = csum ? csum : 0xffff;
	return XDP_TX;
}

char _license[] SEC("license") = "Dual MIT/GPL";
