#!/usr/bin/env bash
# What a user of the published crates meets, checked: each backend builds
# alone, the examples a user starts from run, the docs build with warnings
# denied (also as docs.rs builds them: DOCS_RS set, no DPDK, libbpf or clang),
# and every crate packages and builds from its packaged sources.
# build/test.sh runs it; it needs the system packages of build/install-deps.sh
# and network access to the crates.io index (for `cargo package`).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== the umbrella (zc-net) with each backend feature alone, and with none"
for feature in epoll uring afxdp dpdk; do
  echo "-- zc-net --no-default-features --features $feature"
  cargo clippy --locked -q -p zc-net --no-default-features --features "$feature" -- -D warnings
  cargo build --locked --release -q -p zc-net --no-default-features --features "$feature" --examples
done
cargo clippy --locked -q -p zc-net --no-default-features -- -D warnings

echo "== the command as 'cargo install zc-cli' builds it: socket backends, no DPDK, libbpf or clang"
cargo clippy --locked -q -p zc-cli -- -D warnings
if cargo tree --locked -p zc-cli -e normal,build | grep -q -e bindgen -e zc-xdp-sys -e zc-dpdk-sys; then
  echo "check-packaging: zc-cli's default features pull in bindgen, zc-xdp-sys or zc-dpdk-sys" >&2
  exit 1
fi

echo "== each backend crate on its own"
for crate in zc-net-core zc-os zc-epoll zc-uring zc-linux zc-afxdp zc-dpdk zc-nic zc-testbed zc-feed zc-capture zc-xdpgen; do
  echo "-- $crate"
  cargo build --locked --release -q -p "$crate"
done

echo "== the examples a user starts from, run on loopback"
port=19400
for backend in recvfrom recvmmsg uring; do
  cargo run --locked --release -q -p zc-net --example md_handler -- "$backend" "127.0.0.1:$port" 1000
  port=$((port + 1))
done
cargo run --locked --release -q -p zc-epoll --example recv_burst -- 1000
cargo run --locked --release -q -p zc-linux --example sendfile_copy -- 8

echo "== docs, warnings denied"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --exclude zc-benches -q

echo "== docs as docs.rs builds them: DOCS_RS set, no pkg-config, libclang or clang"
DOCS_RS=1 PKG_CONFIG=/bin/false LIBCLANG_PATH=/nonexistent BPF_CLANG=/nonexistent \
  RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -q \
  -p zc-dpdk-sys -p zc-xdp-sys -p zc-afxdp -p zc-xdpgen -p zc-dpdk -p zc-net --features zc-net/afxdp,zc-net/dpdk

echo "== cargo package: every published crate, built from its packaged sources"
# cargo verifies each crate against the others through a local registry
# (target/package/tmp-registry) and unpacks them under CARGO_HOME, keyed by
# that registry's path and the version only: a second run at the same path
# would build against the first run's sources. Remove those unpacked copies.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/zc-*-0.*
cargo package --locked --workspace --exclude zc-benches 2>&1 | grep -v -e '^ *Compiling' -e '^ *Packaging' -e '^ *Updating' -e '^ *Archiving' -e '^ *Verifying'
echo "check-packaging: ok"
