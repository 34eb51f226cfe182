//! Capture file formats, the link layers zc reads, and the frames zc
//! synthesizes for backends that only see UDP payloads.
//!
//! Every layer above the link header is parsed by `zc_core::wire`, the same
//! checked views every backend uses: a frame the receivers would refuse is
//! refused here for the same reason.

use pcap_file::DataLink;
use std::net::SocketAddrV4;
use std::path::Path;
use zc_core::wire::{
    parse_udp_frame, EthernetFrame, Ipv4Packet, UdpDatagram, UdpFrameSpec, WireError,
    ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, IPPROTO_UDP,
};
use zc_core::{Error, Result};

/// A capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap, written with the nanosecond magic (`a1b23c4d`).
    Pcap,
    /// pcapng: one section, one Ethernet interface with nanosecond timestamps,
    /// comments saying how the frames and timestamps were made.
    PcapNg,
}

impl Format {
    /// `.pcapng` means pcapng, anything else pcap.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => Format::PcapNg,
            _ => Format::Pcap,
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pcap" => Ok(Format::Pcap),
            "pcapng" => Ok(Format::PcapNg),
            other => Err(Error::config(format!(
                "unknown capture format {other:?}: use pcap or pcapng"
            ))),
        }
    }
}

/// The link layers the reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkLayer {
    /// Ethernet II, with up to two 802.1Q/802.1ad tags (LINKTYPE_ETHERNET, 1).
    Ethernet,
    /// Linux cooked capture v1, 16-byte header (LINKTYPE_LINUX_SLL, 113): `tcpdump -i any`.
    LinuxSll,
    /// Linux cooked capture v2, 20-byte header (LINKTYPE_LINUX_SLL2, 276).
    LinuxSll2,
    /// A bare IP packet (LINKTYPE_RAW 101, LINKTYPE_IPV4 228).
    RawIp,
}

impl LinkLayer {
    /// The link layer of a file's link type, or a clear error naming the
    /// link types zc reads.
    pub fn from_datalink(link: DataLink) -> std::result::Result<Self, String> {
        match link {
            DataLink::ETHERNET => Ok(LinkLayer::Ethernet),
            DataLink::LINUX_SLL => Ok(LinkLayer::LinuxSll),
            DataLink::LINUX_SLL2 => Ok(LinkLayer::LinuxSll2),
            DataLink::RAW | DataLink::IPV4 => Ok(LinkLayer::RawIp),
            other => Err(format!(
                "link type {} ({other:?}) is not one zc reads: Ethernet (1), Linux cooked SLL (113) \
                 and SLL2 (276), raw IPv4 (101, 228)",
                u32::from(other)
            )),
        }
    }
}

/// Why a record holds no UDP datagram zc can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The capture kept fewer bytes than the packet had (snapshot length).
    CutBySnaplen {
        /// Bytes in the file.
        captured: u32,
        /// Bytes on the wire.
        original: u32,
    },
    /// The frame parser refused it (not IPv4, not UDP, bad checksum, ...).
    Wire(WireError),
}

impl Skip {
    /// A short stable name for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::CutBySnaplen { .. } => "cut_by_snaplen",
            Skip::Wire(e) => e.reason(),
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::CutBySnaplen { captured, original } => write!(
                f,
                "only {captured} of the packet's {original} bytes were captured"
            ),
            Skip::Wire(e) => write!(f, "{e}"),
        }
    }
}

/// One UDP datagram found in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
    /// False when the UDP checksum field does not verify (see [`decode_udp`]).
    pub checksum_ok: bool,
}

/// Length of a Linux cooked v1 header.
const SLL_HEADER_LEN: usize = 16;
/// Length of a Linux cooked v2 header.
const SLL2_HEADER_LEN: usize = 20;
/// Length of a UDP header.
const UDP_HEADER_LEN: usize = 8;

/// Finds the UDP datagram in a record of `link`: the link header first, then
/// IPv4 and UDP with zc-core's checked views.
///
/// Every check applies except one: a UDP checksum that does not verify is
/// reported in [`Udp::checksum_ok`], not refused. A capture taken on the
/// sending host (loopback, veth, any NIC with checksum offload) holds the
/// datagram before the checksum is finished, so the field is wrong in
/// nearly every record; Wireshark leaves UDP checksums unchecked by default
/// for the same reason. The IPv4 header checksum is always checked.
pub fn decode_udp(link: LinkLayer, data: &[u8]) -> std::result::Result<Udp<'_>, WireError> {
    let ip = match link {
        LinkLayer::Ethernet => match parse_udp_frame(data) {
            Ok(f) => {
                return Ok(Udp {
                    src: f.src(),
                    dst: f.dst(),
                    payload: f.payload(),
                    checksum_ok: true,
                })
            }
            Err(WireError::UdpChecksum { .. }) => EthernetFrame::new_checked(data)?.payload(),
            Err(e) => return Err(e),
        },
        LinkLayer::LinuxSll => cooked(data, SLL_HEADER_LEN, SLL_HEADER_LEN - 2)?,
        LinkLayer::LinuxSll2 => cooked(data, SLL2_HEADER_LEN, 0)?,
        LinkLayer::RawIp => data,
    };
    let ip = Ipv4Packet::new_checked(ip)?;
    if ip.protocol() != IPPROTO_UDP {
        return Err(WireError::NotUdp(ip.protocol()));
    }
    match UdpDatagram::new_checked(ip.payload(), ip.src(), ip.dst()) {
        Ok(udp) => Ok(Udp {
            src: SocketAddrV4::new(ip.src(), udp.src_port()),
            dst: SocketAddrV4::new(ip.dst(), udp.dst_port()),
            payload: udp.payload(),
            checksum_ok: true,
        }),
        Err(WireError::UdpChecksum { .. }) => {
            // The checksum is checked last: the header and its length have
            // passed every other check, so they can be read as they are.
            let b = ip.payload();
            let port = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
            let len = usize::from(port(4));
            Ok(Udp {
                src: SocketAddrV4::new(ip.src(), port(0)),
                dst: SocketAddrV4::new(ip.dst(), port(2)),
                payload: &b[UDP_HEADER_LEN..len],
                checksum_ok: false,
            })
        }
        Err(e) => Err(e),
    }
}

/// The IPv4 packet after a Linux cooked header of `header_len` bytes whose
/// protocol (EtherType) field is at `proto_at`, past up to two VLAN tags.
fn cooked(
    data: &[u8],
    header_len: usize,
    proto_at: usize,
) -> std::result::Result<&[u8], WireError> {
    use zc_core::wire::{Layer, VLAN_TAG_LEN};
    if data.len() < header_len {
        return Err(WireError::Truncated {
            layer: Layer::Ethernet,
            needed: header_len,
            available: data.len(),
        });
    }
    let mut proto = u16::from_be_bytes([data[proto_at], data[proto_at + 1]]);
    let mut at = header_len;
    let mut tags = 0;
    while proto == ETHERTYPE_VLAN || proto == ETHERTYPE_QINQ {
        if tags == 2 {
            return Err(WireError::TooManyVlanTags);
        }
        if data.len() < at + VLAN_TAG_LEN {
            return Err(WireError::Truncated {
                layer: Layer::Vlan,
                needed: at + VLAN_TAG_LEN,
                available: data.len(),
            });
        }
        proto = u16::from_be_bytes([data[at + 2], data[at + 3]]);
        at += VLAN_TAG_LEN;
        tags += 1;
    }
    if proto != ETHERTYPE_IPV4 {
        return Err(WireError::UnknownEtherType(proto));
    }
    Ok(&data[at..])
}

/// Source MAC of every frame zc synthesizes from a socket datagram:
/// locally administered, `7a:63` is "zc". A reader tells synthesized frames
/// from received ones by it (pcap files have no comment to say so).
pub const SYNTH_SRC_MAC: [u8; 6] = [0x02, 0x7a, 0x63, 0x00, 0x00, 0x01];
/// Destination MAC of every synthesized frame.
pub const SYNTH_DST_MAC: [u8; 6] = [0x02, 0x7a, 0x63, 0x00, 0x00, 0x02];
/// TTL of synthesized frames.
pub const SYNTH_TTL: u8 = 64;

/// Bytes a synthesized frame adds in front of the payload (Ethernet, IPv4, UDP).
pub const SYNTH_HEADER_LEN: usize = 14 + 20 + 8;

/// True when `frame` is one zc synthesized (its source MAC is [`SYNTH_SRC_MAC`]).
pub fn is_synthesized(frame: &[u8]) -> bool {
    frame.get(6..12) == Some(&SYNTH_SRC_MAC[..])
}

/// Writes an Ethernet/IPv4/UDP frame carrying `payload` from `src` to `dst`
/// into `buf` (cleared first) with a correct IPv4 and UDP checksum, so the
/// frame parses back to the same datagram.
pub fn synthesize(
    buf: &mut Vec<u8>,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
) -> std::result::Result<(), WireError> {
    let spec = UdpFrameSpec {
        src_mac: SYNTH_SRC_MAC,
        dst_mac: SYNTH_DST_MAC,
        vlan: None,
        src,
        dst,
        ttl: SYNTH_TTL,
        udp_checksum: true,
    };
    buf.clear();
    buf.resize(SYNTH_HEADER_LEN + payload.len(), 0);
    spec.payload_mut(buf)[..payload.len()].copy_from_slice(payload);
    let len = spec.finish(buf, payload.len())?;
    buf.truncate(len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn a_synthesized_frame_parses_back_to_its_datagram() {
        let mut buf = Vec::new();
        let (src, dst) = (addr("198.18.7.2:4000"), addr("198.18.7.1:9000"));
        synthesize(&mut buf, src, dst, b"hello market").unwrap();
        assert!(is_synthesized(&buf));
        let u = decode_udp(LinkLayer::Ethernet, &buf).unwrap();
        assert_eq!(
            (u.src, u.dst, u.payload, u.checksum_ok),
            (src, dst, &b"hello market"[..], true)
        );
    }

    #[test]
    fn cooked_headers_and_raw_ip_reach_the_same_datagram() {
        let mut eth = Vec::new();
        let (src, dst) = (addr("198.18.7.2:4000"), addr("198.18.7.1:9000"));
        synthesize(&mut eth, src, dst, b"payload").unwrap();
        let ip = &eth[14..];
        // SLL: packet type, ARPHRD, address length, 8 address bytes, protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6];
        sll.extend_from_slice(&[0x02, 0x7a, 0x63, 0, 0, 1, 0, 0]);
        sll.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        sll.extend_from_slice(ip);
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
        let mut sll2 = ETHERTYPE_IPV4.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6]);
        sll2.extend_from_slice(&[0x02, 0x7a, 0x63, 0, 0, 1, 0, 0]);
        sll2.extend_from_slice(ip);
        for (link, data) in [
            (LinkLayer::LinuxSll, &sll[..]),
            (LinkLayer::LinuxSll2, &sll2[..]),
            (LinkLayer::RawIp, ip),
        ] {
            let u = decode_udp(link, data).unwrap();
            assert_eq!(
                (u.src, u.dst, u.payload),
                (src, dst, &b"payload"[..]),
                "{link:?}"
            );
        }
        // A VLAN tag inside a cooked capture.
        let mut tagged = sll[..14].to_vec();
        tagged.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        tagged.extend_from_slice(&[0x00, 0x2a]);
        tagged.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        tagged.extend_from_slice(ip);
        assert_eq!(
            decode_udp(LinkLayer::LinuxSll, &tagged).unwrap().payload,
            b"payload"
        );
    }

    #[test]
    fn an_unfinished_udp_checksum_is_reported_not_refused_and_the_ip_checksum_still_is() {
        let mut eth = Vec::new();
        let (src, dst) = (addr("198.18.7.2:4000"), addr("198.18.7.1:9000"));
        synthesize(&mut eth, src, dst, b"offloaded").unwrap();
        // What a capture on the sender holds: the pseudo-header sum only.
        eth[14 + 20 + 6] ^= 0x5a;
        let ip = eth[14..].to_vec();
        for (link, data) in [(LinkLayer::Ethernet, &eth[..]), (LinkLayer::RawIp, &ip[..])] {
            let u = decode_udp(link, data).unwrap();
            assert_eq!(
                (u.src, u.dst, u.payload, u.checksum_ok),
                (src, dst, &b"offloaded"[..], false),
                "{link:?}"
            );
        }
        eth[14 + 10] ^= 0x5a;
        assert!(matches!(
            decode_udp(LinkLayer::Ethernet, &eth),
            Err(WireError::Ipv4Checksum { .. })
        ));
    }

    #[test]
    fn what_is_not_udp_over_ipv4_is_refused_with_the_parsers_reason() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x86ddu16.to_be_bytes());
        sll.extend_from_slice(&[0x60; 40]);
        assert_eq!(
            decode_udp(LinkLayer::LinuxSll, &sll),
            Err(WireError::UnknownEtherType(0x86dd))
        );
        assert!(matches!(
            decode_udp(LinkLayer::LinuxSll2, &[0; 10]),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(
            decode_udp(LinkLayer::RawIp, &[0x60; 40]),
            Err(WireError::Ipv4Version(6))
        );
    }

    #[test]
    fn formats_come_from_the_extension_or_the_name() {
        assert_eq!(Format::from_path(Path::new("a/b.pcapng")), Format::PcapNg);
        assert_eq!(Format::from_path(Path::new("a/b.pcap")), Format::Pcap);
        assert_eq!(Format::from_path(Path::new("a/b")), Format::Pcap);
        assert_eq!("pcapng".parse::<Format>().unwrap(), Format::PcapNg);
        assert!("erf"
            .parse::<Format>()
            .unwrap_err()
            .to_string()
            .contains("pcap or pcapng"));
    }
}
