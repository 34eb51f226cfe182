//! The XDP sink: counts and drops the feed's datagrams on the receiving end.

use crate::bpf::{attach_xdp, ifindex, percpu_sum, Aligned, Object};
use std::os::fd::{OwnedFd, RawFd};
use zc_core::error::Result;

static SINK_OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/zc_xdpsink.bpf.o"
)));

/// An XDP program on one interface that counts and drops every UDP datagram
/// to one port and passes all other frames to the kernel. Detached on drop
/// (and when the process dies: it is attached through a BPF link).
#[derive(Debug)]
pub struct XdpSink {
    /// Held only: closing it detaches the program.
    _link: OwnedFd,
    _obj: Object,
    counts_fd: RawFd,
}

impl XdpSink {
    /// Attaches the sink to `interface` (in the calling thread's network
    /// namespace), in native mode, dropping datagrams to UDP port `port`.
    pub fn attach(interface: &str, port: u16) -> Result<Self> {
        let ifindex = ifindex(interface)?;
        let obj = Object::load(SINK_OBJECT, "the zc XDP sink")?;
        let prog_fd = obj.program_fd(c"zc_xdpsink")?;
        let counts_fd = obj.map_fd(c"zc_sink_counts")?;
        // .bss holds one variable, `__u16 zc_port`.
        let bss = obj.map_bss(std::mem::size_of::<u16>())?;
        // SAFETY: the mapping is 2 bytes, the program's zc_port, which the
        // program only reads and which is not attached yet.
        unsafe { bss.as_ptr().cast::<u16>().write_volatile(port) };
        let link = attach_xdp(prog_fd, ifindex, interface)?;
        Ok(Self {
            _link: link,
            _obj: obj,
            counts_fd,
        })
    }

    /// Datagrams to the port, counted and dropped so far.
    pub fn dropped(&self) -> Result<u64> {
        percpu_sum(self.counts_fd, 0)
    }

    /// Other frames, passed to the kernel so far.
    pub fn passed(&self) -> Result<u64> {
        percpu_sum(self.counts_fd, 1)
    }
}
