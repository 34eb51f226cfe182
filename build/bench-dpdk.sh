#!/usr/bin/env bash
# zc-dpdk's receive loop beside DPDK's own dpdk-testpmd (rxonly) on the same
# vdev and core, run back to back ROUNDS times; prints per-round medians of the
# one-second Rx-pps windows, their ratios to testpmd, and the median ratios.
# zc runs twice a round: `frames` (rx_burst + bulk free, frames unread: the
# work testpmd's rxonly does) and `datagrams` (every frame checked by zc-core's
# parser: what a receiver hands the market-data handler).
#
#   sudo ./build/bench-dpdk.sh [ROUNDS] [SECONDS] [VDEV]     # defaults: 5 8 net_null0
#
# Both poll on CPU 1 (testpmd: -l 0,1 with its forwarding lcore on 1; zc: the
# EAL main lcore on 1), --no-huge, 8191 mbufs with a 256-mbuf cache, bursts of 32.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-8}
vdev=${3:-net_null0}
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

cargo bench -p zc-dpdk --bench rx_loop --no-run 2>/dev/null
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), DPDK $(pkg-config --modversion libdpdk)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %12s %8s %12s %8s\n' round testpmd_Mpps frames_Mpps ratio dgrams_Mpps ratio
rf=(); rd=(); all_t=(); all_f=(); all_d=()
testpmd() {
  # Drop the first reported windows (0, before forwarding starts) and one more
  # (warm-up), keep the following $seconds.
  timeout -s INT $((seconds + 8)) dpdk-testpmd -l 0,1 --no-huge -m 512 --no-pci --no-shconf \
      --no-telemetry --log-level=warning --vdev "$vdev" -- --forward-mode=rxonly --nb-cores=1 \
      --total-num-mbufs=8191 --mbcache=256 --burst=32 --stats-period 1 2>/dev/null \
    | awk '/Rx-pps/ {print $2}' | awk '$1 > 0' | tail -n +2 | head -n "$seconds" || true
}
zc() {
  cargo bench -q -p zc-dpdk --bench rx_loop -- --vdev "$vdev" --core 1 --seconds "$seconds" --mode "$1" 2>/dev/null \
    | awk '/^Rx-pps per window/ {for (i = 4; i <= NF; i++) print $i}'
}
mpps() { awk -v x="$1" 'BEGIN {printf "%.3f", x / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
for r in $(seq 1 "$rounds"); do
  t=$(testpmd); f=$(zc frames); d=$(zc datagrams)
  tm=$(echo "$t" | median); fm=$(echo "$f" | median); dm=$(echo "$d" | median)
  printf '%-6s %12s %12s %8s %12s %8s\n' "$r" "$(mpps "$tm")" "$(mpps "$fm")" "$(ratio "$fm" "$tm")" "$(mpps "$dm")" "$(ratio "$dm" "$tm")"
  rf+=("$(ratio "$fm" "$tm")"); rd+=("$(ratio "$dm" "$tm")")
  all_t+=($t); all_f+=($f); all_d+=($d)
done
summary() { local m lo hi; m=$(printf '%s\n' "$@" | median); lo=$(printf '%s\n' "$@" | sort -g | head -1); hi=$(printf '%s\n' "$@" | sort -g | tail -1); echo "$m (min $lo, max $hi)"; }
echo "all windows, median Mpps: testpmd $(mpps "$(printf '%s\n' "${all_t[@]}" | median)") (${#all_t[@]} windows), zc frames $(mpps "$(printf '%s\n' "${all_f[@]}" | median)") (${#all_f[@]}), zc datagrams $(mpps "$(printf '%s\n' "${all_d[@]}" | median)") (${#all_d[@]})"
best() { printf '%s\n' "$@" | sort -g | tail -1; }
bt=$(best "${all_t[@]}"); bf=$(best "${all_f[@]}"); bd=$(best "${all_d[@]}")
echo "best window (least disturbed by other load), Mpps: testpmd $(mpps "$bt"), zc frames $(mpps "$bf") (ratio $(ratio "$bf" "$bt")), zc datagrams $(mpps "$bd") (ratio $(ratio "$bd" "$bt"))"
echo "zc frames / testpmd, median of per-round ratios: $(summary "${rf[@]}")"
echo "zc datagrams / testpmd, median of per-round ratios: $(summary "${rd[@]}")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
