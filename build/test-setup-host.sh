#!/usr/bin/env bash
# Tests build/setup-host.sh on this machine, for real: in a private mount
# namespace, with bpffs and hugetlbfs unmounted there and one 2 MiB hugepage
# more asked for than the machine has, the first run must print each change as
# old -> new and record it, a second run must print nothing, --undo must put
# every value back and say so, newest first, and a second --undo must find
# nothing to undo. A state file from an earlier boot must be discarded. The
# machine ends as it began: the mounts were private, the hugepage count goes
# back (also when a check fails). Needs root; build/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test-setup-host: needs root (mounts, sysctl): sudo $0" >&2
  exit 1
fi
if [ -z "${ZC_SETUP_TEST_INSIDE:-}" ]; then
  ZC_SETUP_TEST_INSIDE=1 exec unshare --mount --propagation private "$0"
fi

work=$(mktemp -d /tmp/zc-test-setup-host.XXXXXX)
export ZC_SETUP_STATE=$work/state
pages=$(cat /proc/sys/vm/nr_hugepages)
more=$((pages + 1))
export ZC_HUGEPAGES=$more
# shellcheck disable=SC2317 # run by the EXIT trap
restore() {
  [ "$(cat /proc/sys/vm/nr_hugepages)" = "$more" ] && echo "$pages" >/proc/sys/vm/nr_hugepages
  rm -rf "$work"
}
trap restore EXIT

failed=0
# check WHAT EXPECTED ACTUAL
check() {
  if [ "$2" != "$3" ]; then
    printf 'test-setup-host: FAILED %s\n--- expected\n%s\n--- got\n%s\n' "$1" "$2" "$3" >&2
    failed=1
  fi
}
# mounted DIR: whether DIR shows a filesystem of its own (not its parent's).
mounted() { [ "$(stat -c %d "$1")" != "$(stat -c %d "$1/..")" ] && echo mounted || echo "not mounted"; }

for dir in /dev/hugepages /sys/fs/bpf; do
  while [ "$(mounted "$dir")" = mounted ]; do umount "$dir"; done
done

out=$(./build/setup-host.sh 2>&1)
check "first run prints each change" "\
setup-host: /sys/fs/bpf not mounted -> bpf mounted
setup-host: vm.nr_hugepages $pages -> $more
setup-host: /dev/hugepages not mounted -> hugetlbfs mounted
setup-host: old values recorded in $ZC_SETUP_STATE; \`./build/setup-host.sh --undo\` restores them
setup-host: these changes last until reboot; docs/DEPLOYMENT.md shows how to make them permanent" "$out"
check "the changes are made" "mounted mounted $more" \
  "$(mounted /sys/fs/bpf) $(mounted /dev/hugepages) $(cat /proc/sys/vm/nr_hugepages)"
check "the state file records the old values" "\
mount /sys/fs/bpf - bpf
sysctl vm.nr_hugepages $pages $more
mount /dev/hugepages - hugetlbfs" "$(grep -v -e '^#' -e '^boot ' "$ZC_SETUP_STATE")"

out=$(./build/setup-host.sh 2>&1)
check "a second run prints nothing" "" "$out"

out=$(./build/setup-host.sh --undo 2>&1)
check "--undo restores, newest first" "\
setup-host: /dev/hugepages hugetlbfs mounted -> not mounted
setup-host: vm.nr_hugepages $more -> $pages
setup-host: /sys/fs/bpf bpf mounted -> not mounted" "$out"
check "the old values are back" "not mounted not mounted $pages" \
  "$(mounted /sys/fs/bpf) $(mounted /dev/hugepages) $(cat /proc/sys/vm/nr_hugepages)"
check "the state file is gone" "absent" "$([ -e "$ZC_SETUP_STATE" ] && echo present || echo absent)"

out=$(./build/setup-host.sh --undo 2>&1)
check "a second --undo finds nothing" "setup-host: nothing to undo (no $ZC_SETUP_STATE)" "$out"

printf '# from before a reboot\nboot 00000000-0000-0000-0000-000000000000\nsysctl vm.nr_hugepages 0 %s\n' "$pages" >"$ZC_SETUP_STATE"
out=$(./build/setup-host.sh --undo 2>&1)
check "a state file from an earlier boot is discarded" "\
setup-host: $ZC_SETUP_STATE is from an earlier boot (its changes ended at reboot): discarded
setup-host: nothing to undo (no $ZC_SETUP_STATE)" "$out"
check "and nothing of it is undone" "$pages" "$(cat /proc/sys/vm/nr_hugepages)"

if ./build/setup-host.sh --bogus >/dev/null 2>&1; then st=0; else st=$?; fi
check "an unknown option is a usage error" 2 "$st"

if [ "$failed" = 0 ]; then
  echo "test-setup-host: ok (changes printed and recorded, quiet second run, undo, stale state, usage)"
fi
exit "$failed"
