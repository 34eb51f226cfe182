#!/usr/bin/env bash
# The main job: builds zc, prepares the host, and compares every backend in this
# build side by side on a veth testbed that `zc bench` sets up and removes.
#
#   sudo ./build/bench.sh                 # default: 5 interleaved repetitions
#   sudo ./build/bench.sh --quick         # any `zc bench` option passes through
#
# Results: the table on stdout, bench-out/zc-bench.json and bench-out/zc-bench.svg.
set -euo pipefail
cd "$(dirname "$0")/.."

./build/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
./build/setup-host.sh
. build/memlock.sh
# Every backend: the AF_XDP and DPDK ones are features of zc-cli, off by default.
cargo build --locked --release -p zc-cli --features afxdp,dpdk
./target/release/zc doctor || true
exec ./target/release/zc bench --json bench-out/zc-bench.json --svg bench-out/zc-bench.svg "$@"
