#!/usr/bin/env bash
# The README's quick start on a fresh minimal Debian 12, as a new user would
# meet it: a root filesystem made with `debootstrap --variant=minbase bookworm`
# (the package set of the debian:12 container image), a clean clone of this
# repository's committed HEAD in /root/zc, and every command run as root in a
# chroot with a scrubbed environment. Not run by CI; what it showed, and every
# way it differs from a real fresh machine, is in docs/DEPLOYMENT.md.
#
#   sudo ./build/fresh-debian.sh [STEP...]      # default: every step, in order
#
# Steps:
#   rootfs  debootstrap the root filesystem (kept between runs; --fresh removes
#           it first) and clone or update /root/zc to this repository's HEAD
#   deps    ./build/install-deps.sh, then `cargo fetch` for the workspace and
#           the fuzz targets, so that later steps need no network
#   smoke   build zc, ./build/setup-host.sh, `zc doctor`, one privileged veth test
#   bench   ./build/bench.sh $ZC_FRESH_BENCH_ARGS (default: none, the README's command)
#   test    CI=true ./build/test.sh (the README's second command, as CI runs it)
#
# The Rust toolchain is not downloaded: this machine's ~/.rustup and
# ~/.cargo/bin are bind-mounted read-only into the chroot (install-deps.sh then
# finds cargo and skips rustup). Crates are downloaded into the chroot's own
# ~/.cargo/registry, or with ZC_FRESH_CRATES=host copied there from this
# machine's and used offline (for a network that reaches the Debian mirror but
# not crates.io). Everything else comes from the Debian mirror.
#
# Mounts (proc, sysfs, /dev, a tmpfs on /run, the toolchain) live in a private
# mount namespace and vanish when the script ends. bpffs and hugetlbfs are not
# mounted for it: setup-host.sh mounts them, as on a new machine. The steps
# smoke, bench and test create network namespaces and veth pairs: where other
# test runs share the machine, run those steps in a private network namespace
# (e.g. `unshare --net`, with lo up); rootfs and deps need the network.
#
#   ZC_FRESH_ROOT    the root filesystem (default /var/tmp/zc-fresh-debian;
#                    never inside the repository)
#   ZC_FRESH_MIRROR  the Debian mirror (default: the first URI in this host's
#                    apt sources, else http://deb.debian.org/debian)
#   ZC_FRESH_CRATES  download (default) or host (see above)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${ZC_FRESH_ROOT:-/var/tmp/zc-fresh-debian}
crates=${ZC_FRESH_CRATES:-download}
say() { echo "fresh-debian: $*"; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

fresh=0
steps=()
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --fresh) fresh=1 ;;
    rootfs | deps | smoke | bench | test) steps+=("$arg") ;;
    *) echo "fresh-debian: unknown step or option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#steps[@]} -gt 0 ] || steps=(rootfs deps smoke bench test)
case "$crates" in
  download) offline=false ;;
  host) offline=true ;;
  *) echo "fresh-debian: ZC_FRESH_CRATES must be download or host, not '$crates'" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-debian: run as root (debootstrap, chroot, mounts): sudo $0" >&2
  exit 1
fi
case "$root/" in
  "$repo"/*) echo "fresh-debian: ZC_FRESH_ROOT=$root is inside the repository; put it elsewhere" >&2; exit 2 ;;
esac

# Mounts are made in a private mount namespace: re-enter this script there.
if [ -z "${ZC_FRESH_INSIDE:-}" ]; then
  ZC_FRESH_INSIDE=1 exec unshare --mount --propagation private "$0" "$@"
fi

mirror() {
  if [ -n "${ZC_FRESH_MIRROR:-}" ]; then
    echo "$ZC_FRESH_MIRROR"
    return
  fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '$1 == "URIs:" && $2 !~ /security/ {print $2; exit}')
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /security/ && $2 !~ /^\[/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

step_rootfs() {
  if [ "$fresh" = 1 ] && [ -d "$root" ]; then
    say "removing $root (--fresh)"
    rm -rf --one-file-system "$root"
  fi
  if [ ! -f "$root/etc/debian_version" ]; then
    command -v debootstrap >/dev/null || {
      say "installing debootstrap on this host"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
    }
    local m
    m=$(mirror)
    say "debootstrap --variant=minbase bookworm $root $m"
    debootstrap --variant=minbase bookworm "$root" "$m" | awk '/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) /{next} {print "  " $0; fflush()}'
    # The sources of the debian:12 image: the release, its updates and security.
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $m
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${m%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  # A clean clone of the committed HEAD; an existing clone is moved to it and
  # keeps its target/ (gitignored), so that a second run does not rebuild all.
  local head
  head=$(git -C "$repo" rev-parse HEAD)
  if [ ! -d "$root/root/zc/.git" ]; then
    git clone -q --no-local "$repo" "$root/root/zc"
  fi
  git -C "$root/root/zc" fetch -q "$repo" "$head"
  git -C "$root/root/zc" checkout -q --detach "$head"
  git -C "$root/root/zc" clean -qfdx -e /target -e /fuzz/target
  say "/root/zc at $(git -C "$root/root/zc" log -1 --format='%h %s')"
  if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
    say "note: uncommitted changes in $repo are not in the clone"
  fi
}

mount_chroot() {
  mountpoint -q "$root/proc" && return
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --bind /dev "$root/dev" # /dev alone: no hugetlbfs, no devpts from the host
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
  mount -t tmpfs tmpfs "$root/dev/shm"
  mount -t tmpfs tmpfs "$root/run"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # The host's toolchain, read-only: this sandbox cannot download one.
  local home=${HOME:-/root}
  mkdir -p "$root/root/.rustup" "$root/root/.cargo/bin"
  mount --bind "$home/.rustup" "$root/root/.rustup"
  mount -o remount,bind,ro "$root/root/.rustup"
  mount --bind "$home/.cargo/bin" "$root/root/.cargo/bin"
  mount -o remount,bind,ro "$root/root/.cargo/bin"
  cp "$home/.cargo/env" "$root/root/.cargo/env"
  if [ "$crates" = host ]; then
    say "copying $home/.cargo/registry into the chroot's (ZC_FRESH_CRATES=host)"
    mkdir -p "$root/root/.cargo/registry"
    cp -a -u "$home/.cargo/registry/." "$root/root/.cargo/registry/"
  fi
}

# in_chroot COMMAND: runs COMMAND with bash in /root/zc, with only the
# environment a root login on a new machine would have.
in_chroot() {
  mount_chroot
  chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin CARGO_NET_OFFLINE=$offline \
    /bin/bash -c "set -euo pipefail; cd /root/zc; $1"
}

# The commands below are expanded by the shell in the chroot.
# shellcheck disable=SC2016
step_deps() {
  in_chroot './build/install-deps.sh
    . "$HOME/.cargo/env"
    cargo fetch --locked
    cargo +nightly fetch --locked --manifest-path fuzz/Cargo.toml'
}

# shellcheck disable=SC2016
step_smoke() {
  in_chroot '. "$HOME/.cargo/env"
    cargo build --locked --release -p zc-cli
    ./build/setup-host.sh
    . build/memlock.sh
    ./target/release/zc doctor || true
    ZC_REQUIRE_PRIVILEGED=1 cargo test --locked --release -p zc-epoll --test testbed \
      recvmmsg_counts_gaps_and_duplicates_exactly'
}

step_bench() { in_chroot "./build/bench.sh ${ZC_FRESH_BENCH_ARGS:-}"; }

step_test() { in_chroot 'CI=true ./build/test.sh'; }

say "root filesystem $root; steps ${steps[*]}"
for s in "${steps[@]}"; do
  say "== $s"
  start=$SECONDS
  "step_$s"
  say "== $s done in $((SECONDS - start)) s"
done
