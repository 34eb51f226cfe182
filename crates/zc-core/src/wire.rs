//! Checked zero-copy views over Ethernet II, 802.1Q, IPv4 and UDP, and a frame builder.
//!
//! Every view is built with `new_checked`, which validates every length and field
//! the accessors later rely on; after that no accessor can panic or read out of
//! bounds. [`parse_udp_frame`] runs the whole chain and returns the first error
//! with its specific reason, so a receiver can count drops by cause.
//!
//! Multi-byte header fields are big-endian (network order), as on the wire.

use std::net::{Ipv4Addr, SocketAddrV4};

/// Length of an Ethernet II header without VLAN tags.
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one 802.1Q / 802.1ad tag.
pub const VLAN_TAG_LEN: usize = 4;
/// Length of an IPv4 header without options.
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType (TPID) of an 802.1Q customer VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service VLAN tag (the outer tag of QinQ).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// The protocol layer an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The Ethernet II header.
    Ethernet,
    /// An 802.1Q/802.1ad tag.
    Vlan,
    /// The IPv4 header.
    Ipv4,
    /// The UDP header.
    Udp,
}

/// Why a frame was refused. Each variant is one specific defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends inside a header.
    #[error("{layer:?} header truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Where the buffer ended.
        layer: Layer,
        /// Bytes the header needs from its start.
        needed: usize,
        /// Bytes left from its start.
        available: usize,
    },
    /// The EtherType (after any VLAN tags) is not IPv4.
    #[error("EtherType {0:#06x} is not IPv4")]
    UnknownEtherType(u16),
    /// More than two VLAN tags.
    #[error("more than two VLAN tags")]
    TooManyVlanTags,
    /// IPv4 version field is not 4.
    #[error("IP version {0} is not 4")]
    Ipv4Version(u8),
    /// IPv4 IHL below 5 (the header cannot be shorter than 20 bytes).
    #[error("IPv4 IHL {0} is below the minimum of 5")]
    Ipv4HeaderLength(u8),
    /// IPv4 total length smaller than its own header.
    #[error("IPv4 total length {total} is smaller than its header ({header} bytes)")]
    Ipv4TotalLengthBelowHeader {
        /// The total length field.
        total: usize,
        /// The header length from IHL.
        header: usize,
    },
    /// IPv4 total length goes past the end of the buffer.
    #[error("IPv4 total length {total} goes beyond the {available} bytes received")]
    Ipv4TotalLengthBeyondBuffer {
        /// The total length field.
        total: usize,
        /// Bytes from the IPv4 header to the end of the buffer.
        available: usize,
    },
    /// The IPv4 header checksum does not verify.
    #[error("IPv4 header checksum {found:#06x} is wrong (expected {expected:#06x})")]
    Ipv4Checksum {
        /// The checksum in the header.
        found: u16,
        /// The checksum the header should carry.
        expected: u16,
    },
    /// The packet is an IPv4 fragment; fragments are refused, never reassembled.
    #[error("IPv4 fragment (offset {offset} bytes, more fragments: {more}); fragments are not reassembled")]
    Ipv4Fragment {
        /// Fragment offset in bytes.
        offset: u16,
        /// The MF flag.
        more: bool,
    },
    /// The IPv4 payload is not UDP.
    #[error("IP protocol {0} is not UDP")]
    NotUdp(u8),
    /// UDP length below the 8-byte header.
    #[error("UDP length {0} is below the 8-byte header")]
    UdpLengthTooSmall(u16),
    /// UDP length goes past the IPv4 payload.
    #[error("UDP length {udp} goes beyond the {ip_payload}-byte IPv4 payload")]
    UdpLengthBeyondPayload {
        /// The UDP length field.
        udp: usize,
        /// The IPv4 payload length.
        ip_payload: usize,
    },
    /// The UDP checksum is present and does not verify.
    #[error("UDP checksum {found:#06x} is wrong (expected {expected:#06x})")]
    UdpChecksum {
        /// The checksum in the header.
        found: u16,
        /// The checksum the datagram should carry.
        expected: u16,
    },
    /// The builder's buffer cannot hold the frame.
    #[error("buffer of {available} bytes cannot hold a {needed}-byte frame")]
    BufferTooSmall {
        /// Frame length.
        needed: usize,
        /// Buffer length.
        available: usize,
    },
    /// The payload does not fit in one IPv4 datagram.
    #[error("UDP payload of {0} bytes does not fit in one IPv4 packet")]
    PayloadTooLarge(usize),
}

impl WireError {
    /// Every [`Self::reason`], in the order [`MalformedCounts`] keeps them.
    pub const REASONS: [&'static str; 15] = [
        "truncated",
        "unknown_ethertype",
        "too_many_vlan_tags",
        "ipv4_version",
        "ipv4_ihl",
        "ipv4_total_length_below_header",
        "ipv4_total_length_beyond_buffer",
        "ipv4_checksum",
        "ipv4_fragment",
        "not_udp",
        "udp_length_too_small",
        "udp_length_beyond_payload",
        "udp_checksum",
        "buffer_too_small",
        "payload_too_large",
    ];

    fn reason_index(&self) -> usize {
        match self {
            WireError::Truncated { .. } => 0,
            WireError::UnknownEtherType(_) => 1,
            WireError::TooManyVlanTags => 2,
            WireError::Ipv4Version(_) => 3,
            WireError::Ipv4HeaderLength(_) => 4,
            WireError::Ipv4TotalLengthBelowHeader { .. } => 5,
            WireError::Ipv4TotalLengthBeyondBuffer { .. } => 6,
            WireError::Ipv4Checksum { .. } => 7,
            WireError::Ipv4Fragment { .. } => 8,
            WireError::NotUdp(_) => 9,
            WireError::UdpLengthTooSmall(_) => 10,
            WireError::UdpLengthBeyondPayload { .. } => 11,
            WireError::UdpChecksum { .. } => 12,
            WireError::BufferTooSmall { .. } => 13,
            WireError::PayloadTooLarge(_) => 14,
        }
    }

    /// A short stable name for counters and reports.
    pub fn reason(&self) -> &'static str {
        Self::REASONS[self.reason_index()]
    }

    /// True for a well-formed frame that is simply not IPv4/UDP (ARP, IPv6,
    /// ICMP, TCP…): a receiver's filter refuses it, it is no defect.
    pub fn is_other_protocol(&self) -> bool {
        matches!(self, WireError::UnknownEtherType(_) | WireError::NotUdp(_))
    }
}

/// Refused frames counted by [`WireError::reason`], in fixed memory (a hot
/// receive path may count without allocating). Serialized as an object of
/// the non-zero reasons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MalformedCounts([u64; WireError::REASONS.len()]);

impl MalformedCounts {
    /// Counts one refusal.
    #[inline]
    pub fn add(&mut self, e: &WireError) {
        self.0[e.reason_index()] += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// All refusals.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counts, by reason.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        WireError::REASONS
            .iter()
            .zip(self.0)
            .filter(|&(_, n)| n > 0)
            .map(|(&r, n)| (r, n))
    }
}

impl std::fmt::Display for MalformedCounts {
    /// `reason n, reason n`, or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut any = false;
        for (r, n) in self.iter() {
            if any {
                f.write_str(", ")?;
            }
            write!(f, "{r} {n}")?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MalformedCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Where each header field lies, from the start of its header: declared once,
/// read by the views and written by [`UdpFrameSpec::finish`].
mod field {
    use std::ops::Range;

    /// Ethernet II.
    pub(super) mod eth {
        use super::Range;
        pub(crate) const DST: Range<usize> = 0..6;
        pub(crate) const SRC: Range<usize> = 6..12;
        pub(crate) const ETHERTYPE: Range<usize> = 12..14;
    }

    /// One 802.1Q/802.1ad tag, from the tag's start (where the EtherType was).
    pub(super) mod vlan {
        use super::Range;
        pub(crate) const TPID: Range<usize> = 0..2;
        pub(crate) const TCI: Range<usize> = 2..4;
        /// The EtherType after the tag (the next tag's TPID, or the payload's type).
        pub(crate) const NEXT_TYPE: Range<usize> = 4..6;
        /// The VLAN ID within the TCI.
        pub(crate) const VID_MASK: u16 = 0x0fff;
    }

    /// IPv4.
    pub(super) mod ipv4 {
        use super::Range;
        pub(crate) const VER_IHL: usize = 0;
        pub(crate) const DSCP_ECN: usize = 1;
        pub(crate) const LENGTH: Range<usize> = 2..4;
        pub(crate) const IDENT: Range<usize> = 4..6;
        pub(crate) const FLAGS_FRAG: Range<usize> = 6..8;
        pub(crate) const TTL: usize = 8;
        pub(crate) const PROTOCOL: usize = 9;
        pub(crate) const CHECKSUM: Range<usize> = 10..12;
        pub(crate) const SRC: Range<usize> = 12..16;
        pub(crate) const DST: Range<usize> = 16..20;
        /// Source then destination: what the UDP pseudo-header sums.
        pub(crate) const ADDRS: Range<usize> = 12..20;
        /// Don't Fragment, in FLAGS_FRAG.
        pub(crate) const DF: u16 = 0x4000;
        /// More Fragments, in FLAGS_FRAG.
        pub(crate) const MF: u16 = 0x2000;
        /// The fragment offset in 8-byte units, in FLAGS_FRAG.
        pub(crate) const OFFSET_MASK: u16 = 0x1fff;
    }

    /// UDP.
    pub(super) mod udp {
        use super::Range;
        pub(crate) const SRC_PORT: Range<usize> = 0..2;
        pub(crate) const DST_PORT: Range<usize> = 2..4;
        pub(crate) const LENGTH: Range<usize> = 4..6;
        pub(crate) const CHECKSUM: Range<usize> = 6..8;
    }
}

/// The big-endian u16 in `b[f]` (a two-byte field).
fn get16(b: &[u8], f: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

/// Writes `v` big-endian into the two-byte field `b[f]`.
fn put16(b: &mut [u8], f: std::ops::Range<usize>, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

fn truncated(layer: Layer, needed: usize, available: usize) -> WireError {
    WireError::Truncated {
        layer,
        needed,
        available,
    }
}

/// One's-complement addition of 64-bit words: the carry out wraps around.
/// (2^16 − 1 divides 2^64 − 1, so the 16-bit checksum survives the wider sum.)
#[inline(always)]
fn add_carry(acc: u64, w: u64) -> u64 {
    let (s, carry) = acc.overflowing_add(w);
    // With a carry, s ≤ 2^64 − 2: adding it back cannot overflow.
    s + u64::from(carry)
}

/// Adds `data` to a one's-complement running sum kept in the host's byte
/// order; [`fold`] turns it into the big-endian 16-bit sum. RFC 1071 §2(B):
/// the sum is the same in either byte order up to a final swap, so words are
/// loaded as they lie, 8 bytes per add with carry, no byte swapping per word.
/// `data` must start at an even offset of the checksummed bytes (every caller's
/// pieces do), so that its 16-bit words line up with the checksum's.
#[inline(always)]
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc = add_carry(acc, w);
    }
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        acc = add_carry(acc, u64::from(u32::from_ne_bytes([*a, *b, *c, *d])));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        acc = add_carry(acc, u64::from(u16::from_ne_bytes([*a, *b])));
        rest = tail;
    }
    if let [last] = rest {
        // An odd last byte is the high byte of a word padded with zero.
        acc = add_carry(acc, u64::from(u16::from_ne_bytes([*last, 0])));
    }
    acc
}

/// A big-endian 16-bit value as a term of the host-order running sum.
fn be_word(v: u16) -> u64 {
    u64::from(u16::from_ne_bytes(v.to_be_bytes()))
}

/// Folds a running sum to 16 bits with end-around carry, as the big-endian
/// value a header carries.
fn fold(acc: u64) -> u16 {
    let acc = (acc & 0xffff_ffff) + (acc >> 32); // ≤ 33 bits
    let acc = (acc & 0xffff) + (acc >> 16); // ≤ 18 bits
    let acc = (acc & 0xffff) + (acc >> 16); // ≤ 17 bits
    let host_order = ((acc & 0xffff) + (acc >> 16)) as u16;
    u16::from_be_bytes(host_order.to_ne_bytes())
}

/// The Internet checksum (RFC 1071) of `data`: the value to store in a header
/// whose checksum field is zero while summing.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(sum_words(0, data))
}

/// The running sum of the UDP pseudo-header: source and destination as the 8
/// bytes they occupy in the IPv4 header, the protocol, the UDP length.
/// `udp_len` is at most 65 535 (the callers checked it against a 16-bit field).
fn udp_pseudo_sum(addrs: &[u8], udp_len: usize) -> u64 {
    let acc = add_carry(sum_words(0, addrs), be_word(u16::from(IPPROTO_UDP)));
    add_carry(acc, be_word(udp_len as u16))
}

/// The UDP checksum field for a running sum taken with the field zero.
fn udp_checksum_field(acc: u64) -> u16 {
    match !fold(acc) {
        // 0 means "no checksum" in UDP over IPv4; a computed 0 is sent as 0xffff.
        0 => 0xffff,
        c => c,
    }
}

/// A checked view of an Ethernet II frame with zero, one or two VLAN tags.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    buf: &'a [u8],
    tags: [u16; 2],
    tag_count: u8,
    ethertype: u16,
    header_len: usize,
}

impl<'a> EthernetFrame<'a> {
    /// Validates the header and any VLAN tags.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < ETH_HEADER_LEN {
            return Err(truncated(Layer::Ethernet, ETH_HEADER_LEN, buf.len()));
        }
        let mut ethertype = get16(buf, field::eth::ETHERTYPE);
        let mut header_len = ETH_HEADER_LEN;
        let mut tags = [0u16; 2];
        let mut tag_count = 0u8;
        while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
            if tag_count == 2 {
                return Err(WireError::TooManyVlanTags);
            }
            let needed = header_len + VLAN_TAG_LEN;
            if buf.len() < needed {
                return Err(truncated(Layer::Vlan, needed, buf.len()));
            }
            // The tag starts where the EtherType was, two bytes back.
            let tag = &buf[header_len - 2..];
            tags[usize::from(tag_count)] = get16(tag, field::vlan::TCI) & field::vlan::VID_MASK;
            ethertype = get16(tag, field::vlan::NEXT_TYPE);
            header_len = needed;
            tag_count += 1;
        }
        Ok(Self {
            buf,
            tags,
            tag_count,
            ethertype,
            header_len,
        })
    }

    /// Destination MAC address.
    pub fn dst_mac(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.buf[field::eth::DST]);
        mac
    }

    /// Source MAC address.
    pub fn src_mac(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.buf[field::eth::SRC]);
        mac
    }

    /// VLAN IDs, outermost first.
    pub fn vlan_ids(&self) -> &[u16] {
        &self.tags[..usize::from(self.tag_count)]
    }

    /// EtherType of the payload, after any VLAN tags.
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }

    /// Header length including VLAN tags.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Everything after the header (may include Ethernet padding).
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }
}

/// A checked view of an IPv4 packet: header (with options), checksum and lengths verified,
/// fragments refused. The view ends at the total length (Ethernet padding cut off).
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> Ipv4Packet<'a> {
    /// Validates version, IHL, total length, header checksum and fragmentation.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < IPV4_MIN_HEADER_LEN {
            return Err(truncated(Layer::Ipv4, IPV4_MIN_HEADER_LEN, buf.len()));
        }
        let version = buf[field::ipv4::VER_IHL] >> 4;
        if version != 4 {
            return Err(WireError::Ipv4Version(version));
        }
        let ihl = buf[field::ipv4::VER_IHL] & 0x0f;
        if ihl < 5 {
            return Err(WireError::Ipv4HeaderLength(ihl));
        }
        let header_len = usize::from(ihl) * 4;
        if buf.len() < header_len {
            return Err(truncated(Layer::Ipv4, header_len, buf.len()));
        }
        let total = usize::from(get16(buf, field::ipv4::LENGTH));
        if total < header_len {
            return Err(WireError::Ipv4TotalLengthBelowHeader {
                total,
                header: header_len,
            });
        }
        if total > buf.len() {
            return Err(WireError::Ipv4TotalLengthBeyondBuffer {
                total,
                available: buf.len(),
            });
        }
        let header = &buf[..header_len];
        // The usual header has no options: a constant length lets the sum
        // unroll into three adds.
        let sum = if header_len == IPV4_MIN_HEADER_LEN {
            sum_words(0, &buf[..IPV4_MIN_HEADER_LEN])
        } else {
            sum_words(0, header)
        };
        if fold(sum) != 0xffff {
            let found = get16(buf, field::ipv4::CHECKSUM);
            let mut acc = sum_words(0, &header[..field::ipv4::CHECKSUM.start]);
            acc = sum_words(acc, &header[field::ipv4::CHECKSUM.end..]);
            return Err(WireError::Ipv4Checksum {
                found,
                expected: !fold(acc),
            });
        }
        let frag = get16(buf, field::ipv4::FLAGS_FRAG);
        let more = frag & field::ipv4::MF != 0;
        let offset = (frag & field::ipv4::OFFSET_MASK) * 8;
        if more || offset != 0 {
            return Err(WireError::Ipv4Fragment { offset, more });
        }
        Ok(Self {
            buf: &buf[..total],
            header_len,
        })
    }

    /// Header length in bytes (20 to 60).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// IPv4 options (empty when IHL is 5).
    pub fn options(&self) -> &'a [u8] {
        &self.buf[IPV4_MIN_HEADER_LEN..self.header_len]
    }

    /// The total length field.
    pub fn total_len(&self) -> usize {
        self.buf.len()
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buf[field::ipv4::TTL]
    }

    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        self.buf[field::ipv4::PROTOCOL]
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let a = &self.buf[field::ipv4::SRC];
        Ipv4Addr::new(a[0], a[1], a[2], a[3])
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let a = &self.buf[field::ipv4::DST];
        Ipv4Addr::new(a[0], a[1], a[2], a[3])
    }

    /// The payload, up to the total length.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }

    /// Source then destination address, as in the header.
    fn addr_bytes(&self) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.buf[field::ipv4::ADDRS]);
        a
    }
}

/// A checked view of a UDP datagram; ends at the UDP length.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    buf: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// Validates the UDP length against `ip_payload` and, when the checksum field is
    /// not zero, the checksum over the pseudo-header of `src`/`dst`.
    pub fn new_checked(
        ip_payload: &'a [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Self, WireError> {
        let mut addrs = [0u8; 8];
        addrs[..4].copy_from_slice(&src.octets());
        addrs[4..].copy_from_slice(&dst.octets());
        Self::checked(ip_payload, &addrs)
    }

    /// As `new_checked`, with source and destination as the 8 bytes they
    /// occupy in the IPv4 header (what the parser has at hand).
    #[inline]
    fn checked(ip_payload: &'a [u8], addrs: &[u8; 8]) -> Result<Self, WireError> {
        if ip_payload.len() < UDP_HEADER_LEN {
            return Err(truncated(Layer::Udp, UDP_HEADER_LEN, ip_payload.len()));
        }
        let len = get16(ip_payload, field::udp::LENGTH);
        if usize::from(len) < UDP_HEADER_LEN {
            return Err(WireError::UdpLengthTooSmall(len));
        }
        if usize::from(len) > ip_payload.len() {
            return Err(WireError::UdpLengthBeyondPayload {
                udp: usize::from(len),
                ip_payload: ip_payload.len(),
            });
        }
        let buf = &ip_payload[..usize::from(len)];
        let found = get16(buf, field::udp::CHECKSUM);
        if found != 0 {
            let pseudo = udp_pseudo_sum(addrs, buf.len());
            if fold(sum_words(pseudo, buf)) != 0xffff {
                // Slow path, errors only: the sum with the checksum field zeroed.
                let acc = sum_words(
                    sum_words(pseudo, &buf[..field::udp::CHECKSUM.start]),
                    &buf[field::udp::CHECKSUM.end..],
                );
                let expected = udp_checksum_field(acc);
                return Err(WireError::UdpChecksum { found, expected });
            }
        }
        Ok(Self { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get16(self.buf, field::udp::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get16(self.buf, field::udp::DST_PORT)
    }

    /// The checksum field (0 when the sender sent none).
    pub fn checksum(&self) -> u16 {
        get16(self.buf, field::udp::CHECKSUM)
    }

    /// The payload, up to the UDP length.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[UDP_HEADER_LEN..]
    }
}

/// A fully checked Ethernet/IPv4/UDP frame.
#[derive(Debug, Clone, Copy)]
pub struct UdpFrame<'a> {
    /// The Ethernet layer.
    pub eth: EthernetFrame<'a>,
    /// The IPv4 layer.
    pub ip: Ipv4Packet<'a>,
    /// The UDP layer.
    pub udp: UdpDatagram<'a>,
}

impl<'a> UdpFrame<'a> {
    /// Source address and port.
    pub fn src(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip.src(), self.udp.src_port())
    }

    /// Destination address and port.
    pub fn dst(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip.dst(), self.udp.dst_port())
    }

    /// The UDP payload.
    pub fn payload(&self) -> &'a [u8] {
        self.udp.payload()
    }
}

/// Parses an Ethernet II (0–2 VLAN tags) / IPv4 / UDP frame, checking every layer.
pub fn parse_udp_frame(frame: &[u8]) -> Result<UdpFrame<'_>, WireError> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != ETHERTYPE_IPV4 {
        return Err(WireError::UnknownEtherType(eth.ethertype()));
    }
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    if ip.protocol() != IPPROTO_UDP {
        return Err(WireError::NotUdp(ip.protocol()));
    }
    let udp = UdpDatagram::checked(ip.payload(), &ip.addr_bytes())?;
    Ok(UdpFrame { eth, ip, udp })
}

/// Everything needed to write Ethernet/IPv4/UDP headers in front of a payload.
///
/// Use: write the payload into [`UdpFrameSpec::payload_mut`], then call
/// [`UdpFrameSpec::finish`] with its length; the headers and checksums are written
/// around it in the same buffer (a UMEM frame or an mbuf), with no copy of the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrameSpec {
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// One 802.1Q VLAN ID (0–4095), or none.
    pub vlan: Option<u16>,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// IPv4 time to live.
    pub ttl: u8,
    /// Compute the UDP checksum (otherwise 0 is sent, which IPv4 allows).
    pub udp_checksum: bool,
}

impl UdpFrameSpec {
    /// Bytes of headers in front of the payload.
    pub fn header_len(&self) -> usize {
        ETH_HEADER_LEN
            + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 }
            + IPV4_MIN_HEADER_LEN
            + UDP_HEADER_LEN
    }

    /// The part of `buf` where the payload goes.
    pub fn payload_mut<'b>(&self, buf: &'b mut [u8]) -> &'b mut [u8] {
        let at = self.header_len().min(buf.len());
        &mut buf[at..]
    }

    /// Writes the headers for a payload of `payload_len` bytes already in place,
    /// and returns the frame length.
    pub fn finish(&self, buf: &mut [u8], payload_len: usize) -> Result<usize, WireError> {
        let udp_len = UDP_HEADER_LEN + payload_len;
        let ip_len = IPV4_MIN_HEADER_LEN + udp_len;
        if ip_len > usize::from(u16::MAX) {
            return Err(WireError::PayloadTooLarge(payload_len));
        }
        let frame_len = self.header_len() + payload_len;
        if buf.len() < frame_len {
            return Err(WireError::BufferTooSmall {
                needed: frame_len,
                available: buf.len(),
            });
        }
        let buf = &mut buf[..frame_len];
        buf[field::eth::DST].copy_from_slice(&self.dst_mac);
        buf[field::eth::SRC].copy_from_slice(&self.src_mac);
        // `at`: where the EtherType (or a tag, which starts there) goes.
        let mut at = field::eth::ETHERTYPE.start;
        if let Some(vid) = self.vlan {
            let tag = &mut buf[at..];
            put16(tag, field::vlan::TPID, ETHERTYPE_VLAN);
            put16(tag, field::vlan::TCI, vid & field::vlan::VID_MASK);
            at += VLAN_TAG_LEN;
        }
        put16(&mut buf[at..], 0..2, ETHERTYPE_IPV4); // the EtherType: two bytes
        at += 2;

        let ip = &mut buf[at..at + IPV4_MIN_HEADER_LEN];
        ip[field::ipv4::VER_IHL] = 0x45;
        ip[field::ipv4::DSCP_ECN] = 0;
        put16(ip, field::ipv4::LENGTH, ip_len as u16);
        put16(ip, field::ipv4::IDENT, 0); // unused without fragments
        put16(ip, field::ipv4::FLAGS_FRAG, field::ipv4::DF);
        ip[field::ipv4::TTL] = self.ttl;
        ip[field::ipv4::PROTOCOL] = IPPROTO_UDP;
        put16(ip, field::ipv4::CHECKSUM, 0);
        ip[field::ipv4::SRC].copy_from_slice(&self.src.ip().octets());
        ip[field::ipv4::DST].copy_from_slice(&self.dst.ip().octets());
        let csum = internet_checksum(ip);
        put16(ip, field::ipv4::CHECKSUM, csum);
        let pseudo = udp_pseudo_sum(&ip[field::ipv4::ADDRS], udp_len);
        at += IPV4_MIN_HEADER_LEN;

        let udp = &mut buf[at..];
        put16(udp, field::udp::SRC_PORT, self.src.port());
        put16(udp, field::udp::DST_PORT, self.dst.port());
        put16(udp, field::udp::LENGTH, udp_len as u16);
        put16(udp, field::udp::CHECKSUM, 0);
        if self.udp_checksum {
            let csum = udp_checksum_field(sum_words(pseudo, udp));
            put16(udp, field::udp::CHECKSUM, csum);
        }
        Ok(frame_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3 example words: 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn checksum_matches_the_textbook_definition() {
        // Sum of 16-bit words with end-around carry, one word at a time.
        fn naive(data: &[u8]) -> u16 {
            let mut sum: u32 = 0;
            for pair in data.chunks(2) {
                let w = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
                sum += w;
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        }
        let mut x = 0x1234_5678u32;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect();
            assert_eq!(internet_checksum(&data), naive(&data), "len {len}");
        }
        assert_eq!(internet_checksum(&[0xff; 64]), naive(&[0xff; 64]));
    }

    #[test]
    fn a_sum_taken_in_pieces_at_even_offsets_is_the_whole_sum() {
        // The parser sums pseudo-header, header and payload as separate
        // pieces; near-all-ones data makes every 64-bit add carry.
        let data: Vec<u8> = (0..97u8).map(|i| 0xff - (i % 3)).collect();
        let whole = fold(sum_words(0, &data));
        for k in (0..=data.len()).step_by(2) {
            for m in (k..=data.len()).step_by(2) {
                let acc = sum_words(sum_words(sum_words(0, &data[..k]), &data[k..m]), &data[m..]);
                assert_eq!(fold(acc), whole, "split at {k} and {m}");
            }
        }
        assert_eq!(!whole, internet_checksum(&data));
    }

    #[test]
    fn odd_length_checksum_pads_with_zero() {
        assert_eq!(internet_checksum(&[0xab]), internet_checksum(&[0xab, 0x00]));
    }
}
