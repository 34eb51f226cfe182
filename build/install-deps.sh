#!/usr/bin/env bash
# Installs every system package the zc workspace needs on Debian 12.
# Idempotent: prints nothing and touches nothing when all are present.
# Later backends add their packages to PACKAGES below.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config          # cc for C shims, pkg-config for -sys crates
  iproute2 ethtool procps             # veth testbed, interface queues, sysctl
  curl                                # the HTTP client the file-server tests use
  libdpdk-dev dpdk-dev                # dpdk-sys (pkg-config libdpdk 22.11); dpdk-testpmd for the benchmark
  libclang-dev clang                  # bindgen for the -sys crates
  libbpf-dev libelf-dev zlib1g-dev    # xdp-sys: bindgen against libbpf
  libxdp-dev                          # zc doctor reports it; xdp-tools
  llvm linux-libc-dev                 # zc-afxdp: the XDP filter, built with clang -target bpf
  m4                                  # benches/xsk-rs-peer: libxdp-sys expands xdp-dispatcher.c.in
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get needs it): sudo $0" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    :
  else
    echo "install-deps: no Rust toolchain; installing rustup (stable)"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  fi
fi
# build/test.sh checks formatting and lints before it tests.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
