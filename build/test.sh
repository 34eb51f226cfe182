#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, prepares the
# machine (hugepages, bpffs), checks formatting and lints, then runs every test
# and a short run of every fuzz target.
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
  ./build/test-setup-host.sh
fi
. build/memlock.sh
if [ "${CI:-}" = "true" ]; then
  export ZC_REQUIRE_PRIVILEGED=1
fi

# zc-cli builds only the socket backends by default; CI turns on the AF_XDP
# and DPDK ones too, so that every backend is linted and tested.
all_backends=(--features zc-cli/afxdp,zc-cli/dpdk)

# The cheap gates first: formatting, then lints (clippy's debug-profile check
# build is the price of failing fast on a lint or an unsafe block without its
# SAFETY comment), then every test, then the fuzzers.
echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (workspace, all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked "${all_backends[@]}" -- -D warnings

echo "== cargo test (workspace)"
cargo test --workspace --locked --release --no-fail-fast "${all_backends[@]}"

# What a user of the published crates meets: each backend alone, the
# examples, the docs (also as docs.rs builds them), cargo package.
./build/check-packaging.sh

# Every fuzz target, briefly, from its committed corpus: ZC_FUZZ_SECONDS each
# (default 8; 11 targets). From clean on 2 cores the first run spends about
# 90 s building what all targets share (and, on a new machine, about 90 s
# installing cargo-fuzz); the runs then take under 2 minutes in all. Longer
# runs: build/fuzz.sh TARGET SECONDS.
fuzz_seconds=${ZC_FUZZ_SECONDS:-8}
for src in fuzz/fuzz_targets/*.rs; do
  target=$(basename "$src" .rs)
  echo "== fuzz: $target ($fuzz_seconds s)"
  ./build/fuzz.sh "$target" "$fuzz_seconds"
done
