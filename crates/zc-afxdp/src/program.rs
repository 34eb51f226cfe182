//! Our XDP filter program (`bpf/zc_filter.bpf.c`, compiled by build.rs with
//! `clang -target bpf`): loaded with libbpf, attached through a BPF link.
//!
//! Why a BPF link and not libxdp's dispatcher or a netlink attach: a link is
//! owned by its file descriptor, so the program is detached when the last
//! socket using it is dropped *and* when the process dies in any way (Ctrl-C,
//! SIGKILL, a panic with `panic = "abort"`): no XDP program is ever left on an
//! interface. libxdp's multi-program dispatcher fails to load on this kernel
//! and falls back to a single netlink-attached program (`docs/design.md` §4), which
//! survives the process. Nothing is pinned, so no bpffs is needed either.

use crate::sys::{errno_error, Ifindex};
use std::ffi::{c_void, CStr};
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use zc_core::error::{Error, ErrorKind, Result};

/// The compiled filter, 8-byte aligned for libelf.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);
static FILTER_OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/zc_filter.bpf.o"
)));
/// The same filter built with `ZC_NIC_STAMP`: it also asks the driver for
/// the NIC's receive stamp (`bpf_xdp_metadata_rx_timestamp`), so it must be
/// loaded bound to its device and attached in native mode.
static NIC_STAMP_OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/zc_filter_nic.bpf.o"
)));

/// `BPF_F_XDP_DEV_BOUND_ONLY` (Linux 6.3; newer than Debian 12's headers):
/// the program is bound to one device and may call its metadata kfuncs.
const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;

/// The program's section name and map names (see the C source).
const PROG_NAME: &CStr = c"zc_filter";
const XSKS_MAP: &CStr = c"zc_xsks";
const PORTS_MAP: &CStr = c"zc_ports";
const ADDRS_MAP: &CStr = c"zc_addrs";
const COUNTERS_MAP: &CStr = c"zc_counters";
const OPTIONS_MAP: &CStr = c"zc_options";

/// `ZC_OPT_RX_STAMP`: stamp each redirected frame in its XDP metadata.
const OPT_RX_STAMP: u32 = 1;
/// Size of `struct zc_rx_meta`, the metadata in front of a stamped frame:
/// CLOCK_MONOTONIC at the hook (bytes 0..8), the NIC's stamp or 0 (8..16),
/// the magic (16..20).
pub(crate) const RX_META_LEN: usize = 24;
/// `ZC_RX_META_MAGIC` ("zcM1").
pub(crate) const RX_META_MAGIC: u32 = 0x7a63_4d31;

/// Most ports and queues the program's maps hold (`ZC_MAX_PORTS`, `ZC_MAX_QUEUES`).
pub const MAX_PORTS: usize = 256;
/// Highest queue index + 1 the XSK map holds.
pub const MAX_QUEUES: u32 = 64;
/// Most destination addresses the program matches (`ZC_MAX_ADDRS`).
pub const MAX_ADDRS: usize = 64;

/// Which XDP attach mode to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode, else generic: the fastest that works.
    Auto,
    /// Native mode only (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// Generic mode only (`XDP_FLAGS_SKB_MODE`), which every device supports.
    Generic,
}

/// The mode the program was attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    /// In the driver, before an skb exists.
    Native,
    /// After the skb is built (works everywhere, slower).
    Generic,
}

impl AttachedMode {
    /// The word used in reports.
    pub fn name(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        }
    }
}

/// The filter program attached to one interface; detached on drop.
#[derive(Debug)]
pub struct FilterProgram {
    obj: *mut xdp_sys::bpf_object,
    /// Held only: closing it detaches the program.
    _link: OwnedFd,
    xsks_fd: RawFd,
    counters_fd: RawFd,
    ifindex: Ifindex,
    mode: AttachedMode,
    /// Why native mode was not used, when generic was.
    native_refused: Option<String>,
    /// With receive stamps: whether the program asks the driver for the
    /// NIC's stamp, or why it does not.
    nic_stamps: Option<std::result::Result<(), String>>,
}

// SAFETY: the bpf_object is only used through this value (maps updated by fd,
// closed once in Drop); libbpf objects are not tied to a thread.
unsafe impl Send for FilterProgram {}
// SAFETY: after loading, only map updates by fd happen through `&self`, which
// are single bpf() system calls and safe to issue concurrently.
unsafe impl Sync for FilterProgram {}

fn bpf_error(op: &str, rc: i32) -> Error {
    let e = errno_error(op, -rc);
    match e.kind() {
        ErrorKind::Permission => e.with_fix(
            "loading and attaching an XDP program needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN on older kernels): run as root",
        ),
        _ => e,
    }
}

impl FilterProgram {
    /// Loads the filter, sets the redirected UDP ports and destination
    /// addresses (`0.0.0.0` among them: any address) and attaches it to
    /// `ifindex`. With `rx_stamps`, each redirected frame carries the
    /// CLOCK_MONOTONIC time the program ran in its XDP metadata, and, in
    /// native mode on a kernel that has the kfunc, the NIC's receive stamp
    /// when the driver gives one (the program is then bound to the device).
    pub fn attach(
        ifindex: Ifindex,
        ports: &[u16],
        addrs: &[Ipv4Addr],
        mode: XdpMode,
        rx_stamps: bool,
    ) -> Result<Self> {
        if !rx_stamps {
            return Self::attach_object(
                &FILTER_OBJECT.0,
                false,
                ifindex,
                ports,
                addrs,
                mode,
                false,
            );
        }
        if mode == XdpMode::Generic {
            let mut p =
                Self::attach_object(&FILTER_OBJECT.0, false, ifindex, ports, addrs, mode, true)?;
            p.nic_stamps = Some(Err(
                "generic mode: a device-bound program attaches in native mode only".to_owned(),
            ));
            return Ok(p);
        }
        let why = match Self::attach_object(
            &NIC_STAMP_OBJECT.0,
            true,
            ifindex,
            ports,
            addrs,
            XdpMode::Native,
            true,
        ) {
            Ok(mut p) => {
                p.nic_stamps = Some(Ok(()));
                return Ok(p);
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse || e.kind() == ErrorKind::Permission => {
                return Err(e)
            }
            Err(e) => e.to_string(),
        };
        tracing::info!(%why, "XDP: no device-bound program for the NIC's receive stamp");
        let mut p =
            Self::attach_object(&FILTER_OBJECT.0, false, ifindex, ports, addrs, mode, true)?;
        p.nic_stamps = Some(Err(why));
        Ok(p)
    }

    /// [`FilterProgram::attach`] with one of the two objects; `dev_bound`
    /// loads its program bound to `ifindex`.
    fn attach_object(
        object: &[u8],
        dev_bound: bool,
        ifindex: Ifindex,
        ports: &[u16],
        addrs: &[Ipv4Addr],
        mode: XdpMode,
        rx_stamps: bool,
    ) -> Result<Self> {
        if ports.is_empty() || ports.len() > MAX_PORTS {
            return Err(Error::config(format!(
                "AF_XDP needs 1 to {MAX_PORTS} UDP destination ports to redirect (got {})",
                ports.len()
            )));
        }
        if addrs.is_empty() || addrs.len() > MAX_ADDRS {
            return Err(Error::config(format!(
                "AF_XDP needs 1 to {MAX_ADDRS} destination addresses to redirect, 0.0.0.0 for any (got {})",
                addrs.len()
            )));
        }
        // SAFETY: the buffer is a static ELF image valid for the whole program;
        // libbpf copies what it keeps. NULL opts means defaults.
        let obj = unsafe {
            xdp_sys::bpf_object__open_mem(
                object.as_ptr().cast::<c_void>(),
                object.len(),
                std::ptr::null(),
            )
        };
        if obj.is_null() {
            return Err(Error::last_os("libbpf: open the zc XDP filter object"));
        }
        // From here the object is closed on every error path by `Loaded`'s Drop.
        let loaded = Loaded(obj);
        // SAFETY: obj is opened; the name is NUL-terminated.
        let prog = unsafe { xdp_sys::bpf_object__find_program_by_name(obj, PROG_NAME.as_ptr()) };
        if prog.is_null() {
            return Err(Error::new(
                ErrorKind::Io,
                "the zc XDP filter object has no zc_filter program (build error)",
            ));
        }
        if dev_bound {
            // SAFETY: prog belongs to the opened, not yet loaded object.
            let rc = unsafe {
                xdp_sys::bpf_program__set_ifindex(prog, ifindex.get());
                xdp_sys::bpf_program__set_flags(prog, BPF_F_XDP_DEV_BOUND_ONLY)
            };
            if rc < 0 {
                return Err(bpf_error("libbpf: bind the XDP filter to its device", rc));
            }
        }
        // SAFETY: obj is a valid, opened object.
        let rc = unsafe { xdp_sys::bpf_object__load(obj) };
        if rc < 0 {
            let what = if dev_bound {
                "libbpf: load the zc XDP filter bound to its device, with the NIC-stamp kfunc (Linux 6.3+)"
            } else {
                "libbpf: load the zc XDP filter into the kernel"
            };
            return Err(bpf_error(what, rc));
        }
        let map_fd = |name: &CStr| -> Result<RawFd> {
            // SAFETY: obj is loaded; name is NUL-terminated.
            let fd = unsafe { xdp_sys::bpf_object__find_map_fd_by_name(obj, name.as_ptr()) };
            if fd < 0 {
                return Err(bpf_error(
                    &format!("libbpf: find map {name:?} in the zc XDP filter"),
                    fd,
                ));
            }
            Ok(fd)
        };
        let xsks_fd = map_fd(XSKS_MAP)?;
        let ports_fd = map_fd(PORTS_MAP)?;
        let counters_fd = map_fd(COUNTERS_MAP)?;
        let addrs_fd = map_fd(ADDRS_MAP)?;
        if rx_stamps {
            let (key, opts) = (0u32, OPT_RX_STAMP);
            // SAFETY: key and value point to u32s, the map's key and value sizes.
            let rc = unsafe {
                xdp_sys::bpf_map_update_elem(
                    map_fd(OPTIONS_MAP)?,
                    (&key as *const u32).cast(),
                    (&opts as *const u32).cast(),
                    0,
                )
            };
            if rc < 0 {
                return Err(bpf_error("turn receive stamps on in the XDP filter", rc));
            }
        }
        for addr in addrs {
            // The program compares the header's bytes as they are: network order.
            let key = u32::from_ne_bytes(addr.octets());
            let on: u8 = 1;
            // SAFETY: key and value point to values of the map's key and value sizes.
            let rc = unsafe {
                xdp_sys::bpf_map_update_elem(
                    addrs_fd,
                    (&key as *const u32).cast(),
                    (&on as *const u8).cast(),
                    0,
                )
            };
            if rc < 0 {
                return Err(bpf_error(
                    &format!("set destination address {addr} in the XDP filter"),
                    rc,
                ));
            }
        }
        for &port in ports {
            let on: u8 = 1;
            // SAFETY: key and value point to values of the map's key and value sizes.
            let rc = unsafe {
                xdp_sys::bpf_map_update_elem(
                    ports_fd,
                    (&port as *const u16).cast(),
                    (&on as *const u8).cast(),
                    0,
                )
            };
            if rc < 0 {
                return Err(bpf_error(
                    &format!("set UDP port {port} in the XDP filter"),
                    rc,
                ));
            }
        }
        // SAFETY: prog belongs to the loaded object.
        let prog_fd = unsafe { xdp_sys::bpf_program__fd(prog) };

        let (link, mode, native_refused) = match mode {
            XdpMode::Native => (
                link_create(prog_fd, ifindex, AttachedMode::Native).map_err(|e| {
                    let hint = native_refusal_hint(&e).unwrap_or("see the kernel's error");
                    e.context(format_args!("native XDP was required ({hint})"))
                        .with_fix("use generic mode (--xdp-mode generic / XdpMode::Generic), or fix what the kernel refused")
                })?,
                AttachedMode::Native,
                None,
            ),
            XdpMode::Generic => (
                link_create(prog_fd, ifindex, AttachedMode::Generic)?,
                AttachedMode::Generic,
                None,
            ),
            XdpMode::Auto => match link_create(prog_fd, ifindex, AttachedMode::Native) {
                Ok(l) => (l, AttachedMode::Native, None),
                Err(e) if e.kind() == ErrorKind::AddrInUse || e.kind() == ErrorKind::Permission => {
                    return Err(e)
                }
                Err(native) => {
                    let l = link_create(prog_fd, ifindex, AttachedMode::Generic).map_err(
                        |generic| {
                            generic.context(format_args!(
                                "native attach failed ({native}), then generic"
                            ))
                        },
                    )?;
                    tracing::info!(%native, "XDP: native mode refused, using generic mode");
                    (l, AttachedMode::Generic, Some(native_refusal(&native)))
                }
            },
        };
        let obj = loaded.into_inner();
        Ok(Self {
            obj,
            _link: link,
            xsks_fd,
            counters_fd,
            ifindex,
            mode,
            native_refused,
            nic_stamps: None,
        })
    }

    /// With receive stamps: `Ok` when the program asks the driver for the
    /// NIC's stamp, else why not; `None` without receive stamps.
    pub fn nic_stamps(&self) -> Option<std::result::Result<(), &str>> {
        self.nic_stamps
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(String::as_str))
    }

    /// The attach mode in use.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }

    /// Why native mode was refused, when the program fell back to generic.
    pub fn native_refused(&self) -> Option<&str> {
        self.native_refused.as_deref()
    }

    /// The interface the program is attached to.
    pub fn ifindex(&self) -> Ifindex {
        self.ifindex
    }

    /// Points queue `queue`'s entry of the XSK map at socket `fd`.
    pub(crate) fn set_socket(&self, queue: u32, fd: RawFd) -> Result<()> {
        // SAFETY: key and value are u32/int as the XSKMAP expects.
        let rc = unsafe {
            xdp_sys::bpf_map_update_elem(
                self.xsks_fd,
                (&queue as *const u32).cast(),
                (&fd as *const RawFd).cast(),
                0,
            )
        };
        if rc < 0 {
            return Err(bpf_error(
                &format!("insert the AF_XDP socket of queue {queue} into the XSK map"),
                rc,
            ));
        }
        Ok(())
    }

    /// Packets (matched a feed port, passed to the kernel), summed over CPUs.
    /// (Stats path: allocates one buffer per call.)
    pub fn counters(&self) -> (u64, u64) {
        (self.counter(0), self.counter(1))
    }

    /// Matched packets that went without a receive stamp because the driver
    /// refused the metadata room (0 unless stamps are on).
    pub fn stamps_refused(&self) -> u64 {
        self.counter(2)
    }

    /// Matched packets stamped with the NIC's time (0 unless the program
    /// asks the driver, and the driver gives one).
    pub fn nic_stamped(&self) -> u64 {
        self.counter(3)
    }

    /// One of the program's per-CPU counters, summed (0 if unreadable).
    fn counter(&self, key: u32) -> u64 {
        // A per-CPU lookup writes one 8-byte value per *possible* CPU.
        let mut values = vec![0u64; possible_cpus()];
        // SAFETY: `values` holds one u64 per possible CPU, as the kernel
        // writes for a per-CPU array of u64; the key is a u32.
        let rc = unsafe {
            xdp_sys::bpf_map_lookup_elem(
                self.counters_fd,
                (&key as *const u32).cast(),
                values.as_mut_ptr().cast(),
            )
        };
        if rc == 0 {
            values.iter().sum()
        } else {
            0
        }
    }
}

impl Drop for FilterProgram {
    fn drop(&mut self) {
        // The link (a field, closed right after this) holds its own reference
        // to the program, so the object may go first; closing the link detaches.
        // SAFETY: obj was loaded in `attach` and is closed only here.
        unsafe { xdp_sys::bpf_object__close(self.obj) };
    }
}

/// Closes a bpf_object on error paths of `attach`.
struct Loaded(*mut xdp_sys::bpf_object);

impl Loaded {
    fn into_inner(self) -> *mut xdp_sys::bpf_object {
        let obj = self.0;
        std::mem::forget(self);
        obj
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: the object was opened by bpf_object__open_mem and not closed.
        unsafe { xdp_sys::bpf_object__close(self.0) };
    }
}

/// The kernel's reason for refusing native mode, in words where the errno
/// alone does not say it (the driver's own message goes to netlink's extack,
/// which a BPF link does not return).
fn native_refusal(e: &Error) -> String {
    match native_refusal_hint(e) {
        Some(hint) => format!("{e}: {hint}"),
        None => e.to_string(),
    }
}

fn native_refusal_hint(e: &Error) -> Option<&'static str> {
    Some(match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => "the driver has no native XDP",
        Some(libc::ERANGE) => {
            "the MTU is above what the driver's native XDP takes without multi-buffer (on veth: the peer's MTU)"
        }
        Some(libc::ENOTCONN) => "the device is not connected (on veth: the peer is gone)",
        Some(libc::EINVAL) => "the driver refused the program or its flags",
        _ => return None,
    })
}

fn link_create(prog_fd: RawFd, ifindex: Ifindex, mode: AttachedMode) -> Result<OwnedFd> {
    let flags = match mode {
        AttachedMode::Native => xdp_sys::XDP_FLAGS_DRV_MODE,
        AttachedMode::Generic => xdp_sys::XDP_FLAGS_SKB_MODE,
    };
    // libbpf refuses options whose bytes after `flags` are not all zero, padding
    // included (OPTS_ZEROED), and a struct literal leaves padding undefined:
    // start from all-zero bytes and set the two fields in place.
    let mut opts = std::mem::MaybeUninit::<xdp_sys::bpf_link_create_opts>::zeroed();
    let p = opts.as_mut_ptr();
    // It is never moved (a typed copy need not keep padding): passed by pointer.
    // SAFETY: p points to a zeroed, properly aligned bpf_link_create_opts;
    // writing fields through addr_of_mut! leaves every other byte zero.
    unsafe {
        std::ptr::addr_of_mut!((*p).sz).write(std::mem::size_of::<xdp_sys::bpf_link_create_opts>());
        std::ptr::addr_of_mut!((*p).flags).write(flags);
    }
    // SAFETY: prog_fd is a loaded XDP program; opts is an initialised (all
    // fields zero but the two set above), sized options struct.
    let fd = unsafe {
        xdp_sys::bpf_link_create(
            prog_fd,
            ifindex.get() as i32,
            xdp_sys::bpf_attach_type_BPF_XDP,
            opts.as_ptr(),
        )
    };
    if fd < 0 {
        let e = bpf_error(
            &format!(
                "attach the XDP filter to ifindex {} in {} mode",
                ifindex.get(),
                mode.name()
            ),
            fd,
        );
        if -fd == libc::EBUSY || -fd == libc::EEXIST {
            return Err(Error::new(ErrorKind::AddrInUse, format!(
                "another XDP program is already attached to ifindex {} ({} mode refused with {})",
                ifindex.get(),
                mode.name(),
                std::io::Error::from_raw_os_error(-fd)
            ))
            .with_fix(format!(
                "see `ip link show` (the `xdp` line); detach it with `ip link set dev <ifname> xdp off` if it is stale, \
                 or stop the process that owns it (`bpftool net show`); ifindex {}",
                ifindex.get()
            )));
        }
        return Err(e);
    }
    // SAFETY: a new fd returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Possible CPUs, as libbpf counts them (per-CPU maps are sized by this).
fn possible_cpus() -> usize {
    // SAFETY: no arguments; reads /sys/devices/system/cpu/possible once and caches it.
    let n = unsafe { xdp_sys::libbpf_num_possible_cpus() };
    // On failure (a negative errno) fall back to a bound no machine exceeds.
    usize::try_from(n).unwrap_or(8192).max(1)
}
