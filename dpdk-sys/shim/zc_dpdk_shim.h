/* C shim over DPDK's `static inline` hot path: bindgen cannot link those, so
 * each gets an exported wrapper compiled by build.rs with the cc crate. */
#ifndef ZC_DPDK_SHIM_H
#define ZC_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

/* rte_errno of the calling thread (a per-lcore TLS variable behind a macro). */
int zc_rte_errno(void);

/* rte_lcore_id() of the calling thread: UINT32_MAX (LCORE_ID_ANY) for non-EAL threads. */
unsigned int zc_lcore_id(void);

uint16_t zc_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t zc_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *zc_pktmbuf_alloc(struct rte_mempool *mp);
int zc_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void zc_pktmbuf_free(struct rte_mbuf *m);
void zc_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);

void *zc_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t zc_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t zc_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t zc_pktmbuf_tailroom(const struct rte_mbuf *m);
char *zc_pktmbuf_append(struct rte_mbuf *m, uint16_t len);

/* RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP: RTE_BIT64 macros bindgen cannot evaluate. */
uint64_t zc_eth_rss_ip_udp(void);

#endif
