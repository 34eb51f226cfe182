#!/usr/bin/env bash
# How deep a busy-polling DPDK receiver's ring must be for a given stall:
# `zc recv --backend dpdk` on the testbed's veth (net_af_xdp, 4096
# descriptors) receives `zc send` at RATE messages/s from the peer namespace;
# one second in, the receiver is stopped (SIGSTOP) for STALL ms, then
# continued. Frames that arrive while nobody polls wait in the ring; what does
# not fit is lost (missing), and the receiver's poll-gap counter sees the stall.
# Usage: [BACKEND=dpdk|dpdk-packet|afxdp|recvmmsg] build/bench-stall.sh [RATE ...]
#        (as root; default dpdk, 50000 100000)
# Prints one line per (rate, stall): arrivals during the stall, missing,
# poll gaps and the longest one.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p zc-cli --features afxdp,dpdk
zc=$PWD/target/release/zc
ns=zcstall; host=zcstallh; peer=zcstallp
# Removes only what this run created: an existing namespace or link with
# these names (another run's, or someone else's) makes `ip ... add` fail.
made_ns=; made_link=
cleanup() {
  [ -n "$made_link" ] && ip link del "$host" 2>/dev/null
  [ -n "$made_ns" ] && ip netns del "$ns" 2>/dev/null
  true
}
trap cleanup EXIT
ip netns add "$ns"; made_ns=1
ip link add "$host" type veth peer name "$peer" netns "$ns"; made_link=1
ip addr add 198.18.231.1/24 dev "$host"; ip link set "$host" up
ip -n "$ns" addr add 198.18.231.2/24 dev "$peer"; ip -n "$ns" link set "$peer" up
ip -n "$ns" link set lo up
# As the testbed does: full UDP checksums from the peer (veth would leave them
# to an offload the DPDK parser then refuses), and a static neighbour entry
# (net_af_xdp's program takes every frame of the queue, ARP included).
ip netns exec "$ns" ethtool -K "$peer" tx off >/dev/null
ip -n "$ns" neigh replace 198.18.231.1 lladdr "$(cat /sys/class/net/$host/address)" dev "$peer" nud permanent
rates=("$@")
[ ${#rates[@]} -eq 0 ] && rates=(50000 100000)
printf '%-8s %-8s %-10s %-10s %-10s %-6s %s\n' rate stall_ms arrivals received missing gaps longest
for rate in "${rates[@]}"; do
  for stall in 20 50 100 200; do
    count=$((rate * 3))
    json=$(mktemp)
    "$zc" -q recv --backend "${BACKEND:-dpdk}" --interface "$host" --bind 198.18.231.1:9700 \
      --count "$count" --idle-exit 1 --duration 30 --json "$json" >/dev/null 2>&1 &
    rx=$!
    sleep 2
    ip netns exec "$ns" "$zc" -q send --dst 198.18.231.1:9700 --bind 198.18.231.2:0 \
      --count "$count" --rate "$rate" >/dev/null 2>&1 &
    tx=$!
    sleep 1
    kill -STOP "$rx"; sleep "$(awk "BEGIN { print $stall / 1000 }")"; kill -CONT "$rx"
    wait "$tx"; wait "$rx" || true
    line=$(tail -1 "$json")
    missing=$(jq '.report.seq.missing' <<<"$line")
    gaps=$(jq '[.rx.extra[] | select(.[0]=="poll_gaps") | .[1]][0] // "n/a"' <<<"$line")
    longest=$(jq '[.rx.extra[] | select(.[0]=="longest_poll_gap_us") | .[1]][0] // "n/a"' <<<"$line")
    received=$(jq '.report.seq.received' <<<"$line")
    printf '%-8s %-8s %-10s %-10s %-10s %-6s %s us\n' "$rate" "$stall" $((rate * stall / 1000)) "$received" "$missing" "$gaps" "$longest"
    rm -f "$json"
  done
done
