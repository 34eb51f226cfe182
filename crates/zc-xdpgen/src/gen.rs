//! The generator: user space writes each message into the program's ring,
//! then one `BPF_PROG_RUN` in live-frames mode builds and transmits that many
//! frames from one template.

use crate::bpf::{attach_xdp, bpf_error, ifindex, Aligned, Mapped, Object};
use crate::ethtool::{VethStats, XmitCounters};
use std::net::SocketAddrV4;
use std::os::fd::{OwnedFd, RawFd};
use zc_core::error::{Error, ErrorKind, Result};
use zc_core::feed::MAX_GEN_BATCH;
use zc_core::md::MESSAGE_LEN;
use zc_core::wire::UdpFrameSpec;
use zc_core::{DataPath, Mode, Sender, TxStats};

static GEN_OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/zc_xdpgen.bpf.o"
)));

/// Entries of the program's message ring (`ZC_RING` in `bpf/zc_xdpgen.bpf.c`):
/// the most frames one [`Sender::send_burst`] (one `BPF_PROG_RUN`) builds.
/// At this size the fixed cost of a run is a few percent of it.
pub const RING: usize = 1024;
const _: () = assert!(RING >= MAX_GEN_BATCH, "a generate() burst fits the ring");

/// Largest kernel batch (`TEST_XDP_MAX_BATCH`): frames built before each flush.
pub const MAX_KERNEL_BATCH: u32 = 256;

/// Largest payload: a frame, the kernel's headroom and `skb_shared_info`
/// share one 4 KiB page, and veth refuses frames above the MTU.
pub const MAX_PAYLOAD: usize = 1024;

/// Headers in front of the payload: Ethernet, IPv4 without options, UDP
/// (`ZC_PAYLOAD_OFF` in the C source).
const PAYLOAD_OFF: usize = 42;
/// Where the UDP checksum is (`ZC_UDP_CHECK_OFF`).
const UDP_CHECK_OFF: usize = 40;

/// `struct zc_gen_state` of the C source: the program's `.bss`.
#[repr(C)]
struct GenState {
    next: u64,
    csum_base: u32,
    stamp_now: u32,
    src_mac: [u8; 8],
    ring: [[u8; MESSAGE_LEN]; RING],
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpGenConfig {
    /// Interface the frames leave from, in the calling thread's network
    /// namespace (on the testbed: the peer end, from `Testbed::spawn_in_peer`).
    pub interface: String,
    /// Ethernet source address (the sending interface's).
    pub src_mac: [u8; 6],
    /// Ethernet destination address (the receiving interface's).
    pub dst_mac: [u8; 6],
    /// IPv4 source address and UDP port.
    pub src: SocketAddrV4,
    /// IPv4 destination address and UDP port.
    pub dst: SocketAddrV4,
    /// UDP payload bytes of every frame: the 32-byte message, then zeros
    /// (32 to [`MAX_PAYLOAD`]).
    pub payload_len: usize,
    /// Frames the kernel builds before it flushes them to the device
    /// (`batch_size`, 1 to [`MAX_KERNEL_BATCH`]; 64 is NAPI's budget).
    pub kernel_batch: u32,
    /// Overwrite each message's timestamp with `bpf_ktime_get_ns()`
    /// (CLOCK_MONOTONIC) as its frame is built, the actual send time,
    /// instead of carrying the caller's (e.g. the open-loop intended send
    /// time `zc_core::feed::generate` writes at a fixed rate).
    pub stamp_at_send: bool,
}

impl XdpGenConfig {
    /// 32-byte payloads, kernel batch 64, the caller's timestamps.
    pub fn new(
        interface: &str,
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Self {
        Self {
            interface: interface.to_owned(),
            src_mac,
            dst_mac,
            src,
            dst,
            payload_len: MESSAGE_LEN,
            kernel_batch: 64,
            stamp_at_send: false,
        }
    }
}

/// What became of the frames since the generator was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenCounters {
    /// Frames the program built and transmitted (`XDP_TX`).
    pub built: u64,
    /// Of those, accepted into the receiving end's ring (veth `xdp_xmit`).
    pub delivered: u64,
    /// Of those, refused by the receiving end's full ring and dropped (veth
    /// `xdp_xmit_errors`).
    pub ring_full: u64,
    /// `BPF_PROG_RUN` calls.
    pub runs: u64,
}

impl GenCounters {
    /// Frames neither delivered nor counted as refused: 0 unless the device
    /// dropped them before its counters (no NAPI on the receiving end) or
    /// something else transmitted XDP frames on the same device.
    pub fn unaccounted(&self) -> u64 {
        self.built.abs_diff(self.delivered + self.ring_full)
    }
}

/// The loaded generator program, its shared state and its frame template.
struct Program {
    /// The program's `.bss`.
    state: Mapped,
    /// Holds the program and its maps.
    _obj: Object,
    prog_fd: RawFd,
    template: Vec<u8>,
}

impl Program {
    fn load(cfg: &XdpGenConfig) -> Result<Self> {
        if !(MESSAGE_LEN..=MAX_PAYLOAD).contains(&cfg.payload_len) {
            return Err(Error::config(format!(
                "XDP generator payload of {} bytes must be {MESSAGE_LEN} to {MAX_PAYLOAD}",
                cfg.payload_len
            )));
        }
        let spec = UdpFrameSpec {
            src_mac: cfg.src_mac,
            dst_mac: cfg.dst_mac,
            vlan: None,
            src: cfg.src,
            dst: cfg.dst,
            ttl: 64,
            udp_checksum: true,
        };
        let mut template = vec![0u8; PAYLOAD_OFF + cfg.payload_len];
        spec.finish(&mut template, cfg.payload_len)
            .map_err(|e| Error::config(format!("XDP generator frame: {e}")))?;
        // The template's checksum covers the headers and a zero message: its
        // complement, read as the program reads packet bytes, is the sum the
        // program adds each message to.
        let check = [template[UDP_CHECK_OFF], template[UDP_CHECK_OFF + 1]];
        let csum_base = u32::from(!u16::from_ne_bytes(check));
        let mut src_mac = [0u8; 8];
        src_mac[..6].copy_from_slice(&cfg.src_mac);

        let obj = Object::load(GEN_OBJECT, "the zc XDP generator")?;
        let prog_fd = obj.program_fd(c"zc_xdpgen")?;
        let state = obj.map_bss(std::mem::size_of::<GenState>())?;
        let st = state.as_ptr().cast::<GenState>();
        // SAFETY: `state` maps the program's .bss, whose size equals
        // GenState's (checked by map_bss) and whose layout GenState mirrors;
        // nothing runs the program yet.
        unsafe {
            std::ptr::addr_of_mut!((*st).csum_base).write_volatile(csum_base);
            std::ptr::addr_of_mut!((*st).stamp_now).write_volatile(u32::from(cfg.stamp_at_send));
            std::ptr::addr_of_mut!((*st).src_mac).write_volatile(src_mac);
        }
        Ok(Self {
            state,
            _obj: obj,
            prog_fd,
            template,
        })
    }

    fn state(&self) -> *mut GenState {
        self.state.as_ptr().cast()
    }

    /// Frames built since the program was loaded.
    fn built(&self) -> u64 {
        // SAFETY: the mapping lives as long as self; the program writes
        // `next` only inside BPF_PROG_RUN, which this thread is not in (the
        // program attached to the device leaves it alone: see the C source).
        unsafe { std::ptr::addr_of!((*self.state()).next).read_volatile() }
    }

    /// Puts `msg` where frame number `k` (counted from load) takes its message.
    fn stage(&mut self, k: u64, msg: &[u8; MESSAGE_LEN]) {
        let slot = (k % RING as u64) as usize;
        // SAFETY: slot < RING; the mapping lives as long as self; the program
        // reads the ring only inside BPF_PROG_RUN, which this thread is not in.
        unsafe { std::ptr::addr_of_mut!((*self.state()).ring[slot]).write_volatile(*msg) };
    }
}

/// An XDP live-frames generator on one interface. A [`Sender`]: drive it
/// with `zc_core::feed::generate` for a paced or flat-out market-data feed,
/// with a burst of up to [`RING`] (one `BPF_PROG_RUN` each; small bursts
/// cost a fixed ~15 µs each, see `docs/generator.md`).
///
/// Not back-pressured: every frame handed to it is transmitted, and a frame
/// the receiving end has no room for is dropped there and counted
/// ([`GenCounters::ring_full`]), as on a wire.
///
/// The program is attached to the sending interface for the generator's
/// life (one generator per interface): attached, it stays in the kernel's
/// XDP dispatcher, which otherwise costs two RCU grace periods (milliseconds)
/// per `BPF_PROG_RUN`. It passes every frame the interface receives.
pub struct XdpGenerator {
    /// Detaches the program from the device when closed.
    _link: OwnedFd,
    prog: Program,
    ifindex: u32,
    payload_len: usize,
    kernel_batch: u32,
    /// Where `fill` writes each payload before its message goes to the ring.
    scratch: Vec<u8>,
    stats: VethStats,
    /// veth counters when opened.
    base: XmitCounters,
    runs: u64,
    /// Set once the first run showed that the receiving end takes frames.
    delivery_checked: bool,
    mode: Mode,
}

impl std::fmt::Debug for XdpGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpGenerator")
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl XdpGenerator {
    /// Loads the generator program for `cfg.interface`, which must be a veth
    /// end in the calling thread's network namespace, and attaches it there.
    pub fn open(cfg: &XdpGenConfig) -> Result<Self> {
        if !(1..=MAX_KERNEL_BATCH).contains(&cfg.kernel_batch) {
            return Err(Error::config(format!(
                "XDP generator kernel batch {} must be 1 to {MAX_KERNEL_BATCH}",
                cfg.kernel_batch
            )));
        }
        let ifindex = ifindex(&cfg.interface)?;
        let stats = VethStats::open(&cfg.interface)?;
        let prog = Program::load(cfg)?;
        let link = attach_xdp(prog.prog_fd, ifindex, &cfg.interface)?;
        let base = stats.read()?;
        let mut mode = Mode::new("xdpgen", DataPath::Copy, RING);
        mode.details = vec![
            format!("BPF_PROG_RUN live frames, XDP_TX on {}", cfg.interface),
            format!("{}-byte frames from one template", prog.template.len()),
            format!("kernel batch {}", cfg.kernel_batch),
            if cfg.stamp_at_send {
                "timestamps: bpf_ktime_get_ns at build".to_owned()
            } else {
                "timestamps: the caller's".to_owned()
            },
        ];
        Ok(Self {
            _link: link,
            prog,
            ifindex,
            payload_len: cfg.payload_len,
            kernel_batch: cfg.kernel_batch,
            scratch: vec![0; cfg.payload_len],
            stats,
            base,
            runs: 0,
            delivery_checked: false,
            mode,
        })
    }

    /// Transmits the `n` messages staged from frame number `built()` on.
    fn run(&mut self, n: usize) -> Result<()> {
        let target = self.prog.built() + n as u64;
        // `ingress_ifindex`: frames are built as if received on the device,
        // and XDP_TX sends them out of it.
        let ctx = xdp_sys::xdp_md {
            data: 0,
            data_end: self.prog.template.len() as u32,
            ingress_ifindex: self.ifindex,
            ..Default::default()
        };
        loop {
            let left = target - self.prog.built();
            if left == 0 {
                return Ok(());
            }
            let mut opts = xdp_sys::bpf_test_run_opts {
                sz: std::mem::size_of::<xdp_sys::bpf_test_run_opts>(),
                data_in: self.prog.template.as_ptr().cast(),
                data_size_in: self.prog.template.len() as u32,
                ctx_in: (&ctx as *const xdp_sys::xdp_md).cast(),
                ctx_size_in: std::mem::size_of::<xdp_sys::xdp_md>() as u32,
                repeat: left as i32,
                flags: xdp_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
                batch_size: self.kernel_batch,
                ..Default::default()
            };
            // SAFETY: prog_fd is the loaded generator; opts points at the
            // template and the context, both alive for the call, and asks for
            // no output (which live mode refuses).
            let rc = unsafe { xdp_sys::bpf_prog_test_run_opts(self.prog.prog_fd, &mut opts) };
            self.runs += 1;
            match -rc {
                0 => {}
                // A signal cut the run short: the frames built are counted in
                // `next`, the rest go in the next run.
                libc::EINTR => {}
                libc::EINVAL if self.runs == 1 => {
                    return Err(bpf_error("BPF_PROG_RUN in live-frames mode", rc).with_fix(
                        "live frames (BPF_F_TEST_XDP_LIVE_FRAMES) need Linux 5.18 or later",
                    ));
                }
                _ => return Err(bpf_error("BPF_PROG_RUN in live-frames mode", rc)),
            }
        }
    }

    /// Checks, after the first run, that the device counted every frame as
    /// delivered or refused: veth drops the frames it cannot queue at all
    /// (the receiving end has no NAPI) without counting them.
    fn check_delivery(&mut self) -> Result<()> {
        let c = self.counters()?;
        if c.unaccounted() > 0 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the XDP generator built {} frames and the device counted {} delivered and {} refused: the receiving veth end does not take XDP frames",
                    c.built, c.delivered, c.ring_full
                ),
            )
            .with_fix("the receiving end needs NAPI: attach an XDP program to it (AF_XDP, the XDP sink) or turn GRO on (`ethtool -K IF gro on`; zc_testbed's Testbed::enable_threaded_napi does both)"));
        }
        self.delivery_checked = true;
        Ok(())
    }

    /// What became of the frames so far (reads the device's counters).
    pub fn counters(&self) -> Result<GenCounters> {
        let now = self.stats.read()?;
        Ok(GenCounters {
            built: self.prog.built(),
            delivered: now.xmit - self.base.xmit,
            ring_full: now.xmit_errors - self.base.xmit_errors,
            runs: self.runs,
        })
    }
}

impl Sender for XdpGenerator {
    fn max_payload(&self) -> usize {
        self.payload_len
    }

    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize> {
        let n = count.min(RING);
        let first = self.prog.built();
        for i in 0..n {
            let len = fill(i, &mut self.scratch);
            if len != self.payload_len {
                return Err(Error::config(format!(
                    "slot {i}: the XDP generator sends {}-byte payloads (its template), not {len}",
                    self.payload_len
                )));
            }
            let (msg, padding) = self.scratch.split_at(MESSAGE_LEN);
            if padding.iter().any(|&b| b != 0) {
                return Err(Error::config(format!(
                    "slot {i}: the XDP generator carries the first {MESSAGE_LEN} payload bytes; the rest must be zero (the template's padding)"
                )));
            }
            let msg: &[u8; MESSAGE_LEN] = msg.try_into().expect("split at MESSAGE_LEN");
            let msg = *msg;
            self.prog.stage(first + i as u64, &msg);
        }
        if n == 0 {
            return Ok(0);
        }
        self.run(n)?;
        if !self.delivery_checked {
            self.check_delivery()?;
        }
        Ok(n)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> TxStats {
        let built = self.prog.built();
        let mut extra = vec![("prog_runs", self.runs)];
        // Without the device's counters (an ioctl failed) they are left out.
        if let Ok(c) = self.counters() {
            extra.push(("delivered", c.delivered));
            extra.push(("ring_full", c.ring_full));
        }
        TxStats {
            datagrams: built,
            bytes: built * self.payload_len as u64,
            backpressure: 0,
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use zc_core::md::MarketData;
    use zc_core::sys::{monotonic_ns, privileged_or_skip};
    use zc_core::wire::parse_udp_frame;

    fn config(payload_len: usize, stamp_at_send: bool) -> XdpGenConfig {
        XdpGenConfig {
            payload_len,
            stamp_at_send,
            ..XdpGenConfig::new(
                "unused",
                [0x02, 0, 0, 0, 0, 2],
                [0x02, 0, 0, 0, 0, 1],
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7000),
                SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 9000),
            )
        }
    }

    impl Program {
        /// Runs the program once in test mode (no device: the kernel hands
        /// the frame back) on message `msg`.
        fn build_one(&mut self, msg: &MarketData) -> (u32, Vec<u8>) {
            let mut bytes = [0u8; MESSAGE_LEN];
            msg.encode(&mut bytes).unwrap();
            self.stage(self.built(), &bytes);
            let mut out = vec![0u8; self.template.len()];
            let mut opts = xdp_sys::bpf_test_run_opts {
                sz: std::mem::size_of::<xdp_sys::bpf_test_run_opts>(),
                data_in: self.template.as_ptr().cast(),
                data_size_in: self.template.len() as u32,
                data_out: out.as_mut_ptr().cast(),
                data_size_out: out.len() as u32,
                repeat: 1,
                ..Default::default()
            };
            // SAFETY: the template and `out` live across the call; out has
            // data_size_out bytes.
            let rc = unsafe { xdp_sys::bpf_prog_test_run_opts(self.prog_fd, &mut opts) };
            assert_eq!(rc, 0, "BPF_PROG_RUN");
            out.truncate(opts.data_size_out as usize);
            (opts.retval, out)
        }
    }

    fn message(seq: u32, timestamp_ns: u64) -> MarketData {
        MarketData {
            seq,
            symbol: seq % 64,
            price: 100.0 + f64::from(seq % 1000) * 0.01,
            volume: i64::from(seq % 100) + 1,
            timestamp_ns,
        }
    }

    /// The UDP checksum an independent implementation (zc-core's frame
    /// builder) puts on `msg`.
    fn reference_checksum(cfg: &XdpGenConfig, msg: &MarketData) -> [u8; 2] {
        let spec = UdpFrameSpec {
            src_mac: cfg.src_mac,
            dst_mac: cfg.dst_mac,
            vlan: None,
            src: cfg.src,
            dst: cfg.dst,
            ttl: 64,
            udp_checksum: true,
        };
        let mut f = vec![0u8; PAYLOAD_OFF + cfg.payload_len];
        msg.encode(&mut f[PAYLOAD_OFF..]).unwrap();
        spec.finish(&mut f, cfg.payload_len).unwrap();
        [f[UDP_CHECK_OFF], f[UDP_CHECK_OFF + 1]]
    }

    #[test]
    fn every_frame_carries_its_message_and_a_correct_checksum() {
        if !privileged_or_skip("every_frame_carries_its_message_and_a_correct_checksum") {
            return;
        }
        for payload_len in [32, 33, 64, 1024] {
            let cfg = config(payload_len, false);
            let mut prog = Program::load(&cfg).unwrap();
            let mut msgs: Vec<MarketData> = (0..200u32)
                .map(|i| message(i.wrapping_mul(2_654_435_761), u64::from(i) << 40))
                .collect();
            msgs.push(message(0, 0));
            msgs.push(message(u32::MAX, u64::MAX));
            msgs.push(MarketData {
                seq: u32::MAX,
                symbol: u32::MAX,
                price: f64::from_bits(u64::MAX),
                volume: -1,
                timestamp_ns: u64::MAX,
            });
            // More than the ring holds: the program's index wraps.
            for _ in 0..(RING / msgs.len() + 2) {
                for m in &msgs {
                    let (action, frame) = prog.build_one(m);
                    assert_eq!(action, xdp_sys::xdp_action_XDP_TX);
                    assert_eq!(frame.len(), PAYLOAD_OFF + payload_len);
                    // zc-core's parser verifies the IPv4 and UDP checksums.
                    let udp = parse_udp_frame(&frame).unwrap();
                    assert_eq!(udp.payload().len(), payload_len);
                    let got = MarketData::decode(udp.payload()).unwrap();
                    assert_eq!(
                        (got.seq, got.symbol, got.volume, got.timestamp_ns),
                        (m.seq, m.symbol, m.volume, m.timestamp_ns)
                    );
                    assert_eq!(got.price.to_bits(), m.price.to_bits());
                    assert!(udp.payload()[MESSAGE_LEN..].iter().all(|&b| b == 0));
                }
            }
            assert!(prog.built() > RING as u64);
        }
    }

    #[test]
    fn a_checksum_that_computes_to_zero_is_sent_as_ffff() {
        if !privileged_or_skip("a_checksum_that_computes_to_zero_is_sent_as_ffff") {
            return;
        }
        let cfg = config(32, false);
        // zc-core writes a computed 0 as 0xffff (0 means "no checksum"); a
        // true 0xffff cannot occur (it would need an all-zero datagram).
        let m = (0..=u32::MAX)
            .map(|s| message(s, 12_345))
            .find(|m| reference_checksum(&cfg, m) == [0xff, 0xff])
            .unwrap();
        let mut prog = Program::load(&cfg).unwrap();
        let (_, frame) = prog.build_one(&m);
        assert_eq!(&frame[UDP_CHECK_OFF..UDP_CHECK_OFF + 2], &[0xff, 0xff]);
        assert!(parse_udp_frame(&frame).is_ok());
    }

    #[test]
    fn stamping_at_send_writes_the_monotonic_clock() {
        if !privileged_or_skip("stamping_at_send_writes_the_monotonic_clock") {
            return;
        }
        let mut prog = Program::load(&config(32, true)).unwrap();
        let before = monotonic_ns();
        let (_, frame) = prog.build_one(&message(7, 1));
        let after = monotonic_ns();
        let got = MarketData::decode(parse_udp_frame(&frame).unwrap().payload()).unwrap();
        assert_eq!(got.seq, 7);
        assert!(
            (before..=after).contains(&got.timestamp_ns),
            "{before} {got:?} {after}"
        );
    }

    #[test]
    fn bad_settings_are_refused_before_loading() {
        let e = Program::load(&config(31, false)).err().unwrap();
        assert!(e.to_string().contains("must be 32 to 1024"), "{e}");
        let mut cfg = config(32, false);
        cfg.kernel_batch = 0;
        let e = XdpGenerator::open(&cfg).unwrap_err();
        assert!(
            e.to_string().contains("kernel batch 0 must be 1 to 256"),
            "{e}"
        );
        cfg.kernel_batch = 64;
        let e = XdpGenerator::open(&cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}
