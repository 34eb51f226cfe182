//! The `SIOCETHTOOL` queries: driver, channels, RSS, timestamping and the
//! device's statistics (`ethtool -S`).
//!
//! Each is one ioctl on a throw-away socket of the calling thread's network
//! namespace, with a `#[repr(C)]` copy of the kernel structure (sizes checked
//! in the tests against the C headers' `sizeof`).

use crate::flags;
use std::ffi::c_void;
use zc_core::error::{Error, ErrorKind, Result};

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;
const ETHTOOL_GRXFH: u32 = 0x29;
const ETHTOOL_GRXRINGS: u32 = 0x2d;
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_GET_TS_INFO: u32 = 0x41;
const ETHTOOL_GRSSH: u32 = 0x46;
const UDP_V4_FLOW: u32 = 0x02;

/// `struct ifreq` with the `ifr_data` member `SIOCETHTOOL` uses.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut c_void,
    _rest: [u8; 16],
}

/// Runs `SIOCETHTOOL` on `name` with `data` as `ifr_data`. `what` names the
/// query in errors.
///
/// # Safety
///
/// `data` points to a writable buffer that starts with the `u32` ethtool
/// command and is at least as large as everything the kernel reads and writes
/// for that command, given the sizes already written in the buffer.
unsafe fn ethtool_ioctl(name: &str, data: *mut c_void, what: &str) -> Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(crate::interface_not_found(name));
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data,
        _rest: [0; 16],
    };
    for (d, s) in req.name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket creation; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::last_os(format!(
            "open a socket to ask for the {what} of {name}"
        )));
    }
    // SAFETY: `req` is a valid ifreq whose name is NUL-terminated (IFNAMSIZ
    // bytes, at most IFNAMSIZ-1 of them set); the kernel reads and writes the
    // buffer `data` points to, which the caller guarantees is large enough.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut req as *mut IfReq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` was opened above and is closed exactly once.
    unsafe { libc::close(fd) };
    if rc == 0 {
        return Ok(());
    }
    Err(match err.raw_os_error() {
        Some(libc::ENODEV) => crate::interface_not_found(name),
        Some(libc::EOPNOTSUPP) => Error::new(
            ErrorKind::Unsupported,
            format!("the driver of {name} does not report its {what} (EOPNOTSUPP)"),
        ),
        _ => Error::io(format!("ask for the {what} of {name} (SIOCETHTOOL)"), err),
    })
}

/// Runs one fixed-size ethtool query into `T`.
///
/// # Safety
///
/// `T` is `#[repr(C)]`, starts with the `u32` command, and is at least as
/// large as the kernel's structure for that command.
unsafe fn query<T>(name: &str, buf: &mut T, what: &str) -> Result<()> {
    // SAFETY: forwarded from this function's contract: `buf` is a live,
    // exclusive `T` laid out as the kernel's structure, or larger.
    unsafe { ethtool_ioctl(name, (buf as *mut T).cast(), what) }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `struct ethtool_drvinfo` (196 bytes).
#[repr(C)]
struct RawDrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    /// n_priv_flags, n_stats, testinfo_len, eedump_len, regdump_len.
    counts: [u32; 5],
}

/// What `ethtool -i` shows: the driver and where the device sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverInfo {
    /// Kernel driver name (`veth`, `ice`, `mlx5_core`...).
    pub driver: String,
    /// Driver version string.
    pub version: String,
    /// Firmware version; empty when the device has none or does not say.
    pub firmware: String,
    /// Bus address (a PCI address such as `0000:3b:00.0`); empty for virtual devices.
    pub bus_info: String,
    /// Expansion ROM version; usually empty.
    pub expansion_rom: String,
    /// Statistics the device reports now (`ethtool -S`); the count can
    /// change with the device's queues.
    pub n_stats: u32,
}

/// The driver, its version and the firmware of `name` (`ETHTOOL_GDRVINFO`).
pub fn driver_info(name: &str) -> Result<DriverInfo> {
    let mut raw = RawDrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        counts: [0; 5],
    };
    // SAFETY: RawDrvInfo is the kernel's struct ethtool_drvinfo.
    unsafe { query(name, &mut raw, "driver information")? };
    Ok(DriverInfo {
        driver: c_string(&raw.driver),
        version: c_string(&raw.version),
        firmware: c_string(&raw.fw_version),
        bus_info: c_string(&raw.bus_info),
        expansion_rom: c_string(&raw.erom_version),
        n_stats: raw.counts[1],
    })
}

/// The names of the `n_stats` statistics of `name` (`ETHTOOL_GSTRINGS`,
/// the `ethtool -S` names), `n_stats` from [`driver_info`].
pub fn stat_names(name: &str, n_stats: u32) -> Result<Vec<String>> {
    let n = n_stats as usize;
    // struct ethtool_gstrings: cmd, string_set, len, then len * 32 bytes.
    let mut buf = vec![0u32; 3 + n * ETH_GSTRING_LEN / 4];
    buf[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_STATS, n_stats]);
    // SAFETY: the buffer holds the header and `len` strings of 32 bytes.
    unsafe { ethtool_ioctl(name, buf.as_mut_ptr().cast(), "statistics names")? };
    let bytes: Vec<u8> = buf[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(bytes.chunks(ETH_GSTRING_LEN).map(c_string).collect())
}

/// The values of the `n_stats` statistics of `name` (`ETHTOOL_GSTATS`), in
/// the order of [`stat_names`]. The kernel writes as many values as the
/// device has now, so a count that changed since [`driver_info`] is refused
/// rather than let the kernel write past the buffer.
pub fn stats(name: &str, n_stats: u32) -> Result<Vec<u64>> {
    let now = driver_info(name)?.n_stats;
    if now != n_stats {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{name}: the number of ethtool statistics changed from {n_stats} to {now} (its queues changed)"
            ),
        ));
    }
    // struct ethtool_stats: cmd, n_stats, then n_stats u64 values.
    let mut buf = vec![0u64; 1 + n_stats as usize];
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
    header[4..].copy_from_slice(&n_stats.to_ne_bytes());
    buf[0] = u64::from_ne_bytes(header);
    // SAFETY: the buffer holds the header and the `n_stats` values the
    // device has (checked just above).
    unsafe { ethtool_ioctl(name, buf.as_mut_ptr().cast(), "statistics")? };
    buf.remove(0);
    Ok(buf)
}

/// `struct ethtool_channels`: what `ethtool -l` shows.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    /// The `u32` command; always `ETHTOOL_GCHANNELS` in an answer.
    cmd: u32,
    /// Most receive-only channels the device can have.
    pub max_rx: u32,
    /// Most transmit-only channels.
    pub max_tx: u32,
    /// Most other (link interrupt, control) channels.
    pub max_other: u32,
    /// Most combined (receive and transmit) channels.
    pub max_combined: u32,
    /// Receive-only channels now.
    pub rx: u32,
    /// Transmit-only channels now.
    pub tx: u32,
    /// Other channels now.
    pub other: u32,
    /// Combined channels now.
    pub combined: u32,
}

impl Channels {
    /// Receive queues now: receive-only plus combined channels.
    pub fn rx_queues(&self) -> u32 {
        self.rx + self.combined
    }
}

/// The channel (queue) counts of `name` (`ETHTOOL_GCHANNELS`).
pub fn channels(name: &str) -> Result<Channels> {
    let mut ch = Channels {
        cmd: ETHTOOL_GCHANNELS,
        ..Channels::default()
    };
    // SAFETY: Channels is the kernel's struct ethtool_channels.
    unsafe { query(name, &mut ch, "channel counts")? };
    Ok(ch)
}

/// `struct ethtool_rxnfc` (192 bytes), with room to spare: only `data` is read.
#[repr(C)]
struct RawRxNfc {
    cmd: u32,
    flow_type: u32,
    data: u64,
    rest: [u64; 32],
}

fn rxnfc(name: &str, cmd: u32, flow_type: u32, what: &str) -> Result<u64> {
    let mut raw = RawRxNfc {
        cmd,
        flow_type,
        data: 0,
        rest: [0; 32],
    };
    // SAFETY: RawRxNfc is larger than the kernel's struct ethtool_rxnfc,
    // which is all it copies for GRXRINGS and GRXFH.
    unsafe { query(name, &mut raw, what)? };
    Ok(raw.data)
}

/// The receive rings RSS and flow steering can target (`ETHTOOL_GRXRINGS`).
pub fn rx_rings(name: &str) -> Result<u32> {
    rxnfc(name, ETHTOOL_GRXRINGS, 0, "receive ring count").map(|n| n as u32)
}

/// Which fields of a UDP/IPv4 packet RSS hashes (`ETHTOOL_GRXFH` for
/// `udp4`, the `RXH_*` bits; names with [`crate::udp_hash_field_names`]).
/// Without the ports, one feed (one source and group) always lands on one queue.
pub fn udp4_flow_hash(name: &str) -> Result<u64> {
    rxnfc(
        name,
        ETHTOOL_GRXFH,
        UDP_V4_FLOW,
        "UDP/IPv4 flow hash fields",
    )
}

/// The RSS indirection table and hash of a device (`ethtool -x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rss {
    /// Entries in the indirection table.
    pub indir_size: u32,
    /// Bytes of hash key.
    pub key_size: u32,
    /// Hash functions in use (`toeplitz`, `xor`, `crc32`); empty when the driver does not say.
    pub hash_functions: Vec<String>,
    /// The receive queues the indirection table sends traffic to, ascending.
    pub queues: Vec<u32>,
}

/// The RSS indirection table and hash function of `name` (`ETHTOOL_GRSSH`).
pub fn rss(name: &str) -> Result<Rss> {
    const HEADER_WORDS: usize = 6; // struct ethtool_rxfh before rss_config[]
    let mut head = [0u32; HEADER_WORDS];
    head[0] = ETHTOOL_GRSSH;
    // SAFETY: with indir_size and key_size 0 the kernel writes only the
    // 24-byte header (sizes and hash function), which `head` is.
    unsafe { query(name, &mut head, "RSS indirection table")? };
    let (indir, key) = (head[2] as usize, head[3] as usize);
    if indir > 1 << 16 || key > 1 << 10 {
        return Err(Error::new(
            ErrorKind::Io,
            format!("{name} reports an RSS table of {indir} entries and a {key}-byte key: not believable"),
        ));
    }
    let mut buf = vec![0u32; HEADER_WORDS + indir + key.div_ceil(4)];
    buf[0] = ETHTOOL_GRSSH;
    buf[2] = indir as u32;
    buf[3] = key as u32;
    // SAFETY: `buf` holds the header, `indir` u32 entries and `key` bytes,
    // the sizes written in it; the kernel writes no more than that.
    unsafe { ethtool_ioctl(name, buf.as_mut_ptr().cast(), "RSS indirection table")? };
    let hfunc = buf[4] & 0xff;
    let hash_functions = [(1, "toeplitz"), (2, "xor"), (4, "crc32")]
        .iter()
        .filter(|(bit, _)| hfunc & bit != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect();
    let mut queues: Vec<u32> = buf[HEADER_WORDS..HEADER_WORDS + indir].to_vec();
    queues.sort_unstable();
    queues.dedup();
    Ok(Rss {
        indir_size: indir as u32,
        key_size: key as u32,
        hash_functions,
        queues,
    })
}

/// `struct ethtool_ts_info` (44 bytes).
#[repr(C)]
#[derive(Default)]
struct RawTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// What `ethtool -T` shows: the timestamps a device can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsInfo {
    /// `SOF_TIMESTAMPING_*` capability bits.
    pub so_timestamping: u32,
    /// The PTP hardware clock (`/dev/ptpN`), when the device has one.
    pub phc_index: Option<u32>,
    /// `HWTSTAMP_TX_*` modes, a bit per mode.
    pub tx_types: u32,
    /// `HWTSTAMP_FILTER_*` receive filters, a bit per filter.
    pub rx_filters: u32,
}

impl TsInfo {
    /// The capabilities by name, as `ethtool -T` prints them.
    pub fn capability_names(&self) -> Vec<String> {
        flags::so_timestamping_names(self.so_timestamping)
    }

    /// The device stamps received packets in hardware (raw hardware clock).
    pub fn hardware_rx(&self) -> bool {
        const RX_HARDWARE: u32 = 1 << 2;
        const RAW_HARDWARE: u32 = 1 << 6;
        self.so_timestamping & (RX_HARDWARE | RAW_HARDWARE) == RX_HARDWARE | RAW_HARDWARE
    }

    /// The device can stamp every received packet in hardware
    /// (`HWTSTAMP_FILTER_ALL`), not only PTP messages: what a market-data
    /// feed needs.
    pub fn hardware_rx_all(&self) -> bool {
        self.hardware_rx() && self.rx_filters & (1 << 1) != 0
    }

    /// The kernel stamps received packets in software.
    pub fn software_rx(&self) -> bool {
        const RX_SOFTWARE: u32 = 1 << 3;
        self.so_timestamping & RX_SOFTWARE != 0
    }
}

/// The timestamping capabilities of `name` (`ETHTOOL_GET_TS_INFO`).
pub fn timestamping(name: &str) -> Result<TsInfo> {
    let mut raw = RawTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..RawTsInfo::default()
    };
    // SAFETY: RawTsInfo is the kernel's struct ethtool_ts_info.
    unsafe { query(name, &mut raw, "timestamping capabilities")? };
    Ok(TsInfo {
        so_timestamping: raw.so_timestamping,
        phc_index: u32::try_from(raw.phc_index).ok(),
        tx_types: raw.tx_types,
        rx_filters: raw.rx_filters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_have_the_kernel_sizes() {
        // sizeof() in <linux/ethtool.h> and <net/if.h> on 64-bit Linux.
        assert_eq!(std::mem::size_of::<RawDrvInfo>(), 196);
        assert_eq!(std::mem::size_of::<Channels>(), 36);
        assert_eq!(std::mem::size_of::<RawTsInfo>(), 44);
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert!(std::mem::size_of::<RawRxNfc>() >= 192);
    }

    #[test]
    fn an_unknown_or_invalid_interface_is_not_found() {
        for name in ["zcnosuch0", "", "a-name-longer-than-ifnamsiz", "nul\0"] {
            let e = driver_info(name).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{name:?}: {e}");
        }
        let e = channels("zcnosuch0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "interface \"zcnosuch0\" not found in this network namespace; fix: list the \
             interfaces with `ip -br link`, or run in the namespace that has it \
             (`ip netns exec NS zc doctor ...`)"
        );
    }

    #[test]
    fn loopback_answers_exactly() {
        // The loopback driver implements none of these but timestamping,
        // where the kernel's default is software stamps and no PTP clock.
        let e = driver_info("lo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            "the driver of lo does not report its driver information (EOPNOTSUPP)"
        );
        assert_eq!(channels("lo").unwrap_err().kind(), ErrorKind::Unsupported);
        assert_eq!(rx_rings("lo").unwrap_err().kind(), ErrorKind::Unsupported);
        assert_eq!(rss("lo").unwrap_err().kind(), ErrorKind::Unsupported);
        let ts = timestamping("lo").unwrap();
        assert_eq!(
            ts.capability_names(),
            [
                "software-transmit",
                "software-receive",
                "software-system-clock"
            ]
        );
        assert_eq!((ts.phc_index, ts.tx_types, ts.rx_filters), (None, 0, 0));
        assert!(ts.software_rx() && !ts.hardware_rx() && !ts.hardware_rx_all());
    }
}
