//! Shared inputs of the zc benchmarks (the benchmarks themselves are in
//! `benches/` and `examples/`; see docs/BENCHMARKS.md).

use std::net::SocketAddrV4;
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::wire::UdpFrameSpec;

/// Ethernet/IPv4/UDP frames (UDP checksum on, 74 bytes) carrying market-data
/// messages with sequence numbers `seqs`, symbols cycling over 64, to port 9000.
pub fn market_data_frames(seqs: impl Iterator<Item = u32>) -> Vec<Vec<u8>> {
    let spec = UdpFrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        vlan: None,
        src: SocketAddrV4::new([198, 18, 0, 1].into(), 40000),
        dst: SocketAddrV4::new([198, 18, 0, 2].into(), 9000),
        ttl: 64,
        udp_checksum: true,
    };
    seqs.map(|seq| {
        let mut buf = vec![0u8; 128];
        let m = MarketData {
            seq,
            symbol: seq % 64,
            price: 100.0 + f64::from(seq % 1000) * 0.01,
            volume: 10,
            timestamp_ns: 1_000,
        };
        // 128 bytes hold the 42 header bytes and the 32-byte message.
        let _ = m.encode(spec.payload_mut(&mut buf));
        let len = spec.finish(&mut buf, MESSAGE_LEN).unwrap_or(0);
        buf.truncate(len);
        buf
    })
    .collect()
}
