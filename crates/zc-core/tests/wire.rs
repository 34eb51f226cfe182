//! Malformed frames give their specific error and never panic; build → parse round trips.

use std::net::{Ipv4Addr, SocketAddrV4};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::wire::{internet_checksum, parse_udp_frame, Layer, UdpFrameSpec, WireError};

fn spec(vlan: Option<u16>, udp_checksum: bool) -> UdpFrameSpec {
    UdpFrameSpec {
        src_mac: [0x02, 0, 0, 0, 0, 0x01],
        dst_mac: [0x02, 0, 0, 0, 0, 0x02],
        vlan,
        src: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
        dst: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 9000),
        ttl: 64,
        udp_checksum,
    }
}

fn msg(seq: u32) -> MarketData {
    MarketData {
        seq,
        symbol: 7,
        price: 101.25,
        volume: -300,
        timestamp_ns: 123_456_789,
    }
}

fn frame_with(spec: &UdpFrameSpec, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1600];
    spec.payload_mut(&mut buf)[..payload.len()].copy_from_slice(payload);
    let n = spec.finish(&mut buf, payload.len()).unwrap();
    buf.truncate(n);
    buf
}

fn valid() -> Vec<u8> {
    let mut p = [0u8; MESSAGE_LEN];
    msg(42).encode(&mut p).unwrap();
    frame_with(&spec(None, true), &p)
}

const IP: usize = 14;

fn fix_ip_checksum(f: &mut [u8], ip_at: usize) {
    let hl = usize::from(f[ip_at] & 0x0f) * 4;
    f[ip_at + 10] = 0;
    f[ip_at + 11] = 0;
    let c = internet_checksum(&f[ip_at..ip_at + hl.max(20)]);
    f[ip_at + 10..ip_at + 12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn a_valid_frame_round_trips() {
    let f = valid();
    assert_eq!(f.len(), 74, "the 32-byte message makes a 74-byte frame");
    let p = parse_udp_frame(&f).unwrap();
    assert_eq!(p.src(), spec(None, true).src);
    assert_eq!(p.dst(), spec(None, true).dst);
    assert_eq!(p.eth.src_mac(), [0x02, 0, 0, 0, 0, 0x01]);
    assert_eq!(p.eth.dst_mac(), [0x02, 0, 0, 0, 0, 0x02]);
    assert_eq!(p.ip.ttl(), 64);
    assert_ne!(p.udp.checksum(), 0);
    assert_eq!(MarketData::decode(p.payload()).unwrap(), msg(42));
}

#[test]
fn frames_without_udp_checksum_parse() {
    let mut p = [0u8; MESSAGE_LEN];
    msg(1).encode(&mut p).unwrap();
    let f = frame_with(&spec(None, false), &p);
    let parsed = parse_udp_frame(&f).unwrap();
    assert_eq!(parsed.udp.checksum(), 0);
    assert_eq!(MarketData::decode(parsed.payload()).unwrap(), msg(1));
}

#[test]
fn every_prefix_of_a_valid_frame_is_truncated_not_a_panic() {
    for vlan in [None, Some(100)] {
        let full = {
            let mut p = [0u8; MESSAGE_LEN];
            msg(9).encode(&mut p).unwrap();
            frame_with(&spec(vlan, true), &p)
        };
        for n in 0..full.len() {
            let e = parse_udp_frame(&full[..n]).unwrap_err();
            // Cut inside a header: Truncated at that layer. Cut in the payload:
            // the IPv4 total length now exceeds what arrived.
            match e {
                WireError::Truncated {
                    layer,
                    needed,
                    available,
                } => {
                    assert!(needed > available, "prefix {n}: {e}");
                    let eth = if vlan.is_some() { 18 } else { 14 };
                    let expect = if n < 14 {
                        Layer::Ethernet
                    } else if n < eth {
                        Layer::Vlan
                    } else {
                        Layer::Ipv4
                    };
                    assert_eq!(layer, expect, "prefix {n}");
                }
                WireError::Ipv4TotalLengthBeyondBuffer { total, available } => {
                    assert!(total > available, "prefix {n}");
                }
                other => panic!("prefix {n}: unexpected {other}"),
            }
        }
    }
}

#[test]
fn ihl_below_five_is_refused() {
    for ihl in 0..5u8 {
        let mut f = valid();
        f[IP] = 0x40 | ihl;
        assert_eq!(
            parse_udp_frame(&f).unwrap_err(),
            WireError::Ipv4HeaderLength(ihl)
        );
    }
}

#[test]
fn ip_version_other_than_four_is_refused() {
    let mut f = valid();
    f[IP] = 0x65;
    assert_eq!(parse_udp_frame(&f).unwrap_err(), WireError::Ipv4Version(6));
}

#[test]
fn ihl_beyond_the_buffer_is_truncated() {
    let mut f = valid();
    f.truncate(IP + 24);
    f[IP] = 0x4f; // 60-byte header in a 24-byte buffer
    assert!(matches!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::Truncated {
            layer: Layer::Ipv4,
            needed: 60,
            available: 24
        }
    ));
}

#[test]
fn total_length_beyond_the_buffer_is_refused() {
    let mut f = valid();
    f[IP + 2..IP + 4].copy_from_slice(&200u16.to_be_bytes());
    fix_ip_checksum(&mut f, IP);
    assert_eq!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::Ipv4TotalLengthBeyondBuffer {
            total: 200,
            available: 60
        }
    );
}

#[test]
fn total_length_below_the_header_is_refused() {
    let mut f = valid();
    f[IP + 2..IP + 4].copy_from_slice(&12u16.to_be_bytes());
    fix_ip_checksum(&mut f, IP);
    assert_eq!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::Ipv4TotalLengthBelowHeader {
            total: 12,
            header: 20
        }
    );
}

#[test]
fn ethernet_padding_after_total_length_is_ignored() {
    let mut f = valid();
    f.extend_from_slice(&[0xee; 20]);
    let p = parse_udp_frame(&f).unwrap();
    assert_eq!(p.payload().len(), MESSAGE_LEN);
}

#[test]
fn udp_length_below_eight_is_refused() {
    let mut f = valid();
    f[IP + 24..IP + 26].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::UdpLengthTooSmall(7)
    );
}

#[test]
fn udp_length_beyond_the_ip_payload_is_refused() {
    let mut f = valid();
    f[IP + 24..IP + 26].copy_from_slice(&41u16.to_be_bytes());
    assert_eq!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::UdpLengthBeyondPayload {
            udp: 41,
            ip_payload: 40
        }
    );
}

#[test]
fn udp_length_shorter_than_ip_payload_cuts_the_payload() {
    let mut p = [0u8; MESSAGE_LEN];
    msg(3).encode(&mut p).unwrap();
    let mut f = frame_with(&spec(None, false), &p);
    f[IP + 24..IP + 26].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(parse_udp_frame(&f).unwrap().payload().len(), 12);
}

#[test]
fn fragments_are_refused() {
    for (field, offset, more) in [
        (0x2000u16, 0u16, true),
        (0x0001, 8, false),
        (0x2002, 16, true),
    ] {
        let mut f = valid();
        f[IP + 6..IP + 8].copy_from_slice(&field.to_be_bytes());
        fix_ip_checksum(&mut f, IP);
        assert_eq!(
            parse_udp_frame(&f).unwrap_err(),
            WireError::Ipv4Fragment { offset, more }
        );
    }
}

#[test]
fn unknown_ethertype_is_refused() {
    for et in [0x86ddu16, 0x0806, 0x0000] {
        let mut f = valid();
        f[12..14].copy_from_slice(&et.to_be_bytes());
        assert_eq!(
            parse_udp_frame(&f).unwrap_err(),
            WireError::UnknownEtherType(et)
        );
    }
}

#[test]
fn not_udp_is_refused() {
    let mut f = valid();
    f[IP + 9] = 6;
    fix_ip_checksum(&mut f, IP);
    assert_eq!(parse_udp_frame(&f).unwrap_err(), WireError::NotUdp(6));
}

#[test]
fn bad_ip_checksum_is_refused_with_the_right_value() {
    let good = valid();
    let right = u16::from_be_bytes([good[IP + 10], good[IP + 11]]);
    let mut f = good.clone();
    f[IP + 10] ^= 0x55;
    let found = u16::from_be_bytes([f[IP + 10], f[IP + 11]]);
    assert_eq!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::Ipv4Checksum {
            found,
            expected: right
        }
    );
}

#[test]
fn bad_udp_checksum_is_refused_with_the_right_value() {
    let good = valid();
    let right = u16::from_be_bytes([good[IP + 26], good[IP + 27]]);
    let mut f = good.clone();
    *f.last_mut().unwrap() ^= 1; // corrupt the payload
    let e = parse_udp_frame(&f).unwrap_err();
    assert!(
        matches!(e, WireError::UdpChecksum { found, .. } if found == right),
        "{e}"
    );
    let mut f = good;
    f[IP + 26] ^= 0xff;
    let found = u16::from_be_bytes([f[IP + 26], f[IP + 27]]);
    assert_eq!(
        parse_udp_frame(&f).unwrap_err(),
        WireError::UdpChecksum {
            found,
            expected: right
        }
    );
}

#[test]
fn one_and_two_vlan_tags_parse() {
    let mut p = [0u8; MESSAGE_LEN];
    msg(5).encode(&mut p).unwrap();
    let one = frame_with(&spec(Some(0x123), true), &p);
    let parsed = parse_udp_frame(&one).unwrap();
    assert_eq!(parsed.eth.vlan_ids(), &[0x123]);
    assert_eq!(MarketData::decode(parsed.payload()).unwrap(), msg(5));

    // QinQ: insert an 802.1ad outer tag in front of the 802.1Q one.
    let mut two = one[..12].to_vec();
    two.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a]);
    two.extend_from_slice(&one[12..]);
    let parsed = parse_udp_frame(&two).unwrap();
    assert_eq!(parsed.eth.vlan_ids(), &[0x00a, 0x123]);
    assert_eq!(parsed.eth.header_len(), 22);
    assert_eq!(MarketData::decode(parsed.payload()).unwrap(), msg(5));

    let mut three = two[..12].to_vec();
    three.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
    three.extend_from_slice(&two[12..]);
    assert_eq!(
        parse_udp_frame(&three).unwrap_err(),
        WireError::TooManyVlanTags
    );
}

#[test]
fn ipv4_options_are_skipped() {
    let mut p = [0u8; MESSAGE_LEN];
    msg(77).encode(&mut p).unwrap();
    let plain = frame_with(&spec(None, true), &p);
    // Rebuild with 8 bytes of options (NOP × 7 + EOL): IHL 7.
    let mut f = plain[..IP + 20].to_vec();
    f.extend_from_slice(&[1, 1, 1, 1, 1, 1, 1, 0]);
    f.extend_from_slice(&plain[IP + 20..]);
    f[IP] = 0x47;
    let total = (f.len() - IP) as u16;
    f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut f, IP);
    let parsed = parse_udp_frame(&f).unwrap();
    assert_eq!(parsed.ip.header_len(), 28);
    assert_eq!(parsed.ip.options(), &[1, 1, 1, 1, 1, 1, 1, 0]);
    assert_eq!(MarketData::decode(parsed.payload()).unwrap(), msg(77));
}

#[test]
fn builder_refuses_a_small_buffer() {
    let mut buf = [0u8; 50];
    assert_eq!(
        spec(None, true).finish(&mut buf, 32).unwrap_err(),
        WireError::BufferTooSmall {
            needed: 74,
            available: 50
        }
    );
    let mut big = vec![0u8; 70_000];
    assert_eq!(
        spec(None, true).finish(&mut big, 65_508).unwrap_err(),
        WireError::PayloadTooLarge(65_508)
    );
}

#[test]
fn builder_and_parser_agree_on_every_payload_size() {
    for len in 0..200usize {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        for vlan in [None, Some(7)] {
            let f = frame_with(&spec(vlan, true), &payload);
            let parsed = parse_udp_frame(&f).unwrap_or_else(|e| panic!("len {len}: {e}"));
            assert_eq!(parsed.payload(), &payload[..]);
        }
    }
}

#[test]
fn market_data_round_trips_at_any_alignment() {
    let m = MarketData {
        seq: u32::MAX,
        symbol: 0xdead_beef,
        price: -0.0,
        volume: i64::MIN,
        timestamp_ns: u64::MAX,
    };
    let mut buf = [0u8; 40];
    for at in 0..8 {
        m.encode(&mut buf[at..]).unwrap();
        assert_eq!(MarketData::decode(&buf[at..at + 32]).unwrap(), m);
    }
    // The documented byte order: little-endian seq first.
    m.encode(&mut buf).unwrap();
    assert_eq!(&buf[..4], &[0xff; 4]);
    assert_eq!(&buf[4..8], &[0xef, 0xbe, 0xad, 0xde]);
    assert!(MarketData::decode(&buf[..31]).is_err());
    assert!(m.encode(&mut [0u8; 31]).is_err());
}
