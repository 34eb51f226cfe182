#!/usr/bin/env bash
# Installs every system package the zc workspace needs on Debian 12, and a Rust
# toolchain (rustup, stable) when there is none. Works from a minimal image
# (the debian:12 container, `debootstrap --variant=minbase`): it brings the
# certificates and curl that rustup's download needs, and git.
# Idempotent: prints nothing and touches nothing when all is present; otherwise
# it says what it installs and shows apt's progress as it goes (a fresh minimal
# system takes minutes here).
# Later backends add their packages to PACKAGES below.
set -euo pipefail

PACKAGES=(
  ca-certificates git                 # a minimal image lacks them: TLS roots for rustup and crates.io; git for cargo
  build-essential pkg-config          # cc for C shims, pkg-config for -sys crates
  iproute2 ethtool procps             # veth testbed, interface queues, sysctl
  tcpdump tcpreplay                   # captures: the independent capturer and replayer the capture tests check against
  curl                                # the rustup download, and the HTTP client the file-server tests use
  libdpdk-dev dpdk-dev                # dpdk-sys (pkg-config libdpdk 22.11); dpdk-testpmd for the benchmark
  libclang-dev clang                  # bindgen for the -sys crates
  libbpf-dev libelf-dev zlib1g-dev    # xdp-sys: bindgen against libbpf
  libxdp-dev                          # zc doctor reports it; xdp-tools
  llvm linux-libc-dev                 # zc-afxdp: the XDP filter, built with clang -target bpf
  m4                                  # benches/xsk-rs-peer: libxdp-sys expands xdp-dispatcher.c.in
  man-db                              # zc-cli tests: `man -l` renders the page `zc man` writes
  jq                                  # build/bench-stall.sh reads zc recv's JSON summary
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get needs it): sudo $0" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# progress: reads apt's status lines (APT::Status-Fd: `dlstatus:ID:PERCENT:TEXT`
# while downloading, `pmstatus:PACKAGE:PERCENT:TEXT` while dpkg works) and prints
# one line at each tenth of either.
progress() {
  awk -F: '
    BEGIN { step["dlstatus"] = -1; step["pmstatus"] = -1
            verb["dlstatus"] = "downloading"; verb["pmstatus"] = "installing " }
    $1 in step {
      # The percent is the first field after the kind that reads as a decimal.
      for (i = 2; i < NF && $i !~ /^[0-9]+\.[0-9]+$/; i++) {}
      p = int($i / 10) * 10
      if (p <= step[$1]) next
      step[$1] = p
      text = $(i + 1); for (j = i + 2; j <= NF; j++) text = text ":" $j
      printf "install-deps: %s %3d%%  %s\n", verb[$1], p, text; fflush()
    }'
}

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp /tmp/zc-install-deps.XXXXXX)
  echo "install-deps: missing ${missing[*]}"
  echo "install-deps: apt-get update (log: $log)"
  if ! apt-get update -q >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "install-deps: apt-get update failed; the whole log is $log" >&2
    exit 1
  fi
  echo "install-deps: apt-get install: the ${#missing[@]} missing and what they depend on"
  # Status lines go to fd 3, which is the pipe into progress; apt's own output to the log.
  if ! apt-get install -y -q --no-install-recommends -o APT::Status-Fd=3 "${missing[@]}" \
    3>&1 >>"$log" 2>&1 | progress; then
    tail -n 20 "$log" >&2
    echo "install-deps: apt-get install failed; the whole log is $log" >&2
    exit 1
  fi
  echo "install-deps: installed $(grep -c '^Setting up ' "$log") packages"
  rm -f "$log"
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "install-deps: no Rust toolchain; installing rustup and stable Rust into ~/.rustup and ~/.cargo"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
# build/test.sh checks formatting and lints before it tests.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
