//! The names the command line accepts for backends and methods, as clap value
//! enums: `--help` and every parse error list the possible values.
//!
//! Every backend is listed whether or not this build has it, so that asking
//! for one that was left out names the cargo feature that brings it in,
//! instead of calling it unknown.

use clap::ValueEnum;
use zc_core::{Error, Result};
use zc_linux::file::FileMethod;
use zc_linux::proxy::ProxyMethod;

/// A receive backend.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxBackend {
    /// Kernel UDP socket, one blocking recvfrom per datagram (the baseline).
    Recvfrom,
    /// Kernel UDP socket, epoll + recvmmsg bursts.
    Recvmmsg,
    /// io_uring multishot recvmsg on a provided-buffer ring.
    Uring,
    /// AF_XDP socket on our XDP filter (needs --interface; feature `afxdp`).
    Afxdp,
    /// DPDK net_af_xdp vdev on an interface (needs --interface; feature `dpdk`).
    Dpdk,
    /// DPDK net_af_packet vdev on an interface (needs --interface; feature `dpdk`).
    DpdkPacket,
}

/// A send backend, named for the call it sends with.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxBackend {
    /// Kernel UDP socket, one sendto per datagram.
    #[value(alias = "recvfrom")]
    Sendto,
    /// Kernel UDP socket, sendmmsg bursts.
    #[value(alias = "recvmmsg")]
    Sendmmsg,
    /// io_uring SEND / SEND_ZC.
    Uring,
    /// AF_XDP socket writing whole frames (needs --interface; feature `afxdp`).
    Afxdp,
    /// DPDK net_af_xdp vdev (needs --interface; feature `dpdk`).
    Dpdk,
    /// DPDK net_af_packet vdev (needs --interface; feature `dpdk`).
    DpdkPacket,
}

impl RxBackend {
    /// The backend's name in the `zc` library (see `zc::BACKENDS`), once
    /// checked to be in this build.
    pub fn name(self) -> Result<&'static str> {
        built_in(self.library_name())
    }

    fn library_name(self) -> &'static str {
        match self {
            Self::Recvfrom => "recvfrom",
            Self::Recvmmsg => "recvmmsg",
            Self::Uring => "uring",
            Self::Afxdp => "afxdp",
            Self::Dpdk => "dpdk",
            Self::DpdkPacket => "dpdk-packet",
        }
    }

    /// The receivers this build has, in the order `zc::BACKENDS` lists them.
    pub fn enabled() -> Vec<Self> {
        Self::value_variants()
            .iter()
            .copied()
            .filter(|b| b.name().is_ok())
            .collect()
    }
}

impl TxBackend {
    /// The library backend that sends this way, once checked to be in this build.
    pub fn name(self) -> Result<&'static str> {
        built_in(match self {
            Self::Sendto => "recvfrom",
            Self::Sendmmsg => "recvmmsg",
            Self::Uring => "uring",
            Self::Afxdp => "afxdp",
            Self::Dpdk => "dpdk",
            Self::DpdkPacket => "dpdk-packet",
        })
    }

    /// The name the command line takes.
    fn arg_name(self) -> &'static str {
        match self {
            Self::Sendto => "sendto",
            Self::Sendmmsg => "sendmmsg",
            Self::Uring => "uring",
            Self::Afxdp => "afxdp",
            Self::Dpdk => "dpdk",
            Self::DpdkPacket => "dpdk-packet",
        }
    }
}

impl std::fmt::Display for RxBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.library_name())
    }
}

impl std::fmt::Display for TxBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.arg_name())
    }
}

/// `name` if this build has it; otherwise a usage error naming the cargo
/// feature of this command that brings it in.
fn built_in(name: &'static str) -> Result<&'static str> {
    // The unit tests keep every variant known to the library.
    let Some(info) = zc::BACKENDS.iter().find(|b| b.name == name) else {
        return Err(Error::config(format!(
            "backend {name:?} is unknown to this build's zc library"
        )));
    };
    if info.enabled {
        return Ok(name);
    }
    Err(Error::config(format!(
        "built without the `{}` feature, so backend {name:?} is not available",
        info.feature
    ))
    .with_fix(format!(
        "cargo install {} --features {}",
        env!("CARGO_PKG_NAME"),
        info.feature
    )))
}

/// How `zc serve` sends file bodies.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeMethod {
    /// sendfile(2): page cache to socket, no copy through user space.
    Sendfile,
    /// read(2) into a buffer, then write(2): the plain twin to compare with.
    ReadWrite,
    /// mmap(2) the file, then write(2) from the mapping.
    Mmap,
}

impl From<ServeMethod> for FileMethod {
    fn from(m: ServeMethod) -> Self {
        match m {
            ServeMethod::Sendfile => FileMethod::Sendfile,
            ServeMethod::ReadWrite => FileMethod::ReadWrite,
            ServeMethod::Mmap => FileMethod::Mmap,
        }
    }
}

/// How `zc proxy` moves bytes between the two sockets.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayMethod {
    /// splice(2) through a pipe: socket to socket without a user-space copy.
    Splice,
    /// read(2) and write(2) through a buffer: the plain twin to compare with.
    ReadWrite,
}

impl From<RelayMethod> for ProxyMethod {
    fn from(m: RelayMethod) -> Self {
        match m {
            RelayMethod::Splice => ProxyMethod::Splice,
            RelayMethod::ReadWrite => ProxyMethod::ReadWrite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name the command line offers is one the library knows, and is
    /// either in this build or refused with the feature that brings it in.
    #[test]
    fn every_backend_name_maps_to_a_library_backend() {
        let check = |r: Result<&'static str>, arg: &str| match r {
            Ok(name) => assert!(zc::backend(name).is_ok(), "{arg}"),
            Err(e) => {
                let t = e.to_string();
                assert!(
                    t.contains("built without the `")
                        && t.contains("cargo install zc-cli --features"),
                    "{arg}: {t}"
                );
            }
        };
        for b in RxBackend::value_variants() {
            let arg = b.to_possible_value().unwrap();
            assert_eq!(arg.get_name(), b.to_string());
            check(b.name(), arg.get_name());
        }
        for b in TxBackend::value_variants() {
            let arg = b.to_possible_value().unwrap();
            assert_eq!(arg.get_name(), b.to_string());
            check(b.name(), arg.get_name());
        }
        // A receiver and the sender of the same library backend agree on it.
        assert_eq!(
            RxBackend::Recvmmsg.name().ok(),
            TxBackend::Sendmmsg.name().ok()
        );
        assert_eq!(
            RxBackend::Recvfrom.name().ok(),
            TxBackend::Sendto.name().ok()
        );
        assert_eq!(
            RxBackend::enabled().len(),
            zc::enabled_backends().count(),
            "every backend of the build is listed"
        );
    }
}
