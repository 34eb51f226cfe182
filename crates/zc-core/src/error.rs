//! The one error type of zc: every message says what failed and what to do.

use std::io;

/// What kind of failure an [`Error`] is, for callers that react to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An operating-system call failed.
    Io,
    /// The process lacks a privilege or capability.
    Permission,
    /// The kernel, driver or library lacks a feature.
    Unsupported,
    /// A configuration value is invalid.
    Config,
    /// A bounded resource (buffers, pool, ring) is exhausted.
    Exhausted,
    /// The address or port is already taken.
    AddrInUse,
    /// The address is not on this host (or namespace).
    AddrNotAvailable,
    /// A named thing (interface, device, file, backend) does not exist.
    NotFound,
    /// The other end went away.
    PeerGone,
}

/// An error from any zc crate.
///
/// `Display` prints `what failed: cause`, then `; fix: …` when there is a
/// known remedy. The cause (the OS error) is shown there and only there:
/// [`std::error::Error::source`] returns `None`, so a reporter that walks the
/// source chain does not print it twice. [`Error::os_error`] gives it back
/// for code that needs the `io::Error` itself.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    what: String,
    fix: Option<String>,
    source: Option<io::Error>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` described by `what`.
    pub fn new(kind: ErrorKind, what: impl Into<String>) -> Self {
        Self {
            kind,
            what: what.into(),
            fix: None,
            source: None,
        }
    }

    /// An invalid configuration value.
    pub fn config(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, what)
    }

    /// A [`crate::Sender::send_burst`] fill callback returned `len` bytes for
    /// a slot of `max`: the one wording every backend uses.
    pub fn oversized_payload(slot: usize, len: usize, max: usize) -> Self {
        Self::config(format!(
            "slot {slot}: payload of {len} bytes exceeds the {max}-byte slot"
        ))
    }

    /// A failed system call `op`. The kind and the remedy come from the errno:
    ///
    /// | errno | kind | remedy |
    /// |---|---|---|
    /// | EPERM, EACCES | [`ErrorKind::Permission`] | run as root or grant the capabilities |
    /// | EADDRINUSE | [`ErrorKind::AddrInUse`] | another port, or SO_REUSEPORT on every socket |
    /// | EADDRNOTAVAIL | [`ErrorKind::AddrNotAvailable`] | an address of this namespace |
    /// | ENODEV, ENOENT, ENXIO | [`ErrorKind::NotFound`] | — |
    /// | ENOBUFS, ENOMEM | [`ErrorKind::Exhausted`] | raise `ulimit -l`, optmem or ring sizes |
    /// | EOPNOTSUPP, ENOSYS, EPROTONOSUPPORT, ENOPROTOOPT | [`ErrorKind::Unsupported`] | `zc doctor` |
    /// | EINVAL | [`ErrorKind::Unsupported`] | the kernel refused an argument: a flag or option this kernel or driver does not know (the usual cause when a probe fails), or a value out of range |
    /// | ECONNRESET, EPIPE, ECONNREFUSED | [`ErrorKind::PeerGone`] | — |
    /// | anything else | [`ErrorKind::Io`] | — |
    pub fn io(op: impl Into<String>, source: io::Error) -> Self {
        use nix::errno::Errno;
        let errno = source.raw_os_error().map(Errno::from_raw);
        let (kind, fix) = match errno {
            Some(Errno::EPERM | Errno::EACCES) => (
                ErrorKind::Permission,
                Some("run as root, or grant the binary CAP_NET_ADMIN (and CAP_NET_RAW/CAP_BPF/CAP_IPC_LOCK for AF_XDP and DPDK)"),
            ),
            Some(Errno::EADDRINUSE) => (
                ErrorKind::AddrInUse,
                Some("another socket is bound to this address and port: pick another port, stop the other process, or enable SO_REUSEPORT on every socket sharing it"),
            ),
            Some(Errno::EADDRNOTAVAIL) => (
                ErrorKind::AddrNotAvailable,
                Some("the address is not assigned to any interface in this network namespace: check `ip -br addr`, or bind 0.0.0.0"),
            ),
            Some(Errno::ENODEV | Errno::ENOENT | Errno::ENXIO) => (ErrorKind::NotFound, None),
            Some(Errno::ENOBUFS | Errno::ENOMEM) => (
                ErrorKind::Exhausted,
                Some("the kernel ran out of buffers or locked memory: raise `ulimit -l`, net.core.optmem_max or the ring sizes"),
            ),
            Some(Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EPROTONOSUPPORT | Errno::ENOPROTOOPT) => (
                ErrorKind::Unsupported,
                Some("this kernel or driver lacks the feature: run `zc doctor` to see what this machine supports"),
            ),
            Some(Errno::EINVAL) => (
                ErrorKind::Unsupported,
                Some("the kernel refused an argument: either this kernel or driver does not know a flag or option asked for (run `zc doctor` to see what it supports) or a value is out of range"),
            ),
            Some(Errno::ECONNRESET | Errno::EPIPE | Errno::ECONNREFUSED) => {
                (ErrorKind::PeerGone, None)
            }
            _ => (ErrorKind::Io, None),
        };
        Self {
            kind,
            what: op.into(),
            fix: fix.map(str::to_owned),
            source: Some(source),
        }
    }

    /// The last OS error, for the failed call `op`.
    pub fn last_os(op: impl Into<String>) -> Self {
        Self::io(op, io::Error::last_os_error())
    }

    /// Sets (or replaces) the remedy printed after the message.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The same error as another kind, keeping its message, cause and
    /// remedy (for a caller that knows better what the errno means here).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Puts `outer` in front of the message (`outer: what failed: cause`),
    /// keeping the kind, cause and remedy.
    pub fn context(mut self, outer: impl std::fmt::Display) -> Self {
        self.what = format!("{outer}: {}", self.what);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The remedy, when one is known.
    pub fn fix(&self) -> Option<&str> {
        self.fix.as_deref()
    }

    /// The OS error number, when a system call failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }

    /// The OS error behind this one, when a system call failed.
    pub fn os_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// `source()` is `None` on purpose: `Display` already prints the cause.
impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_gives_kind_and_fix() {
        let e = Error::io(
            "bind 198.18.0.1:9000",
            io::Error::from_raw_os_error(libc_eaddrinuse()),
        );
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        let msg = e.to_string();
        assert!(msg.starts_with("bind 198.18.0.1:9000: "), "{msg}");
        assert!(msg.contains("fix: another socket is bound"), "{msg}");
    }

    #[test]
    fn the_cause_is_printed_once() {
        use std::error::Error as _;
        let e = Error::io("connect", io::Error::from_raw_os_error(111));
        assert!(e.source().is_none());
        let msg = e.to_string();
        assert_eq!(msg.matches("Connection refused").count(), 1, "{msg}");
        assert_eq!(e.os_error().and_then(io::Error::raw_os_error), Some(111));
    }

    #[test]
    fn einval_means_an_unknown_feature_or_a_bad_value() {
        let e = Error::io("io_uring_setup", io::Error::from_raw_os_error(22));
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.fix().unwrap().contains("refused an argument"), "{e}");
    }

    #[test]
    fn a_kind_change_and_context_keep_the_cause_and_fix() {
        let e = Error::io("bind", io::Error::from_raw_os_error(libc_eaddrinuse()))
            .with_kind(ErrorKind::Config)
            .context("open AF_XDP socket");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.raw_os_error(), Some(libc_eaddrinuse()));
        assert!(e.fix().is_some());
        assert!(
            e.to_string().starts_with("open AF_XDP socket: bind: "),
            "{e}"
        );
    }

    fn libc_eaddrinuse() -> i32 {
        nix::errno::Errno::EADDRINUSE as i32
    }
}
