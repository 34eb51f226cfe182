//! Joining an IPv4 multicast group on a given interface through a kernel
//! socket, for the backends that bypass the kernel's receive path (AF_XDP,
//! DPDK): the kernel sends the IGMP report and answers the router's queries
//! for as long as the socket is open, and programs the NIC's multicast MAC
//! filter, so a switch forwards the group and the NIC accepts it. The socket
//! itself never receives: the datagrams are taken before the stack.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsFd;
use zc_core::error::{Error, ErrorKind, Result};

/// A group membership held by a kernel UDP socket; left when dropped.
#[derive(Debug)]
pub struct Membership {
    /// Held only: closing it leaves the group (IGMP leave).
    _socket: UdpSocket,
    group: Ipv4Addr,
    ifindex: u32,
}

impl Membership {
    /// Joins `group` on the interface with index `ifindex` (`IP_ADD_MEMBERSHIP`
    /// with `ip_mreqn`, so the interface needs no IPv4 address).
    pub fn join(group: Ipv4Addr, ifindex: u32) -> Result<Self> {
        if !group.is_multicast() {
            return Err(Error::config(format!(
                "{group} is not an IPv4 multicast address (224.0.0.0/4)"
            )));
        }
        let ifindex_c = i32::try_from(ifindex)
            .map_err(|_| Error::config(format!("interface index {ifindex} is out of range")))?;
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .map_err(|e| Error::io("open the UDP socket that holds a multicast membership", e))?;
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from_ne_bytes(group.octets()),
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex_c,
        };
        crate::sockopt::set(
            socket.as_fd(),
            libc::IPPROTO_IP,
            libc::IP_ADD_MEMBERSHIP,
            &mreq,
        )
        .map_err(|e| {
            let err = Error::io(
                format!("join multicast group {group} on interface index {ifindex}"),
                e,
            );
            if err.raw_os_error() == Some(libc::ENOBUFS) {
                err.with_kind(ErrorKind::Exhausted).with_fix(
                    "the socket's group limit is reached: raise net.ipv4.igmp_max_memberships",
                )
            } else {
                err
            }
        })?;
        Ok(Self {
            _socket: socket,
            group,
            ifindex,
        })
    }

    /// Joins `group` on the interface named `ifname`.
    pub fn join_named(group: Ipv4Addr, ifname: &str) -> Result<Self> {
        let ifindex = crate::ifindex(ifname)?;
        Self::join(group, ifindex)
    }

    /// The group joined.
    pub fn group(&self) -> Ipv4Addr {
        self.group
    }

    /// The interface it was joined on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}
