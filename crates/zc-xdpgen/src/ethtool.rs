//! The veth counters that say what became of the frames a generator
//! transmitted: `ethtool -S` of the sending end, read through zc-nic in the
//! calling thread's network namespace.
//!
//! veth reports, on the sending device, per transmit queue, how many XDP
//! frames the peer's receive ring accepted (`tx_queue_N_xdp_xmit`) and how
//! many it refused because it was full (`tx_queue_N_xdp_xmit_errors`; those
//! frames are freed, i.e. dropped).

use zc_core::error::{Error, ErrorKind, Result};

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

impl VethStats {
    /// Finds the transmit counters of veth device `ifname`.
    pub(crate) fn open(ifname: &str) -> Result<Self> {
        let info = zc_nic::driver_info(ifname)?;
        if info.driver != "veth" {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{ifname} is a {} device: the XDP generator counts delivered frames with veth's counters only",
                    info.driver
                ),
            )
            .with_fix("send from one end of a veth pair (the zc testbed's peer end)"));
        }
        let (mut xmit, mut errors) = (Vec::new(), Vec::new());
        for (i, name) in zc_nic::stat_names(ifname, info.n_stats)?.iter().enumerate() {
            let Some(rest) = name.strip_prefix("tx_queue_") else {
                continue;
            };
            if rest.ends_with("_xdp_xmit") {
                xmit.push(i);
            } else if rest.ends_with("_xdp_xmit_errors") {
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

    /// The counters now (a stats path: allocates a buffer per call). Refused
    /// when the device's statistics changed (queues added) since `open`.
    pub(crate) fn read(&self) -> Result<XmitCounters> {
        let values = zc_nic::stats(&self.ifname, self.n_stats)?;
        Ok(XmitCounters {
            xmit: self.xmit.iter().map(|&i| values[i]).sum(),
            xmit_errors: self.errors.iter().map(|&i| values[i]).sum(),
        })
    }
}
