//! Interface look-ups, limits and errno mapping for the AF_XDP backend.

use std::ffi::CString;
use std::num::NonZeroU32;
use zc_core::error::{Error, ErrorKind, Result};

/// An interface index (never 0).
pub type Ifindex = NonZeroU32;

/// A zc error for a failed call that returned `errno`.
pub(crate) fn errno_error(op: &str, errno: i32) -> Error {
    Error::io(op.to_owned(), std::io::Error::from_raw_os_error(errno))
}

/// The index of interface `name` in this network namespace.
pub fn ifindex(name: &str) -> Result<Ifindex> {
    let c = CString::new(name).map_err(|_| Error::config(format!("interface name {name:?} contains a NUL byte")))?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    NonZeroU32::new(idx).ok_or_else(|| {
        Error::new(ErrorKind::NotFound, format!("interface {name:?} not found in this network namespace"))
            .with_fix("list the interfaces with `ip -br link`, or run in the namespace that has it (`ip netns exec NS ...`)")
    })
}

/// Receive queues of `name`, from sysfs (`/sys/class/net/NAME/queues/rx-*`).
pub fn rx_queues(name: &str) -> Result<u32> {
    let dir = format!("/sys/class/net/{name}/queues");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(format!("read {dir}"), e))?;
    let n = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(n as u32)
}

/// Checks that `queue` exists on `name`.
pub fn check_queue(name: &str, queue: u32) -> Result<()> {
    let n = rx_queues(name)?;
    if queue >= n {
        return Err(Error::config(format!(
            "queue {queue} is out of range: {name} has {n} receive queue{} (0..={})",
            if n == 1 { "" } else { "s" },
            n.saturating_sub(1)
        ))
        .with_fix(format!("pick a queue below {n} (see `ethtool -l {name}`), or add queues with `ethtool -L {name} combined N`")));
    }
    Ok(())
}

/// Raises RLIMIT_MEMLOCK so that `bytes` of UMEM can be registered.
///
/// The kernel charges a UMEM to the locked-memory limit unless the process has
/// CAP_IPC_LOCK (root has it). The soft limit is raised up to the hard limit,
/// and the hard limit too when the process may (CAP_SYS_RESOURCE). Returns the
/// soft limit in force afterwards, `None` for unlimited.
pub fn raise_memlock(bytes: u64) -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Some(0);
    }
    let want = bytes.saturating_add(1 << 20);
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= want {
        return (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur);
    }
    for new in [
        libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY },
        libc::rlimit { rlim_cur: want.max(lim.rlim_cur), rlim_max: want.max(lim.rlim_max) },
        libc::rlimit { rlim_cur: want.min(lim.rlim_max), rlim_max: lim.rlim_max },
    ] {
        // SAFETY: new is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &new) } == 0 {
            return (new.rlim_cur != libc::RLIM_INFINITY).then_some(new.rlim_cur);
        }
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interface_is_named_in_the_error() {
        let e = ifindex("zcnosuch0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("\"zcnosuch0\" not found"), "{e}");
    }

    #[test]
    fn loopback_has_one_queue_and_queue_one_is_out_of_range() {
        assert!(check_queue("lo", 0).is_ok());
        let e = check_queue("lo", 1).unwrap_err();
        assert!(e.to_string().contains("queue 1 is out of range: lo has 1 receive queue"), "{e}");
    }
}
