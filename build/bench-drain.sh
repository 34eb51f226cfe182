#!/usr/bin/env bash
# Receiver-only cost of the socket backends: the generator fills the socket
# buffer while the receiver holds, then the receiver drains it at full speed.
# On veth the sender's CPU runs the whole kernel receive path, so in
# `zc bench` the generator is the limit; draining a full buffer takes it out.
#
#   sudo ./build/bench-drain.sh [REPS] [COUNT] [BACKENDS...]
#   sudo ./build/bench-drain.sh 5 50000 recvfrom recvmmsg uring
#
# Prints one line per run and the medians; backends are interleaved.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}; count=${2:-50000}; shift 2 || true
backends=("${@:-recvfrom}")
[ $# -eq 0 ] && backends=(recvfrom recvmmsg uring)
. build/memlock.sh
zc=./target/release/zc
[ -x "$zc" ] || cargo build --locked --release -p zc-cli --features afxdp,dpdk
ns=zcdrain-ns; host=zcdrainh; peer=zcdrainp
cleanup() { ip netns del $ns 2>/dev/null || true; ip link del $host 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $ns
ip link add $host type veth peer name $peer netns $ns
ip addr add 198.18.170.1/24 dev $host && ip link set $host up
ip -n $ns addr add 198.18.170.2/24 dev $peer && ip -n $ns link set $peer up
ip -n $ns neigh replace 198.18.170.1 lladdr "$(cat /sys/class/net/$host/address)" dev $peer nud permanent
out=$(mktemp); trap 'rm -f $out; cleanup' EXIT
for rep in $(seq "$reps"); do
  for b in "${backends[@]}"; do
    $zc recv --backend "$b" --bind 198.18.170.1:9000 --count "$count" --hold 2 --idle-exit 1 --quiet --pin 1 >"$out" 2>/dev/null &
    rx=$!
    sleep 0.5
    ip netns exec $ns $zc send --dst 198.18.170.1:9000 --count "$count" --pin 0 >/dev/null 2>&1
    wait $rx || true
    rate=$(sed -n 's/^messages .* at \([0-9.]*\) \(.pps\)$/\1 \2/p' "$out")
    cpu=$(sed -n 's/^cpu .*, \([0-9]*\) ns\/message$/\1/p' "$out")
    got=$(sed -n 's/^messages *\([0-9]*\) .*/\1/p' "$out")
    echo "rep $rep $b received $got drain-rate $rate cpu-ns/msg $cpu"
  done
done | tee /dev/stderr | awk '
  { n[$3]++; r[$3, n[$3]] = ($8 == "Mpps" ? $7 * 1000 : $7); c[$3, n[$3]] = $10 }
  function med(a, b, k,   v, i, j, t, m) { m = n[b]; for (i = 1; i <= m; i++) v[i] = a[b, i];
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
  END { print ""; print "median of runs: backend, drain rate kpps, receiver CPU ns/msg";
    for (b in n) printf "%-10s %8.1f %8.0f\n", b, med(r, b), med(c, b) }' 1>&2
