#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, prepares the
# machine (hugepages, bpffs), then runs every test and a short fuzz run.
#
#   sudo ./build/test.sh
#
# Privileged tests (network namespaces, veth, AF_XDP, DPDK) skip with a message
# when not root; with CI=true (or ZC_REQUIRE_PRIVILEGED=1) a skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

./build/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if [ "$(id -u)" -eq 0 ]; then
  ./build/setup-host.sh
fi
if [ "${CI:-}" = "true" ]; then
  export ZC_REQUIRE_PRIVILEGED=1
fi

echo "== fuzz: frame_and_message (${ZC_FUZZ_SECONDS:-30} s)"
./build/fuzz.sh frame_and_message "${ZC_FUZZ_SECONDS:-30}"

echo "== cargo test (workspace)"
cargo test --workspace --locked --release --no-fail-fast
