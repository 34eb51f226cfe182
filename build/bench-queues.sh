#!/usr/bin/env bash
# What a second receive queue buys `zc recv` on the socket backends: the drain
# rate over loopback with one queue (receive and handle on one thread, or
# --pipeline), and with --queues 2 (a SO_REUSEPORT pair steered by CPU, a
# receive thread on each CPU, one handler). Two `zc send`s pinned to CPU 0 and
# CPU 1 fill the sockets while the receiver holds (--hold 3), so the rate is
# the receiver's own. Needs 2 CPUs and jq; no root.
# Usage: [BACKEND=recvmmsg|uring|recvfrom] [N=30000] [REPS=5] build/bench-queues.sh
# Prints one line per run: layout, messages/s between the first and the last
# message, and what was missing or dropped (all 0 when the sockets held it all).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p zc-cli
zc=$PWD/target/release/zc
backend=${BACKEND:-recvmmsg}; n=${N:-30000}; reps=${REPS:-5}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for rep in $(seq "$reps"); do
  for layout in inline pipeline queues2; do
    case $layout in
      inline) args=(--pin 1) ;;
      pipeline) args=(--pin 1 --pipeline --handler-pin 0) ;;
      queues2) args=(--queues 2 --queue-cpus 0,1 --handler-pin 0) ;;
    esac
    port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$zc" -q recv --backend "$backend" --bind "127.0.0.1:$port" "${args[@]}" --hold 3 \
      --count $((2 * n)) --duration 30 --json "$out/$layout.json" >/dev/null 2>&1 &
    rx=$!
    sleep 0.5
    "$zc" -q send --dst "127.0.0.1:$port" --count "$n" --first-seq 0 --pin 0 >/dev/null 2>&1 &
    "$zc" -q send --dst "127.0.0.1:$port" --count "$n" --first-seq "$n" --pin 1 >/dev/null 2>&1 &
    wait "$rx" || true
    tail -n1 "$out/$layout.json" | jq -r --arg l "$layout" \
      '"\($l) \(.rate | floor) msg/s, missing \(.report.seq.missing), kernel drops \(.accounting.kernel_drops), queue-full \(.queue_full)"'
  done
done
