//! The XDP program attached to an interface and its promiscuous flag, read
//! and changed through rtnetlink (`IFLA_XDP`, `IFF_PROMISC`): what the DPDK
//! backend checks before its driver attaches a program, and what it restores
//! for a process that died before it could.

use crate::netlink::{attr_bytes, parse_attrs, Attr, NlError, RouteSocket};
use zc_core::error::{Error, ErrorKind, Result};

const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const IFF_PROMISC: u32 = 0x100;

/// How a program is attached (`XDP_ATTACHED_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver (native XDP).
    Driver,
    /// Generic (skb) XDP, in the kernel's receive path.
    Generic,
    /// Offloaded to the NIC.
    Offload,
    /// Programs in more than one mode at once.
    Multi,
}

impl std::fmt::Display for XdpAttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            XdpAttachMode::Driver => "native",
            XdpAttachMode::Generic => "generic",
            XdpAttachMode::Offload => "offload",
            XdpAttachMode::Multi => "several modes",
        })
    }
}

/// The XDP program on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachedXdp {
    /// The kernel's program id (`bpftool prog show id N`).
    pub prog_id: u32,
    /// How it is attached.
    pub mode: XdpAttachMode,
}

fn link_error(what: &str, name: &str, e: NlError) -> Error {
    match e {
        NlError::Errno(libc::ENODEV) => crate::interface_not_found(name),
        NlError::Errno(libc::EPERM) => Error::new(
            ErrorKind::Permission,
            format!("{what} of {name}: not permitted"),
        )
        .with_fix("run as root or with CAP_NET_ADMIN"),
        NlError::Errno(errno) => Error::io(
            format!("{what} of {name}"),
            std::io::Error::from_raw_os_error(errno),
        ),
        NlError::Other(e) => e,
    }
}

/// The XDP program attached to interface `name`, if any.
pub fn attached_xdp(name: &str) -> Result<Option<AttachedXdp>> {
    let index = crate::ifindex(name)?;
    let link = RouteSocket::open()?
        .get_link(index)
        .map_err(|e| link_error("read the XDP state", name, e))?;
    let Some(xdp) = attr_bytes(&link.attrs, IFLA_XDP) else {
        return Ok(None);
    };
    let xdp = parse_attrs(xdp)?;
    let mode = match attr_bytes(&xdp, IFLA_XDP_ATTACHED).and_then(|b| b.first()) {
        None | Some(0) => return Ok(None),
        Some(1) => XdpAttachMode::Driver,
        Some(2) => XdpAttachMode::Generic,
        Some(3) => XdpAttachMode::Offload,
        Some(_) => XdpAttachMode::Multi,
    };
    let prog_id = crate::netlink::attr_u32(&xdp, IFLA_XDP_PROG_ID).unwrap_or(0);
    Ok(Some(AttachedXdp { prog_id, mode }))
}

/// Detaches `program` from interface `name` if it is still the one
/// attached; returns whether it did. Another program (or none) is left
/// alone. A program attached through a BPF link cannot be detached this
/// way: the kernel refuses (`EBUSY`), and so does this.
pub fn detach_xdp(name: &str, program: AttachedXdp) -> Result<bool> {
    if attached_xdp(name)? != Some(program) {
        return Ok(false);
    }
    let flags = match program.mode {
        XdpAttachMode::Driver => XDP_FLAGS_DRV_MODE,
        XdpAttachMode::Generic => XDP_FLAGS_SKB_MODE,
        mode => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "XDP program {} on {name} is attached in {mode} mode, which zc does not detach",
                    program.prog_id
                ),
            )
            .with_fix(format!("detach it by hand: ip link set dev {name} xdp off")))
        }
    };
    let index = crate::ifindex(name)?;
    let fd = (-1i32).to_ne_bytes();
    let flags = flags.to_ne_bytes();
    RouteSocket::open()?
        .set_link(
            index,
            0,
            0,
            &[Attr::Nested(
                IFLA_XDP,
                vec![
                    Attr::Plain(IFLA_XDP_FD, &fd),
                    Attr::Plain(IFLA_XDP_FLAGS, &flags),
                ],
            )],
        )
        .map_err(|e| link_error("detach the XDP program", name, e))?;
    Ok(true)
}

/// Whether interface `name` has the promiscuous flag (`IFF_PROMISC`) set.
pub fn promiscuous(name: &str) -> Result<bool> {
    let index = crate::ifindex(name)?;
    let link = RouteSocket::open()?
        .get_link(index)
        .map_err(|e| link_error("read the flags", name, e))?;
    Ok(link.flags & IFF_PROMISC != 0)
}

/// Sets or clears interface `name`'s promiscuous flag.
pub fn set_promiscuous(name: &str, on: bool) -> Result<()> {
    let index = crate::ifindex(name)?;
    RouteSocket::open()?
        .set_link(index, if on { IFF_PROMISC } else { 0 }, IFF_PROMISC, &[])
        .map_err(|e| link_error("set the promiscuous flag", name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback has no XDP program and is not promiscuous; a made-up name is
    /// the usual not-found error.
    #[test]
    fn loopback_answers_and_a_missing_interface_is_not_found() {
        assert_eq!(attached_xdp("lo").unwrap(), None);
        assert!(!promiscuous("lo").unwrap());
        let e = attached_xdp("zcnosuch0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}
