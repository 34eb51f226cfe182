//! The AF_XDP sender: payloads written in place into UMEM frames, Ethernet/
//! IPv4/UDP headers built around them, frames returned to the free list only
//! from the completion ring.

use crate::socket::{zero_copy_refusal, RingSizes, UmemRole, XskSocket};
use crate::sys::{ifindex, mac_address, raise_memlock};
use crate::umem::{desc_error, UmemLayout, UmemMemory};
use crate::{ring_size, ZeroCopy};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use xdp_sys::xdp_desc;
use zc_core::backend::{DataPath, Mode, SendBurst, Sender, TxStats};
use zc_core::error::{Error, ErrorKind, Result};
use zc_core::wire::UdpFrameSpec;
use zc_nic::check_queue;

/// Frames the kernel transmits per `sendto` in copy mode (`TX_BATCH_SIZE` in
/// net/xdp/xsk.c); more need more kicks.
const COPY_MODE_TX_BATCH: u32 = 32;

/// Sender settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpSenderConfig {
    /// Interface to send from.
    pub ifname: String,
    /// Transmit queue.
    pub queue: u32,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// Destination MAC; `None` looks it up in the neighbour table (`/proc/thread-self/net/arp`).
    pub dst_mac: Option<[u8; 6]>,
    /// Source address and port; `None` uses the interface's first IPv4 address and port 40000.
    pub src: Option<SocketAddrV4>,
    /// UMEM frames (datagrams in flight at most).
    pub frames: u32,
    /// Frame size: 2048 or 4096.
    pub frame_size: u32,
    /// Tx ring entries (a power of two).
    pub tx_ring: u32,
    /// Datagrams per burst at most.
    pub batch: usize,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Use `XDP_USE_NEED_WAKEUP`: kick the kernel only when it asks.
    pub need_wakeup: bool,
    /// Compute UDP checksums (receivers that verify them need it).
    pub udp_checksum: bool,
    /// Put the UMEM on 2 MiB hugepages when some are free.
    pub hugepages: bool,
}

impl AfXdpSenderConfig {
    /// Queue 0 of `ifname`, to `dst`, with defaults.
    pub fn new(ifname: &str, dst: SocketAddrV4) -> Self {
        Self {
            ifname: ifname.to_owned(),
            queue: 0,
            dst,
            dst_mac: None,
            src: None,
            frames: 4096,
            frame_size: 2048,
            tx_ring: 2048,
            batch: 64,
            zero_copy: ZeroCopy::Auto,
            need_wakeup: true,
            udp_checksum: true,
            hugepages: false,
        }
    }
}

/// An AF_XDP sender bound to one queue; sends to one destination.
///
/// Field order is drop order: the socket closes (the kernel lets go of every
/// frame) before the UMEM is unmapped.
pub struct AfXdpSender {
    sock: XskSocket,
    free: Vec<u64>,
    frames: usize,
    spec: UdpFrameSpec,
    layout: UmemLayout,
    max_payload: usize,
    batch: usize,
    need_wakeup: bool,
    copy_mode: bool,
    mode: Mode,
    stats: TxStats,
    completed: u64,
    umem: UmemMemory,
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The MAC of `ip` on `ifname` from the kernel's neighbour table.
fn neighbour_mac(ifname: &str, ip: Ipv4Addr) -> Result<[u8; 6]> {
    // thread-self: /proc/net follows the process's first thread, which may sit
    // in another network namespace than this one (a generator thread after setns).
    let path = "/proc/thread-self/net/arp";
    let table = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {path}"), e))?;
    let want = ip.to_string();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // IP address, HW type, Flags, HW address, Mask, Device; flags 0x0 = incomplete.
        if f.len() >= 6 && f[0] == want && f[5] == ifname && f[2] != "0x0" {
            if let Some(mac) = parse_mac(f[3]) {
                return Ok(mac);
            }
        }
    }
    Err(Error::new(ErrorKind::NotFound, format!("no neighbour entry for {ip} on {ifname}: AF_XDP bypasses ARP"))
        .with_fix(format!("ping {ip} once so the kernel learns its MAC, add one (`ip neigh replace {ip} lladdr MAC dev {ifname}`), or set dst_mac")))
}

/// The first IPv4 address of `ifname`.
fn ipv4_of(ifname: &str) -> Result<Ipv4Addr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: list is a valid out-pointer; freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(Error::last_os("getifaddrs"));
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: ifa_addr is null or points to a sockaddr of the list whose
        // family says its length.
        let addr = unsafe { zc_os::sockaddr::from_ptr(ifa.ifa_addr) };
        if let (true, Some(std::net::SocketAddr::V4(a))) =
            (name.to_bytes() == ifname.as_bytes(), addr)
        {
            found = Some(*a.ip());
            break;
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: frees the list returned above exactly once; no reference into it survives.
    unsafe { libc::freeifaddrs(list) };
    found.ok_or_else(|| {
        Error::new(
            ErrorKind::AddrNotAvailable,
            format!("{ifname} has no IPv4 address to send from"),
        )
        .with_fix(format!(
            "add one (`ip addr add ... dev {ifname}`) or set src"
        ))
    })
}

impl AfXdpSender {
    /// Opens the sender: resolves addresses, maps the UMEM and binds a socket
    /// with a tx ring (zero-copy first when `zero_copy` is `Auto`).
    pub fn open(cfg: &AfXdpSenderConfig) -> Result<Self> {
        let ifidx = ifindex(&cfg.ifname)?;
        check_queue(&cfg.ifname, cfg.queue)?;
        ring_size("AF_XDP tx ring", cfg.tx_ring)?;
        if cfg.batch == 0 || cfg.batch > cfg.frames as usize {
            return Err(Error::config(format!(
                "AF_XDP: batch {} must be between 1 and the {} frames",
                cfg.batch, cfg.frames
            )));
        }
        let layout = UmemLayout::new(cfg.frame_size, cfg.frames)?;
        let src = match cfg.src {
            Some(s) => s,
            None => SocketAddrV4::new(ipv4_of(&cfg.ifname)?, 40000),
        };
        let dst_mac = match cfg.dst_mac {
            Some(m) => m,
            None => neighbour_mac(&cfg.ifname, *cfg.dst.ip())?,
        };
        let spec = UdpFrameSpec {
            src_mac: mac_address(&cfg.ifname)?,
            dst_mac,
            vlan: None,
            src,
            dst: cfg.dst,
            ttl: 64,
            udp_checksum: cfg.udp_checksum,
        };
        raise_memlock(layout.bytes());
        let umem = UmemMemory::map(layout, cfg.hugepages)?;
        let completion = ring_size(
            "AF_XDP completion ring",
            cfg.frames.checked_next_power_of_two().unwrap_or(0),
        )?;
        // The fill ring is required by the kernel even when nothing is received.
        let sizes = RingSizes {
            fill: 64,
            completion,
            rx: 0,
            tx: cfg.tx_ring,
        };
        let open = |zc| {
            XskSocket::open_retrying(
                &umem,
                UmemRole::Owner,
                sizes,
                ifidx,
                cfg.queue,
                zc,
                cfg.need_wakeup,
            )
        };
        let mut details = Vec::new();
        let sock = match cfg.zero_copy {
            ZeroCopy::Off => open(false)?,
            ZeroCopy::Require => open(true)?,
            ZeroCopy::Auto => match open(true) {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::Permission => return Err(e),
                Err(e) => {
                    details.push(zero_copy_refusal(&e));
                    open(false)?
                }
            },
        };
        let copy_mode = !sock.zero_copy();
        details.push(format!(
            "need_wakeup {}",
            if cfg.need_wakeup { "on" } else { "off" }
        ));
        details.push(format!(
            "umem {} frames x {} B on {}",
            cfg.frames,
            cfg.frame_size,
            if umem.on_hugepages() {
                "2 MiB hugepages"
            } else {
                "4 KiB pages"
            }
        ));
        details.push(format!("{src} -> {}", cfg.dst));
        let mut mode = Mode::new(
            "afxdp",
            if copy_mode {
                DataPath::Copy
            } else {
                DataPath::ZeroCopy
            },
            cfg.batch,
        );
        mode.queue = Some(cfg.queue);
        mode.details = details;
        let max_payload =
            (cfg.frame_size as usize - spec.header_len()).min(usize::from(u16::MAX) - 28);
        Ok(Self {
            sock,
            free: (0..cfg.frames)
                .rev()
                .map(|f| layout.frame_addr(f))
                .collect(),
            frames: cfg.frames as usize,
            spec,
            layout,
            max_payload,
            batch: cfg.batch,
            need_wakeup: cfg.need_wakeup,
            copy_mode,
            mode,
            stats: TxStats::default(),
            completed: 0,
            umem,
        })
    }

    /// Takes frames the kernel has finished with off the completion ring.
    fn reap(&mut self) {
        let peek = self.sock.completion.peek(u32::MAX);
        let n = peek.len();
        for i in 0..n {
            if let Some(addr) = peek.get(i) {
                // Only frames of our UMEM go back; anything else would be a kernel bug.
                if self.layout.check(addr, 0).is_ok() && self.free.len() < self.frames {
                    self.free.push(self.layout.frame_of(addr));
                }
            }
        }
        peek.release(n);
        self.completed += u64::from(n);
    }

    /// Asks the kernel to transmit the tx ring: in copy mode each `sendto`
    /// moves at most 32 frames, so it is repeated while frames are waiting.
    fn kick(&mut self) -> Result<()> {
        let Some(tx) = self.sock.tx.as_ref() else {
            return Ok(());
        };
        if self.copy_mode {
            let mut rounds = tx.outstanding() / COPY_MODE_TX_BATCH + 2;
            while rounds > 0 && self.sock.tx.as_ref().is_some_and(|t| t.outstanding() > 0) {
                self.sock.kick_tx()?;
                rounds -= 1;
            }
        } else if !self.need_wakeup || tx.flags() & xdp_sys::XDP_RING_NEED_WAKEUP != 0 {
            self.sock.kick_tx()?;
        }
        Ok(())
    }

    /// Frames handed to the kernel and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.frames - self.free.len()
    }

    /// Waits until every frame sent is completed, at most `timeout`; returns
    /// true when none is left in flight.
    pub fn flush(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = zc_core::sys::deadline_after(timeout);
        loop {
            self.kick()?;
            self.reap();
            if self.in_flight() == 0 {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for AfXdpSender {
    /// Gives frames still in the tx ring up to 200 ms to leave before the
    /// socket closes (closing drops them): a sender reports a datagram as
    /// sent once it is in the ring, so it should also go out.
    fn drop(&mut self) {
        if self.in_flight() > 0 {
            if let Err(e) = self.flush(Duration::from_millis(200)) {
                tracing::warn!(%e, "AF_XDP sender: flushing the tx ring on close failed");
            }
        }
    }
}

impl Sender for AfXdpSender {
    fn max_payload(&self) -> usize {
        self.max_payload
    }

    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize> {
        self.reap();
        let mut burst = SendBurst::new(count, self.batch);
        let want = burst.limit().min(self.free.len()) as u32;
        let Some(tx) = self.sock.tx.as_mut() else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "AF_XDP sender has no tx ring",
            ));
        };
        let mut r = tx.reserve(want);
        let mut sent = 0usize;
        for i in 0..r.len() as usize {
            let Some(addr) = self.free.pop() else { break };
            let range = match self.layout.check(addr, self.layout.frame_size) {
                Ok(range) => range,
                Err(e) => {
                    burst.fail(desc_error(e));
                    break;
                }
            };
            // SAFETY: a checked frame of our UMEM taken off the free list: not in
            // any ring, so nothing else reads or writes it until we submit it.
            let frame = unsafe { self.umem.slice_mut(range) };
            let payload = &mut self.spec.payload_mut(frame)[..self.max_payload];
            let built = burst
                .fill(fill, i, payload)
                .map(|len| (len, self.spec.finish(frame, len)));
            let (len, frame_len) = match built {
                Some((len, Ok(frame_len))) => (len, frame_len as u32),
                Some((_, Err(e))) => {
                    self.free.push(addr);
                    burst.fail(Error::config(format!("slot {i}: {e}")));
                    break;
                }
                None => {
                    self.free.push(addr);
                    break;
                }
            };
            r.push(xdp_desc {
                addr,
                len: frame_len,
                options: 0,
            });
            burst.sent(len);
            sent += 1;
        }
        r.commit();
        if sent > 0 {
            self.kick()?;
        }
        burst.finish(&mut self.stats)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> TxStats {
        let mut s = self.stats.clone();
        s.extra = vec![
            ("completed", self.completed),
            ("in_flight", self.in_flight() as u64),
        ];
        if let Ok(k) = self.sock.statistics() {
            s.extra.push(("xdp_tx_invalid_descs", k.tx_invalid_descs));
            s.extra.push(("xdp_tx_ring_empty", k.tx_ring_empty_descs));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01\n"),
            Some([2, 0, 10, 255, 0, 1])
        );
        assert_eq!(parse_mac("02:00:0a:ff:00"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:02"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:00:01"), None);
    }

    #[test]
    fn loopback_has_an_ipv4_address() {
        assert_eq!(ipv4_of("lo").unwrap(), Ipv4Addr::LOCALHOST);
    }
}
