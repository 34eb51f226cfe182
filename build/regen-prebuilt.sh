#!/usr/bin/env bash
# Refreshes the files committed for builds without the system libraries
# (docs.rs sets DOCS_RS; see each build script): the bindgen output of
# zc-dpdk-sys and zc-xdp-sys, zc-afxdp's compiled XDP filter and zc-xdpgen's
# generator and sink programs. Run it after
# changing a wrapper.h, an allowlist, a BPF program, or the system's DPDK,
# libbpf or clang, then commit the result. The tests `pregenerated` and
# `prebuilt` fail until the committed files match what this machine builds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -p zc-dpdk-sys -p zc-xdp-sys -p zc-afxdp -p zc-xdpgen
# newest: the OUT_DIR written by the build just made (older ones may linger)
newest() { ls -td target/release/build/"$1"-*/out/"$2" | head -n 1; }
cp "$(newest zc-dpdk-sys bindings.rs)" dpdk-sys/bindings/dpdk.rs
cp "$(newest zc-xdp-sys bindings.rs)" xdp-sys/bindings/libbpf.rs
for obj in zc_filter zc_filter_nic; do
  cp "$(newest zc-afxdp $obj.bpf.o)" crates/zc-afxdp/bpf/$obj.bpf.o
done
for prog in zc_xdpgen zc_xdpsink; do
  cp "$(newest zc-xdpgen $prog.bpf.o)" crates/zc-xdpgen/bpf/$prog.bpf.o
done
git status --short dpdk-sys/bindings xdp-sys/bindings crates/zc-afxdp/bpf crates/zc-xdpgen/bpf
