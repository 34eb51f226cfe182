#!/usr/bin/env bash
# What a second receive queue buys `zc recv`: the drain rate with one queue
# (receive and handle on one thread, or --pipeline), and with --queues 2 (a
# receive thread on each CPU, one handler). Two `zc send`s pinned to CPU 0
# and CPU 1 fill the receiver's queues while it holds (--hold 3), so the rate
# is the receiver's own, between its first and its last message.
#
# The socket backends (recvmmsg, uring, recvfrom) run over loopback, with
# --queues 2 a SO_REUSEPORT pair steered by receiving CPU. No root.
#
# afxdp and dpdk run on a two-queue veth pair in a namespace this script
# makes (as root), the senders in the namespace. The peer transmits on the
# queue its XPS map gives the sending CPU, and veth receives on that queue:
# for one receive queue both CPUs send on queue 0, for --queues 2 CPU q
# sends on queue q (afxdp: two sockets on one UMEM; dpdk: a net_af_xdp port
# per queue). N is smaller there: the whole burst must fit the queue the
# receiver does not read while it holds (DPDK's 4096 descriptors).
#
# Needs 2 CPUs and jq. On 2 CPUs the bypass layouts show oversubscription,
# not scaling: their receive threads poll without sleeping (docs/BENCHMARKS.md §8).
# Usage: [BACKEND=recvmmsg|uring|recvfrom|afxdp|dpdk] [N=30000, 2000 on veth]
#        [REPS=5] build/bench-queues.sh
# Prints one line per run: layout, messages/s between the first and the last
# message, and what was missing or dropped (all 0 when the queues held it all).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${BACKEND:-recvmmsg}; reps=${REPS:-5}
out=$(mktemp -d)
# KEEP=DIR keeps each run's text summary (DIR/<rep>-<layout>.txt).
keep=${KEEP:-}
ns=zcbq; host=zcbqh; peer=zcbqp
made_ns=; made_link=
cleanup() {
  [ -n "$made_link" ] && ip link del "$host" 2>/dev/null
  [ -n "$made_ns" ] && ip netns del "$ns" 2>/dev/null
  rm -rf "$out"
}
trap cleanup EXIT

case $backend in
  afxdp|dpdk)
    veth=1; n=${N:-2000}
    cargo build --release -q -p zc-cli --features afxdp,dpdk
    ip netns add "$ns"; made_ns=1
    ip link add "$host" numrxqueues 2 numtxqueues 2 type veth peer name "$peer" \
      numrxqueues 2 numtxqueues 2 netns "$ns"; made_link=1
    # Quiet link (no IPv6 chatter), full checksums from the peer, a static
    # neighbour entry: as the testbed does.
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
    ip addr add 198.18.232.1/24 dev "$host"; ip link set "$host" up
    ip -n "$ns" addr add 198.18.232.2/24 dev "$peer"; ip -n "$ns" link set "$peer" up
    ip netns exec "$ns" ethtool -K "$peer" tx off >/dev/null
    ip -n "$ns" neigh replace 198.18.232.1 lladdr "$(cat /sys/class/net/$host/address)" \
      dev "$peer" nud permanent
    xps() { # CPU mask of tx queue 0, then of tx queue 1
      ip netns exec "$ns" sh -c "echo $1 > /sys/class/net/$peer/queues/tx-0/xps_cpus; \
        echo $2 > /sys/class/net/$peer/queues/tx-1/xps_cpus"
    }
    ;;
  *)
    veth=; n=${N:-30000}
    cargo build --release -q -p zc-cli
    ;;
esac
zc=$PWD/target/release/zc

for rep in $(seq "$reps"); do
  for layout in inline pipeline queues2; do
    case $layout in
      inline) args=(--pin 1) ;;
      pipeline) args=(--pin 1 --pipeline --handler-pin 0) ;;
      queues2) args=(--queues 2 --queue-cpus 0,1 --handler-pin 0) ;;
    esac
    if [ -n "$veth" ]; then
      if [ $layout = queues2 ]; then xps 1 2; else xps 3 0; fi
      dst=198.18.232.1:9000
      rx_args=(--interface "$host")
      send=(ip netns exec "$ns" "$zc")
    else
      port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      dst=127.0.0.1:$port
      rx_args=()
      send=("$zc")
    fi
    sink=/dev/null; [ -n "$keep" ] && sink=$keep/$rep-$layout.txt
    "$zc" -q recv --backend "$backend" --bind "$dst" "${rx_args[@]}" "${args[@]}" --hold 3 \
      --count $((2 * n)) --duration 30 --json "$out/$layout.json" >"$sink" 2>&1 &
    rx=$!
    # DPDK's EAL and the AF_XDP sockets take a moment to come up.
    sleep "$([ -n "$veth" ] && echo 2 || echo 0.5)"
    "${send[@]}" -q send --dst "$dst" --count "$n" --first-seq 0 --pin 0 >/dev/null 2>&1 &
    "${send[@]}" -q send --dst "$dst" --count "$n" --first-seq "$n" --pin 1 >/dev/null 2>&1 &
    wait "$rx" || true
    tail -n1 "$out/$layout.json" | jq -r --arg l "$layout" \
      '"\($l) \(.rate | floor) msg/s, missing \(.report.seq.missing), kernel drops \(.accounting.kernel_drops), queue-full \(.queue_full)"'
  done
done
