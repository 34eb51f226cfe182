#!/usr/bin/env bash
# zc-dpdk's receive loop beside DPDK's own dpdk-testpmd (rxonly) on the same
# vdev and core, run back to back ROUNDS times; prints per-round medians of the
# one-second Rx-pps windows, their ratios to testpmd, and the median ratios.
# zc runs twice a round: `frames` (rx_burst + bulk free, frames unread: the
# work testpmd's rxonly does) and `datagrams` (every frame checked by zc-core's
# parser: what a receiver hands the market-data handler).
#
# Two figures per run: the median of one-second wall-clock Rx-pps windows
# (what testpmd prints), and frames per second of the polling thread's CPU
# time (testpmd: RX-packets at exit over its rte-worker-1 thread's utime+stime
# from /proc; zc: ipackets over CLOCK_THREAD_CPUTIME_ID). On a core shared with
# other work the second is the steadier one: time the thread is not running
# counts in neither.
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
. build/memlock.sh

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

cargo bench -p zc-dpdk --bench rx_loop --no-run 2>/dev/null
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), DPDK $(pkg-config --modversion libdpdk)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s | %9s %9s %6s %9s %6s | %9s %9s %6s %9s %6s\n' round testpmd frames ratio dgrams ratio testpmd frames ratio dgrams ratio
printf '%-6s | %-44s | %-44s\n' "" "wall-clock Rx-pps, median of windows (Mpps)" "per CPU-second of the polling thread (Mpps)"
rf=(); rd=(); cf=(); cd=(); all_t=(); all_f=(); all_d=()
tick=$(getconf CLK_TCK)
log=$(mktemp); trap 'rm -f "$log"' EXIT
testpmd() {
  # Writes the kept Rx-pps windows to stdout and "cpu RX-packets seconds" last.
  dpdk-testpmd -l 0,1 --no-huge -m 512 --no-pci --no-shconf \
      --no-telemetry --log-level=warning --vdev "$vdev" -- --forward-mode=rxonly --nb-cores=1 \
      --total-num-mbufs=8191 --mbcache=256 --burst=32 --stats-period 1 >"$log" 2>&1 &
  local pid=$! ticks=0 t
  sleep $((seconds + 5))
  for t in /proc/$pid/task/*; do
    if [ "$(cat "$t/comm" 2>/dev/null)" = rte-worker-1 ]; then
      ticks=$(awk '{print $14 + $15}' "$t/stat")
    fi
  done
  kill -INT "$pid"; wait "$pid" || true
  # Drop the windows before forwarding starts (0) and one more (warm-up).
  awk '/Rx-pps/ {print $2}' "$log" | awk '$1 > 0' | tail -n +2 | head -n "$seconds"
  awk -v t="$ticks" -v hz="$tick" '/Accumulated forward statistics/ {f = 1} f && /RX-packets:/ {print "cpu", $2, t / hz; exit}' "$log"
}
zc() {
  cargo bench -q -p zc-dpdk --bench rx_loop -- --vdev "$vdev" --core 1 --seconds "$seconds" --mode "$1" 2>/dev/null \
    | awk '/^Rx-pps per window/ {for (i = 4; i <= NF; i++) print $i} /^per CPU-second/ {print "cpu", substr($5, 2), $8}'
}
windows() { grep -v '^cpu'; }
percpu() { awk '/^cpu/ {if ($3 > 0) print $2 / $3; else print 0}'; }
mpps() { awk -v x="$1" 'BEGIN {printf "%.3f", x / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
for r in $(seq 1 "$rounds"); do
  t=$(testpmd); f=$(zc frames); d=$(zc datagrams)
  tm=$(echo "$t" | windows | median); fm=$(echo "$f" | windows | median); dm=$(echo "$d" | windows | median)
  tc=$(echo "$t" | percpu); fc=$(echo "$f" | percpu); dc=$(echo "$d" | percpu)
  printf '%-6s | %9s %9s %6s %9s %6s | %9s %9s %6s %9s %6s\n' "$r" \
    "$(mpps "$tm")" "$(mpps "$fm")" "$(ratio "$fm" "$tm")" "$(mpps "$dm")" "$(ratio "$dm" "$tm")" \
    "$(mpps "$tc")" "$(mpps "$fc")" "$(ratio "$fc" "$tc")" "$(mpps "$dc")" "$(ratio "$dc" "$tc")"
  rf+=("$(ratio "$fm" "$tm")"); rd+=("$(ratio "$dm" "$tm")")
  cf+=("$(ratio "$fc" "$tc")"); cd+=("$(ratio "$dc" "$tc")")
  all_t+=($(echo "$t" | windows)); all_f+=($(echo "$f" | windows)); all_d+=($(echo "$d" | windows))
done
summary() { local m lo hi; m=$(printf '%s\n' "$@" | median); lo=$(printf '%s\n' "$@" | sort -g | head -1); hi=$(printf '%s\n' "$@" | sort -g | tail -1); echo "$m (min $lo, max $hi)"; }
echo "all windows, median Mpps: testpmd $(mpps "$(printf '%s\n' "${all_t[@]}" | median)") (${#all_t[@]} windows), zc frames $(mpps "$(printf '%s\n' "${all_f[@]}" | median)") (${#all_f[@]}), zc datagrams $(mpps "$(printf '%s\n' "${all_d[@]}" | median)") (${#all_d[@]})"
echo "wall-clock, zc frames / testpmd, median of per-round ratios: $(summary "${rf[@]}")"
echo "wall-clock, zc datagrams / testpmd, median of per-round ratios: $(summary "${rd[@]}")"
echo "per CPU-second, zc frames / testpmd, median of per-round ratios: $(summary "${cf[@]}")"
echo "per CPU-second, zc datagrams / testpmd, median of per-round ratios: $(summary "${cd[@]}")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
