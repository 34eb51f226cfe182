//! Interface look-ups, limits and errno mapping for the AF_XDP backend.

use std::num::NonZeroU32;
use zc_core::error::{Error, Result};

/// An interface index (never 0).
pub type Ifindex = NonZeroU32;

/// A zc error for a failed call that returned `errno`.
pub(crate) fn errno_error(op: &str, errno: i32) -> Error {
    Error::io(op.to_owned(), std::io::Error::from_raw_os_error(errno))
}

/// The index of interface `name` in this network namespace.
pub fn ifindex(name: &str) -> Result<Ifindex> {
    let idx = zc_nic::ifindex(name)?;
    NonZeroU32::new(idx).ok_or_else(|| zc_nic::interface_not_found(name))
}

/// `struct ifreq` with the member SIOCGIFHWADDR fills.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    /// `ifr_hwaddr`, padded to the size of the kernel's union.
    data: IfReqData,
}

#[repr(C)]
union IfReqData {
    hwaddr: libc::sockaddr,
    _size: [u8; 24],
}

/// Runs an interface ioctl on a throw-away socket of the calling thread's
/// network namespace (sysfs shows the namespace it was mounted in, which is
/// not the thread's after `setns`, so the ioctl is used instead).
fn if_ioctl(name: &str, request: libc::c_ulong, req: &mut IfReq) -> std::io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
    }
    for (d, s) in req.name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: req is a valid ifreq whose name is NUL-terminated; the kernel
    // writes within it.
    let rc = unsafe { libc::ioctl(fd, request as _, req as *mut IfReq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(())
}

fn empty_ifreq() -> IfReq {
    IfReq {
        name: [0; libc::IFNAMSIZ],
        data: IfReqData { _size: [0; 24] },
    }
}

/// The MAC address of `name`, in the calling thread's network namespace.
pub fn mac_address(name: &str) -> Result<[u8; 6]> {
    let mut req = empty_ifreq();
    if_ioctl(name, libc::SIOCGIFHWADDR, &mut req)
        .map_err(|e| Error::io(format!("read the MAC address of {name}"), e))?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    let sa = unsafe { req.data.hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// Raises RLIMIT_MEMLOCK so that `bytes` of UMEM can be registered.
///
/// The kernel charges a UMEM to the locked-memory limit unless the process has
/// CAP_IPC_LOCK (root has it). The soft limit is raised up to the hard limit,
/// and the hard limit too when the process may (CAP_SYS_RESOURCE). Returns the
/// soft limit in force afterwards, `None` for unlimited.
pub fn raise_memlock(bytes: u64) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Some(0);
    }
    let want = bytes.saturating_add(1 << 20);
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= want {
        return (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur);
    }
    for new in [
        libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        },
        libc::rlimit {
            rlim_cur: want.max(lim.rlim_cur),
            rlim_max: want.max(lim.rlim_max),
        },
        libc::rlimit {
            rlim_cur: want.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        },
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
    use zc_core::error::ErrorKind;

    #[test]
    fn a_missing_interface_is_named_in_the_error() {
        let e = ifindex("zcnosuch0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("\"zcnosuch0\" not found"), "{e}");
    }

    #[test]
    fn loopback_has_an_all_zero_mac() {
        assert_eq!(mac_address("lo").unwrap(), [0; 6]);
        assert!(mac_address("zcnosuch0").is_err());
    }
}
