//! The veth counters that say what became of the frames a generator
//! transmitted: `ethtool -S` of the sending end, read with the `SIOCETHTOOL`
//! ioctl in the calling thread's network namespace.
//!
//! veth reports, on the sending device, per transmit queue, how many XDP
//! frames the peer's receive ring accepted (`tx_queue_N_xdp_xmit`) and how
//! many it refused because it was full (`tx_queue_N_xdp_xmit_errors`; those
//! frames are freed, i.e. dropped).

use zc_core::error::{Error, ErrorKind, Result};

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// `struct ethtool_drvinfo`.
#[repr(C)]
#[derive(Default)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq` with `ifr_data` set.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _rest: [u8; 16],
}

/// Frames the peer accepted and refused, summed over transmit queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XmitCounters {
    /// Accepted into the peer's receive ring.
    pub xmit: u64,
    /// Refused by a full receive ring, and dropped.
    pub xmit_errors: u64,
}

/// Where in `ethtool -S` of one veth device the transmit counters are.
#[derive(Debug)]
pub(crate) struct VethStats {
    ifname: String,
    n_stats: u32,
    xmit: Vec<usize>,
    errors: Vec<usize>,
}

fn ioctl(ifname: &str, data: *mut libc::c_void) -> std::io::Result<()> {
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data,
        _rest: [0; 16],
    };
    let bytes = ifname.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
    }
    for (d, s) in req.name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: req is a valid ifreq whose data points at a buffer the caller
    // sized for the ethtool command it holds.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut req as *mut IfReq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(())
}

fn drvinfo(ifname: &str) -> Result<DrvInfo> {
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        ..Default::default()
    };
    ioctl(ifname, (&mut info as *mut DrvInfo).cast())
        .map_err(|e| Error::io(format!("ethtool: driver of {ifname}"), e))?;
    Ok(info)
}

impl VethStats {
    /// Finds the transmit counters of veth device `ifname`.
    pub(crate) fn open(ifname: &str) -> Result<Self> {
        let info = drvinfo(ifname)?;
        let driver = info.driver.split(|&b| b == 0).next().unwrap_or_default();
        if driver != b"veth" {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{ifname} is a {} device: the XDP generator counts delivered frames with veth's counters only",
                    String::from_utf8_lossy(driver)
                ),
            )
            .with_fix("send from one end of a veth pair (the zc testbed's peer end)"));
        }
        let n = info.n_stats as usize;
        // struct ethtool_gstrings: cmd, string_set, len, then len * 32 bytes.
        let mut strings = vec![0u32; 3 + n * ETH_GSTRING_LEN / 4];
        strings[0] = ETHTOOL_GSTRINGS;
        strings[1] = ETH_SS_STATS;
        strings[2] = info.n_stats;
        ioctl(ifname, strings.as_mut_ptr().cast())
            .map_err(|e| Error::io(format!("ethtool: statistics names of {ifname}"), e))?;
        let names: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
        let (mut xmit, mut errors) = (Vec::new(), Vec::new());
        for (i, name) in names.chunks(ETH_GSTRING_LEN).take(n).enumerate() {
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            let Some(rest) = name.strip_prefix(b"tx_queue_") else {
                continue;
            };
            if rest.ends_with(b"_xdp_xmit") {
                xmit.push(i);
            } else if rest.ends_with(b"_xdp_xmit_errors") {
                errors.push(i);
            }
        }
        if xmit.is_empty() || xmit.len() != errors.len() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{ifname}: this kernel's veth reports no tx_queue_N_xdp_xmit counters"),
            )
            .with_fix("veth has them since Linux 5.9"));
        }
        Ok(Self {
            ifname: ifname.to_owned(),
            n_stats: info.n_stats,
            xmit,
            errors,
        })
    }

    /// The counters now (a stats path: allocates a buffer per call).
    pub(crate) fn read(&self) -> Result<XmitCounters> {
        // The kernel writes as many values as the device has now: refuse to
        // read if that changed (queues added) rather than overrun the buffer.
        let info = drvinfo(&self.ifname)?;
        if info.n_stats != self.n_stats {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{}: the number of ethtool statistics changed from {} to {} (queues changed during the run)",
                    self.ifname, self.n_stats, info.n_stats
                ),
            ));
        }
        // struct ethtool_stats: cmd, n_stats, then n_stats u64 values.
        let mut buf = vec![0u64; 1 + self.n_stats as usize];
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
        header[4..].copy_from_slice(&self.n_stats.to_ne_bytes());
        buf[0] = u64::from_ne_bytes(header);
        ioctl(&self.ifname, buf.as_mut_ptr().cast())
            .map_err(|e| Error::io(format!("ethtool: statistics of {}", self.ifname), e))?;
        let values = &buf[1..];
        Ok(XmitCounters {
            xmit: self.xmit.iter().map(|&i| values[i]).sum(),
            xmit_errors: self.errors.iter().map(|&i| values[i]).sum(),
        })
    }
}
