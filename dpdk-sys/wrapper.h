/* Everything dpdk-sys binds: bindgen reads this file. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_dev.h>
#include <rte_bus.h>
#include <rte_version.h>

#include "shim/zc_dpdk_shim.h"
