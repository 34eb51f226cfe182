#!/usr/bin/env bash
# The main job: builds zc and runs the side-by-side comparison.
#
#   sudo ./build/bench.sh
#
# Until the socket backends and `zc bench` land, this runs the per-packet
# benchmark of the shared receive path (parse + decode + track + record).
set -euo pipefail
cd "$(dirname "$0")/.."

./build/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo bench --locked -p zc-benches --bench handler
