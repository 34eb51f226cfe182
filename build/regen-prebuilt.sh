#!/usr/bin/env bash
# Refreshes the files committed for builds without the system libraries
# (docs.rs sets DOCS_RS; see each build script): the bindgen output of
# zc-dpdk-sys and zc-xdp-sys, and zc-afxdp's compiled XDP filter. Run it after
# changing a wrapper.h, an allowlist, a BPF program, or the system's DPDK,
# libbpf or clang, then commit the result. The tests `pregenerated` and
# `prebuilt` fail until the committed files match what this machine builds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -p zc-dpdk-sys -p zc-xdp-sys -p zc-afxdp
# newest: the OUT_DIR written by the build just made (older ones may linger)
newest() { ls -td target/release/build/"$1"-*/out/"$2" | head -n 1; }
cp "$(newest zc-dpdk-sys bindings.rs)" dpdk-sys/bindings/dpdk.rs
cp "$(newest zc-xdp-sys bindings.rs)" xdp-sys/bindings/libbpf.rs
cp "$(newest zc-afxdp zc_filter.bpf.o)" crates/zc-afxdp/bpf/zc_filter.bpf.o
git status --short dpdk-sys/bindings xdp-sys/bindings crates/zc-afxdp/bpf
