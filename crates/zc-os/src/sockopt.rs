//! Socket options: the one `setsockopt`/`getsockopt` wrapper, the kernel's
//! drop counter (`SO_MEMINFO`), and the one receive-buffer policy.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use zc_core::{Error, Result};

fn socklen_of<T>() -> libc::socklen_t {
    // Socket option values are a few dozen bytes at most.
    std::mem::size_of::<T>() as libc::socklen_t
}

/// Sets an option whose value is a `T` (an `int`, a `u32`, a C struct).
pub fn set<T: Copy>(fd: BorrowedFd<'_>, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of exactly the size passed; the
    // kernel only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            socklen_of::<T>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets an `int` option.
pub fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    set(fd, level, name, &value)
}

/// Reads an option into `value` and returns how many bytes the kernel wrote
/// (an older kernel may write fewer than `size_of::<T>()`).
///
/// # Safety
/// Every byte pattern the kernel may write must be a valid `T`: a plain C
/// struct or integer, without references, enums or other niches.
pub unsafe fn get_into<T>(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    value: &mut T,
) -> io::Result<usize> {
    let mut len = socklen_of::<T>();
    // SAFETY: the kernel writes at most `len` bytes into `value`, a live T of
    // exactly that size, and any bytes are a valid T (the caller's promise).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *mut T).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(len as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads an `int` option.
pub fn get_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value = 0i32;
    // SAFETY: every bit pattern is a valid i32.
    let len = unsafe { get_into(fd, level, name, &mut value)? };
    if len != std::mem::size_of::<i32>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(value)
}

/// Index of `SK_MEMINFO_DROPS` in the `SO_MEMINFO` array (`linux/sock_diag.h`).
const SK_MEMINFO_DROPS: usize = 8;

/// Datagrams the kernel dropped on this socket because its receive buffer was
/// full (`SO_MEMINFO`, `SK_MEMINFO_DROPS`); `None` on a kernel too old to
/// report it.
pub fn socket_drops(fd: BorrowedFd<'_>) -> Option<u64> {
    // Room for the 9 values of today's kernels and any a newer one appends.
    let mut info = [0u32; 16];
    // SAFETY: every bit pattern is a valid [u32; 16].
    let written = unsafe { get_into(fd, libc::SOL_SOCKET, libc::SO_MEMINFO, &mut info) }.ok()?;
    (written / std::mem::size_of::<u32>() > SK_MEMINFO_DROPS)
        .then(|| u64::from(info[SK_MEMINFO_DROPS]))
}

/// What [`size_rcvbuf`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcvBuf {
    /// Bytes the kernel granted (it doubles a request for its bookkeeping).
    pub granted: usize,
    /// Said when the request was capped by `net.core.rmem_max`, with the fix.
    pub capped: Option<String>,
}

/// Asks for `want` bytes of receive buffer: `SO_RCVBUFFORCE` first, which
/// goes past `net.core.rmem_max` for a process with CAP_NET_ADMIN, else
/// `SO_RCVBUF`, which the kernel caps at that limit. A cap is logged as a
/// warning and returned, so the caller can report it in its mode.
pub fn size_rcvbuf(fd: BorrowedFd<'_>, want: usize) -> Result<RcvBuf> {
    let ask = i32::try_from(want)
        .map_err(|_| Error::config(format!("receive buffer of {want} bytes is beyond 2 GiB")))?;
    if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, ask).is_err() {
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, ask)
            .map_err(|e| Error::io("setsockopt SO_RCVBUF", e))?;
    }
    let got = get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map_err(|e| Error::io("getsockopt SO_RCVBUF", e))?;
    let granted = usize::try_from(got).unwrap_or(0);
    let capped = (granted < want.saturating_mul(2)).then(|| {
        let msg = format!(
            "SO_RCVBUF capped at {granted} bytes (asked {want}) by net.core.rmem_max; raise it with `sysctl -w net.core.rmem_max={want}` or run with CAP_NET_ADMIN"
        );
        tracing::warn!("{msg}");
        msg
    });
    Ok(RcvBuf { granted, capped })
}

/// `SO_TIMESTAMPING`, and `SCM_TIMESTAMPING` for the control message it
/// adds: the `SO_TIMESTAMPING_OLD` number, which targets with a 64-bit
/// `time_t` use (`asm-generic/socket.h`); libc does not define it for Linux.
pub const SO_TIMESTAMPING: i32 = 37;
/// The control message type of [`SO_TIMESTAMPING`] (the same number).
pub const SCM_TIMESTAMPING: i32 = SO_TIMESTAMPING;
// The `_NEW` number (65) is for 32-bit targets with a 64-bit time_t.
const _: () = assert!(std::mem::size_of::<libc::time_t>() == 8);

/// What [`enable_rx_timestamps`] asks for, as a mode line shows it.
pub const RX_TIMESTAMPS_MODE: &str = "rx timestamps: SO_TIMESTAMPING, the NIC's raw hardware \
     stamp when its receive timestamping is on, else the kernel's software stamp (CLOCK_REALTIME)";

/// Asks for a receive timestamp on every datagram (`SCM_TIMESTAMPING`): the
/// kernel's software stamp, and the NIC's raw hardware stamp when the NIC
/// stamps received packets (its filter is set host-wide, by `ptp4l` or
/// `hwstamp_ctl -r 1`; zc does not change it). [`crate::cmsg::receive_info`]
/// prefers the hardware stamp.
pub fn enable_rx_timestamps(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = libc::SOF_TIMESTAMPING_RX_SOFTWARE
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_RX_HARDWARE
        | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
    set(fd, libc::SOL_SOCKET, SO_TIMESTAMPING, &flags)
        .map_err(|e| Error::io("setsockopt SO_TIMESTAMPING", e))
}

/// `SO_ATTACH_REUSEPORT_CBPF` (`asm-generic/socket.h`; libc does not define
/// it for Linux).
const SO_ATTACH_REUSEPORT_CBPF: i32 = 51;

/// Steers every datagram of a `SO_REUSEPORT` group to the socket whose index
/// (the order the sockets were bound in) is the CPU the kernel received it
/// on, modulo `sockets`: a classic BPF program `A = cpu; A %= sockets;
/// return A`, attached through `fd` (any socket of the group). With one
/// receive queue per CPU (its interrupt or NAPI thread on that CPU), each
/// socket then gets one queue's traffic and a flow never moves between
/// sockets.
pub fn steer_reuseport_by_cpu(fd: BorrowedFd<'_>, sockets: u32) -> Result<()> {
    if sockets == 0 {
        return Err(Error::config("a reuseport group of 0 sockets"));
    }
    let insn = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let mut prog = [
        insn(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32,
        ),
        insn(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, sockets),
        insn(libc::BPF_RET | libc::BPF_A, 0),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `prog` outlives it.
    set(fd, libc::SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog)
        .map_err(|e| Error::io("setsockopt SO_ATTACH_REUSEPORT_CBPF", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn int_options_round_trip() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1).unwrap();
        assert_eq!(
            get_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL).unwrap(),
            1
        );
        let e = set_int(s.as_fd(), libc::SOL_SOCKET, 0x7fff, 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT));
    }

    #[test]
    fn a_datagram_carries_the_kernel_software_receive_stamp() {
        use crate::cmsg;
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_rx_timestamps(rx.as_fd()).unwrap();
        let flags = get_int(rx.as_fd(), libc::SOL_SOCKET, SO_TIMESTAMPING).unwrap() as u32;
        assert_ne!(flags & libc::SOF_TIMESTAMPING_RX_SOFTWARE, 0);
        assert_ne!(flags & libc::SOF_TIMESTAMPING_RAW_HARDWARE, 0);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // The first socket on a host to ask for stamps switches the kernel's
        // receive stamping on from a workqueue (net_enable_timestamp), so
        // the first datagrams after it may come unstamped: try for a second.
        for _ in 0..100 {
            let before = zc_core::sys::realtime_ns();
            tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
            let mut data = [0u8; 16];
            let mut control = [0u64; cmsg::TIMESTAMP_SPACE.div_ceil(8)];
            let mut iov = libc::iovec {
                iov_base: data.as_mut_ptr().cast(),
                iov_len: data.len(),
            };
            // SAFETY: an all-zero msghdr is valid; the pointers set below are
            // live buffers of the lengths given, for the duration of the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control);
            // SAFETY: `msg` points to live buffers as described above.
            let n = unsafe { libc::recvmsg(rx.as_raw_fd(), &mut msg, 0) };
            assert_eq!(n, 1);
            assert_eq!(
                msg.msg_flags & libc::MSG_CTRUNC,
                0,
                "control room is enough"
            );
            // SAFETY: `control` is plain memory of at least msg_controllen bytes.
            let bytes = unsafe {
                std::slice::from_raw_parts(control.as_ptr().cast::<u8>(), msg.msg_controllen)
            };
            let Some(ts) = cmsg::receive_info(bytes).timestamp else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            // Loopback has no hardware stamp: the kernel's software one.
            assert_eq!(ts.clock, zc_core::Clock::Realtime);
            let after = zc_core::sys::realtime_ns();
            assert!(
                (before..=after).contains(&ts.ns),
                "{before} <= {} <= {after}",
                ts.ns
            );
            return;
        }
        panic!("no datagram in a second carried a receive stamp");
    }

    #[test]
    fn drops_are_counted_when_the_buffer_overflows() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // The smallest buffer the kernel allows, then far more than it holds.
        set_int(rx.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 1).unwrap();
        assert_eq!(socket_drops(rx.as_fd()), Some(0));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = [0u8; 1000];
        for _ in 0..200 {
            tx.send_to(&payload, rx.local_addr().unwrap()).unwrap();
        }
        let drops = socket_drops(rx.as_fd()).unwrap();
        assert!(drops > 0 && drops < 200, "{drops}");
    }

    #[test]
    fn a_receive_buffer_is_granted_or_the_cap_is_said() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = size_rcvbuf(s.as_fd(), 1 << 20).unwrap();
        assert!(r.granted > 0);
        assert_eq!(r.capped.is_some(), r.granted < 2 << 20, "{r:?}");
        assert!(size_rcvbuf(s.as_fd(), usize::MAX).is_err());
    }
}
