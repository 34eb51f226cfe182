/* The headers xdp-sys binds: the AF_XDP kernel ABI and libbpf. */
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
