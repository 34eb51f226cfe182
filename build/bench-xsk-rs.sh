#!/usr/bin/env bash
# zc-afxdp against the xsk-rs crate receiving the same testbed traffic
# (issue 6: ">= 1.1x xsk-rs"). Builds the xsk-rs peer (benches/xsk-rs-peer, its
# own workspace: xsk-rs links a static libxdp/libbpf that must not meet
# xdp-sys's system ones in one binary) and afxdp_bench, then runs zc-afxdp and
# the peer alternately, RUNS interleaved runs each, in matched modes
# (see PLACEMENT), on testbed zcxsk1 (198.18.241.0/24), and
# prints medians (min-max) and the ratio zc-afxdp / xsk-rs per mode.
#
#   sudo ./build/bench-xsk-rs.sh [RUNS] [SECONDS] [GENERATOR] [PLACEMENT]
#   # defaults: 7 2 afxdp split
#
# GENERATOR: afxdp (AF_XDP sender in the peer namespace) or udp (sendmmsg).
# PLACEMENT: split = receiver on CPU 0, generator (and with it, on veth, the
# kernel's receive path) on the last CPU; modes poll, spin, generic-XDP spin.
# shared = receiver and generator on the last CPU, so that the receiver's own
# cost takes CPU from the traffic; modes poll with native and generic XDP
# (a spinning receiver would starve the generator).
# Needs root, clang and m4 (./build/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
secs=${2:-2}
gen=${3:-afxdp}
placement=${4:-split}
last=$(( $(nproc) - 1 ))
case "$placement" in
  split) cpus=(--rx-cpu 0 --gen-cpu "$last")
         backends=afxdp,xsk-rs,afxdp-spin,xsk-rs-spin,afxdp-generic-spin,xsk-rs-generic-spin ;;
  shared) cpus=(--rx-cpu "$last" --gen-cpu "$last")
          backends=afxdp,xsk-rs,afxdp-generic,xsk-rs-generic ;;
  *) echo "bench-xsk-rs: PLACEMENT must be split or shared" >&2; exit 2 ;;
esac
tb=zcxsk1
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-xsk-rs: needs root (veth testbed, XDP, AF_XDP): sudo $0" >&2
  exit 1
fi
. build/memlock.sh
for tool in clang m4; do
  command -v "$tool" >/dev/null || { echo "bench-xsk-rs: $tool missing: ./build/install-deps.sh" >&2; exit 1; }
done

cleanup() {
  # A killed run leaves the testbed (and with it any XDP program) behind.
  ip link del "${tb}h" 2>/dev/null || true
  ip netns del "${tb}-ns" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

cargo build --release --manifest-path benches/xsk-rs-peer/Cargo.toml
cargo build --release -p zc-afxdp --example afxdp_bench
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%H:%M) UTC"
# libbpf/libxdp in the peer report, every run, that libxdp's dispatcher does
# not load on this kernel and that it falls back to a single program: one
# line of that is kept, the rest filtered.
echo "placement $placement: ${cpus[*]}; generator $gen; $runs interleaved runs of $secs s"
./target/release/examples/afxdp_bench --runs "$runs" --secs "$secs" --gen "$gen" "${cpus[@]}" \
    --testbed "$tb" --subnet 241 --xsk-rs-peer benches/xsk-rs-peer/target/release/xsk-rs-peer \
    --backends "$backends" \
    2> >(grep -v -e '^libbpf: elf: skipping unrecognized data section' -e '^libbpf: prog .xdp_pass' \
                 -e "^libbpf: permission error while running as root" -e "^libbpf: failed to load object 'xdp-dispatcher.o'" \
                 -e '^libxdp: Compatibility check for dispatcher' | awk '!/Falling back to loading single prog/ || !seen++' >&2)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%H:%M) UTC"
# afxdp_bench checks `ip link show` after every xsk-rs run (a program left
# attached is an error, and would make the next zc-afxdp run fail with
# AddrInUse); the testbed itself is gone now.
echo "after the run: $(ip -o link show | grep -c "${tb}" || true) ${tb} interfaces left"
