#!/usr/bin/env bash
# Replay pacing accuracy: how late `zc replay` sends against each datagram's
# intended time, at fixed rates, on loopback (no wire in the way).
# A capture of COUNT datagrams is recorded once with `zc recv --capture`, then
# replayed REPS times at each rate into a `zc recv`; each run prints the
# lateness p50/p99 (send time minus intended send time), then the medians.
#
#   sudo ./build/bench-replay.sh [REPS] [COUNT] [RATES...]
#   sudo ./build/bench-replay.sh 5 100000 10000 100000
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}; count=${2:-100000}; shift 2 || true
rates=("$@")
[ ${#rates[@]} -eq 0 ] && rates=(10000 100000)
zc=./target/release/zc
[ -x "$zc" ] || cargo build --locked --release -p zc-cli
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
port=19610
"$zc" recv --bind 127.0.0.1:$port --count "$count" --idle-exit 3 --quiet \
  --capture "$dir/feed.pcap" >"$dir/capture.txt" &
sleep 0.5
"$zc" send --dst 127.0.0.1:$port --count "$count" --rate 200000 >/dev/null
wait
grep '^capture' "$dir/capture.txt"
for rate in "${rates[@]}"; do
  for rep in $(seq "$reps"); do
    "$zc" recv --bind 127.0.0.1:$((port + 1)) --idle-exit 2 --quiet >/dev/null &
    rx=$!
    sleep 0.3
    "$zc" replay "$dir/feed.pcap" --dst 127.0.0.1:$((port + 1)) --rate "$rate" --json >"$dir/r.json"
    wait $rx || true # the receiver reports losses with exit code 1; pacing is what is measured
    python3 -c "
import json; r = json.load(open('$dir/r.json')); l = r['late_ns']
print(f\"rate $rate run $rep: sent {r['sent']} at {r['rate_pps']:.0f} pps, late p50 {l['p50']} ns p99 {l['p99']} ns max {l['max']} ns\")
" | tee -a "$dir/runs.txt"
  done
done
python3 - "$dir/runs.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"rate (\d+) run \d+: .* late p50 (\d+) ns p99 (\d+) ns", line)
    runs.setdefault(int(m[1]), []).append((int(m[2]), int(m[3])))
for rate, v in runs.items():
    print(f"median of {len(v)} runs at {rate} pps: late p50 {statistics.median(p for p, _ in v):.0f} ns, "
          f"p99 {statistics.median(q for _, q in v):.0f} ns")
PY
