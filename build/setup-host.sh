#!/usr/bin/env bash
# Prepares this machine for the privileged backends and tests: bpffs for XDP
# programs, hugepages for DPDK, a memlock limit for UMEM. Idempotent and quiet.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: run as root: sudo $0" >&2
  exit 1
fi

# bpffs: libxdp and libbpf pin maps and programs here.
if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
fi

# 2 MiB hugepages for DPDK's EAL (512 MiB).
want=${ZC_HUGEPAGES:-256}
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
  echo "$want" > /proc/sys/vm/nr_hugepages
  have=$(cat /proc/sys/vm/nr_hugepages)
  [ "$have" -ge "$want" ] || echo "setup-host: only $have of $want hugepages could be reserved (memory fragmented?)" >&2
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages
fi

# Socket receive buffers up to 64 MiB: a market-data receiver sizes its
# buffer to ride out scheduling hiccups (zc warns when this caps a request).
if [ "$(cat /proc/sys/net/core/rmem_max)" -lt 67108864 ]; then
  sysctl -qw net.core.rmem_max=67108864
fi
if [ "$(cat /proc/sys/net/core/wmem_max)" -lt 16777216 ]; then
  sysctl -qw net.core.wmem_max=16777216
fi

# AF_XDP UMEM and DPDK memory are locked: lift the limit for this shell's children.
ulimit -l unlimited 2>/dev/null || true
