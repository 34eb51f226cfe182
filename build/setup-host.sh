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
