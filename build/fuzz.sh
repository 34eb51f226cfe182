#!/usr/bin/env bash
# A bounded fuzz run of one target, starting from the seed corpus in the repo.
# New inputs go to a temporary folder so the committed corpus only changes on purpose.
#
#   ./build/fuzz.sh frame_and_message 30     # target, seconds
#   (cd fuzz && cargo +nightly fuzz list)    # the targets
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz.sh TARGET SECONDS}
seconds=${2:-30}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain (cargo fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (builds from source: minutes)"
  cargo install cargo-fuzz --locked
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd fuzz
cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- \
  -max_total_time="$seconds" -print_final_stats=1 2>&1 | tail -n 12
