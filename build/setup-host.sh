#!/usr/bin/env bash
# Prepares this machine for zc's privileged backends and tests, and says what it
# changes: each change is printed as `old -> new` and its old value recorded,
# so that `--undo` puts the machine back. Idempotent; prints nothing when there
# is nothing to change (CI runs it on every test run).
#
#   sudo ./build/setup-host.sh          # make the changes below where needed
#   sudo ./build/setup-host.sh --undo   # restore what the recorded changes replaced
#
# What it changes, only where the machine has less:
#   /sys/fs/bpf         bpffs mounted: libxdp and libbpf pin maps and programs there
#   vm.nr_hugepages     at least ZC_HUGEPAGES (default 256) 2 MiB pages for DPDK's EAL
#   /dev/hugepages      hugetlbfs mounted (the directory made if absent)
#   net.core.rmem_max   at least 64 MiB: receivers ask for 32 MiB socket buffers
#   net.core.wmem_max   at least 16 MiB: senders' socket buffers
# All of it lasts until reboot; docs/DEPLOYMENT.md shows how to make it permanent.
# The locked-memory limit is per process, so no script can raise it for its
# caller: the scripts that start zc raise their own (build/memlock.sh), and
# docs/DEPLOYMENT.md has the system setting.
#
# State file: ZC_SETUP_STATE (default /run/zc-setup-host.state, in /run so that
# it goes with the changes at reboot). A line `boot ID` (the kernel's boot_id,
# so that a file surviving a reboot is recognised as stale), then one line per
# change, in the order made: `KIND KEY OLD NEW`, KIND one of sysctl, mount,
# mkdir; `-` stands for "none" (not mounted, not present). A change already
# recorded keeps its first OLD value: that is the one --undo restores.
# --undo goes through the lines in reverse order and restores a value only
# where it is still the NEW one recorded (a value changed since by someone
# else is left alone and said so).
set -euo pipefail

state=${ZC_SETUP_STATE:-/run/zc-setup-host.state}
changed=0
status=0
# say: one change (or restoration), on stdout; warn: a shortfall the tests
# survive; fail: what could not be done (exit status 1 at the end).
say() { echo "setup-host: $*"; changed=1; }
warn() { echo "setup-host: $*" >&2; }
fail() { echo "setup-host: $*" >&2; status=1; }

case "${1:-}" in
  "") mode=apply ;;
  --undo) mode=undo ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "setup-host: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac
if [ $# -gt 1 ]; then
  echo "setup-host: one option at most (try --help)" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: run as root: sudo $0${1:+ $1}" >&2
  exit 1
fi

boot_id=$(cat /proc/sys/kernel/random/boot_id)
header="# build/setup-host.sh: KIND KEY OLD NEW for each change it made; build/setup-host.sh --undo restores OLD"

# A state file from an earlier boot describes changes the reboot undid.
if [ -f "$state" ] && ! grep -qx "boot $boot_id" "$state"; then
  echo "setup-host: $state is from an earlier boot (its changes ended at reboot): discarded"
  rm -f "$state"
fi

# record KIND KEY OLD NEW: adds the change to the state file, or updates NEW
# when KEY is already there (its first OLD stays).
record() {
  if [ ! -f "$state" ]; then
    mkdir -p "$(dirname "$state")"
    printf '%s\nboot %s\n' "$header" "$boot_id" >"$state"
  fi
  local tmp="$state.tmp"
  awk -v k="$1" -v key="$2" -v old="$3" -v new="$4" '
    $1 == k && $2 == key { print k, key, $3, new; done = 1; next }
    { print }
    END { if (!done) print k, key, old, new }' "$state" >"$tmp"
  mv "$tmp" "$state"
}

sysctl_path() { echo "/proc/sys/${1//.//}"; }

# raise_sysctl NAME MIN: raises the integer sysctl NAME to MIN if below.
raise_sysctl() {
  local name=$1 want=$2 path old new
  path=$(sysctl_path "$name")
  old=$(<"$path")
  [ "$old" -ge "$want" ] && return 0
  if ! (echo "$want" >"$path") 2>/dev/null; then
    fail "cannot set $name to $want ($path is read-only here: in a network or user namespace other than the host's, run this on the host)"
    return 0
  fi
  new=$(<"$path")
  record sysctl "$name" "$old" "$new"
  say "$name $old -> $new"
  if [ "$new" -lt "$want" ]; then
    warn "only $new of $want for $name (memory too fragmented? reserve hugepages at boot, docs/DEPLOYMENT.md, or run DPDK with --no-huge)"
  fi
}

# has_fs FSTYPE DIR: whether DIR shows a FSTYPE filesystem. By statfs, not by
# the mount table: a mount hidden under a later one is still listed there.
has_fs() {
  local magic=$1
  [ "$1" = bpf ] && magic=bpf_fs
  [ "$(stat -f -c %T "$2" 2>/dev/null)" = "$magic" ]
}

# ensure_mount FSTYPE DIR: mounts a FSTYPE instance on DIR unless DIR has one.
ensure_mount() {
  local fstype=$1 dir=$2
  has_fs "$fstype" "$dir" && return 0
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    record mkdir "$dir" - "$dir"
    say "$dir absent -> directory made"
  fi
  if ! mount -t "$fstype" "$fstype" "$dir"; then
    fail "cannot mount $fstype on $dir"
    return 0
  fi
  record mount "$dir" - "$fstype"
  say "$dir not mounted -> $fstype mounted"
}

apply() {
  ensure_mount bpf /sys/fs/bpf
  raise_sysctl vm.nr_hugepages "${ZC_HUGEPAGES:-256}"
  ensure_mount hugetlbfs /dev/hugepages
  raise_sysctl net.core.rmem_max $((64 << 20))
  raise_sysctl net.core.wmem_max $((16 << 20))
}

# undo_one KIND KEY OLD NEW: restores one recorded change; fails (and the line
# stays recorded) when it cannot.
undo_one() {
  local kind=$1 key=$2 old=$3 new=$4 path cur
  case "$kind" in
    sysctl)
      path=$(sysctl_path "$key")
      cur=$(<"$path")
      if [ "$cur" != "$new" ]; then
        say "$key is $cur, not the $new set here: left as it is"
      elif (echo "$old" >"$path") 2>/dev/null; then
        say "$key $cur -> $(<"$path")"
      else
        fail "cannot set $key back to $old ($path is read-only here)"
        return 1
      fi
      ;;
    mount)
      if ! has_fs "$new" "$key"; then
        say "$key has no $new mounted any more: left as it is"
      elif umount "$key"; then
        say "$key $new mounted -> not mounted"
      else
        fail "cannot unmount $key (in use? \`fuser -vm $key\` shows by whom)"
        return 1
      fi
      ;;
    mkdir)
      if [ ! -d "$key" ]; then
        say "$key already gone"
      elif rmdir "$key" 2>/dev/null; then
        say "$key directory -> absent"
      else
        fail "cannot remove $key (not empty, or still a mount point)"
        return 1
      fi
      ;;
    *)
      fail "unknown line in $state: $kind $key $old $new"
      return 1
      ;;
  esac
}

undo() {
  if [ ! -f "$state" ]; then
    say "nothing to undo (no $state)"
    return 0
  fi
  local kept=() line
  # Newest change first: the hugetlbfs mount goes before its directory.
  while read -r line; do
    # shellcheck disable=SC2086 # the four fields of a state line
    undo_one $line || kept+=("$line")
  done < <(grep -v -e '^#' -e '^boot ' "$state" | tac)
  if [ ${#kept[@]} -eq 0 ]; then
    rm -f "$state"
  else
    { printf '%s\nboot %s\n' "$header" "$boot_id"; printf '%s\n' "${kept[@]}" | tac; } >"$state.tmp"
    mv "$state.tmp" "$state"
    fail "${#kept[@]} change(s) not undone, still recorded in $state; fix the cause and run --undo again"
  fi
}

if [ "$mode" = undo ]; then
  undo
  exit "$status"
fi

apply
if [ "$changed" = 1 ]; then
  say "old values recorded in $state; \`$0 --undo\` restores them"
  say "these changes last until reboot; docs/DEPLOYMENT.md shows how to make them permanent"
fi
exit "$status"
