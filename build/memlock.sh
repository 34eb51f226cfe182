# shellcheck shell=bash
# Sourced, not run, by the build/*.sh scripts that start zc or its tests:
#
#   . "$(dirname "$0")/memlock.sh"
#
# Raises the locked-memory limit (RLIMIT_MEMLOCK) of the sourcing shell, which
# zc and everything else the script starts inherit. A limit is per process and
# passes only from parent to child: raised in a script the caller runs, it ends
# with that script. AF_XDP UMEM areas, io_uring registered buffers and memory
# DPDK locks are charged to it, unless the process has CAP_IPC_LOCK.
# The system setting for operators (limits.conf, systemd LimitMEMLOCK) is in
# docs/DEPLOYMENT.md.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "memlock.sh: source it from the shell that starts zc (. build/memlock.sh); run alone it changes nothing" >&2
  exit 2
fi

zc_raise_memlock() {
  local old hard cap now
  old=$(ulimit -S -l)
  [ "$old" = unlimited ] && return 0
  if ulimit -l unlimited 2>/dev/null; then
    echo "memlock: $old KiB -> unlimited, for this run (permanently: docs/DEPLOYMENT.md)"
    return 0
  fi
  # Raising the hard limit needs CAP_SYS_RESOURCE; the soft one can reach it.
  hard=$(ulimit -H -l)
  ulimit -S -l "$hard"
  now="$old KiB -> $hard KiB,"
  [ "$old" = "$hard" ] && now="stays at $hard KiB,"
  cap=$(awk '$1 == "CapEff:" {print $2}' /proc/self/status)
  if (((0x$cap >> 14) & 1)); then # CAP_IPC_LOCK
    echo "memlock: $now the hard limit (raising it needs CAP_SYS_RESOURCE);" \
      "not binding here: CAP_IPC_LOCK exempts this run from it"
  else
    echo "memlock: $now the hard limit (raising it needs CAP_SYS_RESOURCE):" \
      "AF_XDP and DPDK may fail to lock memory; raise it for the caller (docs/DEPLOYMENT.md)" >&2
  fi
}
zc_raise_memlock
unset -f zc_raise_memlock
