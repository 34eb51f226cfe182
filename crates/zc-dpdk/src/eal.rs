//! The DPDK Environment Abstraction Layer: started once per process from a
//! typed configuration, cleaned up when the last handle goes.
//!
//! DPDK's `rte_eal_init` can run once per process: a second call fails with
//! `EALREADY`, also after `rte_eal_cleanup`. [`Eal::start`] says so before
//! calling it. Arguments are checked here first, because some EAL options end
//! the process instead of failing (`--help`/`-h` call `exit`, and a worker lcore
//! that cannot be pinned calls `rte_panic`): only options this module builds,
//! from checked values, reach DPDK.
//!
//! Devices are attached after the EAL is up, one hot-plug call each
//! (`rte_eal_hotplug_add`), so a missing driver or a bad device argument is an
//! error naming that device rather than a failed EAL start.

use crate::ffi_errno;
use dpdk_sys as sys;
use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::Pid;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use zc_core::error::{Error, ErrorKind, Result};

/// Where the EAL gets its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Memory {
    /// Hugepages (reserve them first: `echo 256 > /proc/sys/vm/nr_hugepages`,
    /// or `build/setup-host.sh`). `mb`: memory to preallocate (`-m`), or on demand.
    Hugepages {
        /// Megabytes to reserve at start, or `None` to grow on demand.
        mb: Option<u32>,
    },
    /// Ordinary pages (`--no-huge -m MB`): no setup needed, enough for vdevs.
    NoHuge {
        /// Megabytes of memory for the EAL heap.
        mb: u32,
    },
}

/// Where the EAL keeps its runtime files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// `--in-memory` (`--no-shconf` with [`Memory::NoHuge`]): no files under
    /// /var/run/dpdk, no secondary processes; DPDK processes cannot collide.
    InMemory,
    /// `--file-prefix PREFIX`: shared config files, for secondary processes.
    Prefix(String),
}

/// A virtual device to attach, e.g. `net_ring0`, or `net_af_packet0` with
/// `iface=veth0,qpairs=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vdev {
    /// Device name: a driver name and an instance number (`net_null0`).
    pub name: String,
    /// Driver arguments, comma-separated `key=value` (may be empty).
    pub args: String,
}

impl Vdev {
    /// A vdev with arguments.
    pub fn new(name: &str, args: &str) -> Self {
        Self {
            name: name.to_owned(),
            args: args.to_owned(),
        }
    }
}

/// Everything the EAL is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalConfig {
    /// CPUs the EAL may use (`-l`); the first is the main lcore (the thread
    /// calling [`Eal::start`]). Each must be in this process's affinity mask.
    pub cores: Vec<usize>,
    /// Pin the thread calling [`Eal::start`] to `cores[0]`, as DPDK does by
    /// default. Off, the main lcore keeps the CPUs it may run on now
    /// (`--lcores C@(all allowed)`), and so do threads it spawns later:
    /// pinning is left to the polling loop ([`crate::market_data::LoopConfig::core`]).
    pub pin_main: bool,
    /// Virtual devices attached after start.
    pub vdevs: Vec<Vdev>,
    /// PCI devices to allow (`-a 0000:01:00.0`); empty means `--no-pci`.
    pub pci: Vec<String>,
    /// Hugepages or ordinary memory.
    pub memory: Memory,
    /// In-memory or a file prefix.
    pub files: Files,
    /// DPDK log level (`--log-level`, e.g. `notice`, `debug`, `pmd.net.ring:debug`).
    pub log_level: Option<String>,
    /// `--iova-mode=va`: I/O addresses are virtual addresses, so a zone that is
    /// contiguous in virtual memory is IOVA-contiguous too. Right for vdevs
    /// (no device DMAs into the pool); on hugepages as root DPDK otherwise
    /// picks physical addresses, where a pool of many pages is rarely
    /// contiguous and [`crate::Mempool`] cannot pack it (what `net_af_xdp`
    /// needs). A PCI device without an IOMMU needs physical addresses.
    pub iova_va: bool,
}

impl EalConfig {
    /// Main lcore `core` (not pinned), no PCI, `--no-huge -m 256`, in memory,
    /// no telemetry: runs anywhere as root with no setup.
    pub fn no_huge(core: usize) -> Self {
        Self {
            cores: vec![core],
            pin_main: false,
            vdevs: Vec::new(),
            pci: Vec::new(),
            memory: Memory::NoHuge { mb: 256 },
            files: Files::InMemory,
            log_level: None,
            iova_va: false,
        }
    }

    /// Adds a vdev.
    pub fn vdev(mut self, name: &str, args: &str) -> Self {
        self.vdevs.push(Vdev::new(name, args));
        self
    }

    fn check(&self) -> Result<()> {
        if self.cores.is_empty() {
            return Err(Error::config(
                "EAL needs at least one core (EalConfig::cores is empty)",
            ));
        }
        let allowed = sched_getaffinity(Pid::from_raw(0))
            .map_err(|e| Error::io("read this process's CPU affinity", e.into()))?;
        for (i, &c) in self.cores.iter().enumerate() {
            if c >= sys::RTE_MAX_LCORE as usize || c >= CpuSet::count() {
                return Err(Error::config(format!(
                    "EAL core {c} is beyond DPDK's RTE_MAX_LCORE ({})",
                    sys::RTE_MAX_LCORE
                )));
            }
            if !allowed.is_set(c).unwrap_or(false) {
                return Err(Error::config(format!(
                    "EAL core {c} is not in this process's CPU affinity mask"
                ))
                .with_fix(format!(
                    "pick cores this process may run on (see `taskset -p $$`; {} CPUs online)",
                    zc_core::sys::online_cpus()
                )));
            }
            if self.cores[..i].contains(&c) {
                return Err(Error::config(format!("EAL core {c} is listed twice")));
            }
        }
        for v in &self.vdevs {
            check_vdev(v)?;
        }
        for p in &self.pci {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !ok {
                return Err(Error::config(format!(
                    "PCI address {p:?} is not of the form 0000:01:00.0"
                )));
            }
        }
        match &self.memory {
            Memory::NoHuge { mb } | Memory::Hugepages { mb: Some(mb) }
                if !(64..=MAX_MB).contains(mb) =>
            {
                return Err(Error::config(format!(
                    "EAL memory of {mb} MB must be 64 to {MAX_MB} MB"
                )))
            }
            Memory::NoHuge { mb } => check_ordinary_memory(*mb)?,
            Memory::Hugepages { mb } => check_hugepages(*mb)?,
        }
        if let Files::Prefix(p) = &self.files {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(Error::config(format!(
                    "file prefix {p:?} must be letters, digits, '_' and '-'"
                )));
            }
        }
        if let Some(l) = &self.log_level {
            check_log_level(l)?;
        }
        Ok(())
    }

    /// The argument vector given to `rte_eal_init` (device options excluded:
    /// devices are hot-plugged after start).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["zc-dpdk".to_owned()];
        let cores: Vec<String> = self.cores.iter().map(usize::to_string).collect();
        if self.pin_main {
            a.push("-l".to_owned());
            a.push(cores.join(","));
        } else {
            // DPDK pins the main lcore's thread (the caller's) to its CPU; map it to
            // every CPU the process may use instead, so the caller keeps its affinity.
            let all: Vec<String> = allowed_cpus().iter().map(usize::to_string).collect();
            let mut lcores = format!("{}@({})", cores[0], all.join(","));
            for c in &cores[1..] {
                lcores.push(',');
                lcores.push_str(c);
            }
            a.push(format!("--lcores={lcores}"));
        }
        a.push("--main-lcore".to_owned());
        a.push(cores[0].clone());
        if self.pci.is_empty() {
            a.push("--no-pci".to_owned());
        }
        for p in &self.pci {
            a.push("-a".to_owned());
            a.push(p.clone());
        }
        match &self.memory {
            Memory::NoHuge { mb } => {
                a.push("--no-huge".to_owned());
                a.push("-m".to_owned());
                a.push(mb.to_string());
            }
            Memory::Hugepages { mb: Some(mb) } => {
                a.push("-m".to_owned());
                a.push(mb.to_string());
            }
            Memory::Hugepages { mb: None } => {}
        }
        match &self.files {
            // --no-huge implies legacy memory, which DPDK refuses with
            // --in-memory; --no-shconf is the part of it that applies.
            Files::InMemory if matches!(self.memory, Memory::NoHuge { .. }) => {
                a.push("--no-shconf".to_owned())
            }
            Files::InMemory => a.push("--in-memory".to_owned()),
            Files::Prefix(p) => {
                a.push("--file-prefix".to_owned());
                a.push(p.clone());
            }
        }
        if self.iova_va {
            a.push("--iova-mode=va".to_owned());
        }
        a.push("--no-telemetry".to_owned());
        if let Some(l) = &self.log_level {
            a.push(format!("--log-level={l}"));
        }
        a
    }
}

/// CPUs this process may run on (just CPU 0 when the mask cannot be read).
fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => vec![0],
    }
}

fn check_vdev(v: &Vdev) -> Result<()> {
    let name_ok = !v.name.is_empty()
        && v.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && v.name.as_bytes()[0].is_ascii_alphabetic();
    if !name_ok {
        return Err(Error::config(format!(
            "vdev name {:?} must be a driver name and an instance number, e.g. net_ring0",
            v.name
        )));
    }
    if v.args.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
        return Err(Error::config(format!(
            "vdev {} arguments {:?} must be comma-separated key=value pairs without spaces",
            v.name, v.args
        )));
    }
    Ok(())
}

/// Largest `-m` passed on: DPDK parses it with `atoi`, in megabytes.
const MAX_MB: u32 = 1 << 20;

/// DPDK only warns about a log level it cannot parse and goes on with the
/// default: check it fully here so a typo is an error, not a silent default.
fn check_log_level(l: &str) -> Result<()> {
    const LEVELS: [&str; 8] = [
        "emergency",
        "alert",
        "critical",
        "error",
        "warning",
        "notice",
        "info",
        "debug",
    ];
    let (pattern, level) = match l.rsplit_once(':') {
        Some((p, lv)) => (Some(p), lv),
        None => (None, l),
    };
    let level_ok = LEVELS.contains(&level) || matches!(level.parse::<u8>(), Ok(1..=8));
    let pattern_ok = match pattern {
        None => true,
        Some(p) => {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._*".contains(&b))
        }
    };
    if !(level_ok && pattern_ok) {
        return Err(Error::config(format!(
            "log level {l:?} must be a level ({} or 1-8), optionally after `pattern:` (e.g. `pmd.net.ring:debug`)",
            LEVELS.join(", ")
        )));
    }
    Ok(())
}

fn meminfo_kb(key: &str) -> Result<u64> {
    let meminfo =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| Error::io("read /proc/meminfo", e))?;
    Ok(meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0))
}

/// DPDK 22.11 crashes (SIGSEGV in librte_eal) when `--no-huge -m` asks for more
/// than it can map, instead of failing: refuse such a size here.
fn check_ordinary_memory(mb: u32) -> Result<()> {
    let available_mb = meminfo_kb("MemAvailable:")? / 1024;
    if u64::from(mb) > available_mb {
        return Err(Error::new(
            ErrorKind::Exhausted,
            format!("--no-huge EAL memory of {mb} MB is more than the {available_mb} MB available"),
        )
        .with_fix("ask less memory (Memory::NoHuge { mb }); 256 MB is plenty for vdevs"));
    }
    Ok(())
}

/// Megabytes of free hugepages of the default size (`/proc/meminfo`): what an
/// EAL on [`Memory::Hugepages`] can take.
pub fn free_hugepages_mb() -> Result<u64> {
    let free = meminfo_kb("HugePages_Free:")?;
    let size_kb = meminfo_kb("Hugepagesize:")?;
    Ok(free * size_kb / 1024)
}

fn check_hugepages(mb: Option<u32>) -> Result<()> {
    let free_mb = free_hugepages_mb()?;
    if free_mb == 0 {
        return Err(Error::new(ErrorKind::Exhausted, "no free hugepages for the DPDK EAL")
            .with_fix("reserve some (`echo 256 > /proc/sys/vm/nr_hugepages`, or run build/setup-host.sh as root), or use Memory::NoHuge"));
    }
    if let Some(mb) = mb.filter(|&mb| u64::from(mb) > free_mb) {
        return Err(Error::new(
            ErrorKind::Exhausted,
            format!("EAL memory of {mb} MB is more than the {free_mb} MB of free hugepages"),
        )
        .with_fix("reserve more hugepages (/proc/sys/vm/nr_hugepages) or ask less memory"));
    }
    Ok(())
}

const NEVER: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// Whether this process started the EAL (DPDK allows it once).
static STATE: AtomicU8 = AtomicU8::new(NEVER);

/// The EAL [`Eal::shared`] keeps for the life of the process, with its config.
static SHARED: Mutex<Option<(Eal, EalConfig)>> = Mutex::new(None);

pub(crate) struct EalInner {
    /// The argument strings: kept alive until cleanup since DPDK may keep
    /// pointers into argv.
    _args: Vec<CString>,
    /// Vdevs attached so far, detached before cleanup.
    vdevs: Mutex<Vec<CString>>,
}

impl Drop for EalInner {
    fn drop(&mut self) {
        let vdevs = std::mem::take(self.vdevs.get_mut().unwrap_or_else(|p| p.into_inner()));
        let bus = c"vdev";
        for name in vdevs.iter().rev() {
            // SAFETY: both strings are NUL-terminated and live for the call; every
            // port on this device was closed (ports hold the EalInner alive).
            let rc = unsafe { sys::rte_eal_hotplug_remove(bus.as_ptr(), name.as_ptr()) };
            if rc < 0 {
                tracing::warn!(vdev = ?name, rc, "rte_eal_hotplug_remove failed");
            }
        }
        // SAFETY: the last handle is gone: every port, mempool and queue holds an
        // Arc<EalInner>, so nothing uses DPDK memory any more.
        let rc = unsafe { sys::rte_eal_cleanup() };
        if rc < 0 {
            tracing::warn!(rc, "rte_eal_cleanup failed");
        }
        STATE.store(DONE, Ordering::Release);
    }
}

/// A running EAL. Clones share it; `rte_eal_cleanup` runs when the last clone,
/// port, mempool and queue are gone.
#[derive(Clone)]
pub struct Eal {
    pub(crate) inner: Arc<EalInner>,
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal").finish_non_exhaustive()
    }
}

/// The message of a DPDK error number.
pub(crate) fn rte_strerror(errno: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string, valid until the next call on this thread.
    unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

impl Eal {
    /// Checks `cfg`, starts the EAL on the calling thread (which becomes the
    /// main lcore) and attaches `cfg.vdevs`. Once per process.
    pub fn start(cfg: &EalConfig) -> Result<Eal> {
        cfg.check()?;
        if STATE
            .compare_exchange(NEVER, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(already_started());
        }
        let args: Vec<CString> = cfg
            .args()
            .into_iter()
            .map(|a| CString::new(a).map_err(|_| Error::config("EAL argument contains a NUL byte")))
            .collect::<Result<_>>()
            .inspect_err(|_| STATE.store(NEVER, Ordering::Release))?;
        let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        let argc = argv.len() as c_int;
        tracing::debug!(args = ?cfg.args(), "rte_eal_init");
        // SAFETY: argv holds argc pointers to NUL-terminated strings that outlive
        // the EAL (kept in EalInner); getopt may permute the pointer array, which
        // is ours. The options were checked above so none makes DPDK exit.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let errno = ffi_errno();
            // DPDK clears its once-flag only when the arguments were refused.
            let retry = errno == libc::EINVAL;
            STATE.store(if retry { NEVER } else { DONE }, Ordering::Release);
            return Err(init_error(errno, cfg));
        }
        let eal = Eal {
            inner: Arc::new(EalInner {
                _args: args,
                vdevs: Mutex::new(Vec::new()),
            }),
        };
        for v in &cfg.vdevs {
            // On error the Eal is dropped here, which cleans the EAL up.
            eal.add_vdev(v)?;
        }
        Ok(eal)
    }

    /// For programs that open DPDK devices from several places (the `zc`
    /// command): the first call starts the EAL with `cfg` and keeps it for the
    /// life of the process (until [`Eal::release_shared`]); later calls return
    /// the same EAL when `cfg` asks the same cores, memory and files, and an
    /// error saying what runs when it does not. `cfg.vdevs` are attached on
    /// every call.
    pub fn shared(cfg: &EalConfig) -> Result<Eal> {
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        let eal = match &*shared {
            Some((eal, running)) => {
                let same = running.cores == cfg.cores
                    && running.pin_main == cfg.pin_main
                    && running.pci == cfg.pci
                    && running.memory == cfg.memory
                    && running.files == cfg.files
                    && running.iova_va == cfg.iova_va;
                if !same {
                    return Err(Error::config(format!(
                        "the process's DPDK EAL already runs with {:?}; asked {:?}",
                        running.args(),
                        cfg.args()
                    ))
                    .with_fix("open every DPDK device of a process with the same EAL settings (the EAL starts once per process)"));
                }
                for v in &cfg.vdevs {
                    eal.add_vdev(v)?;
                }
                eal.clone()
            }
            None => {
                let eal = Eal::start(cfg)?;
                let mut kept = cfg.clone();
                kept.vdevs.clear();
                *shared = Some((eal.clone(), kept));
                eal
            }
        };
        Ok(eal)
    }

    /// Lets go of the EAL [`Eal::shared`] keeps: `rte_eal_cleanup` runs once
    /// every port, pool and queue is gone too. Call it before the process exits.
    pub fn release_shared() {
        let taken = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }

    /// Attaches a virtual device (hot-plug on the vdev bus). A missing driver
    /// or a bad argument is an error naming the device; the EAL stays up.
    pub fn add_vdev(&self, v: &Vdev) -> Result<()> {
        check_vdev(v)?;
        let name = CString::new(v.name.as_str())
            .map_err(|_| Error::config("vdev name contains a NUL byte"))?;
        let args = CString::new(v.args.as_str())
            .map_err(|_| Error::config("vdev arguments contain a NUL byte"))?;
        // SAFETY: the EAL is running (self exists); all three strings are
        // NUL-terminated and live for the call.
        let rc =
            unsafe { sys::rte_eal_hotplug_add(c"vdev".as_ptr(), name.as_ptr(), args.as_ptr()) };
        if rc < 0 {
            let errno = -rc;
            let what = if v.args.is_empty() {
                format!("attach DPDK vdev {}", v.name)
            } else {
                format!("attach DPDK vdev {} ({})", v.name, v.args)
            };
            let fix = if errno == libc::EEXIST {
                "a device of this name is attached already: number instances uniquely (net_ring0, net_ring1)".to_owned()
            } else {
                format!(
                    "check that a driver named like {:?} exists (net_ring, net_null, net_af_packet, net_af_xdp, net_tap…; `ls /usr/lib/x86_64-linux-gnu/dpdk/pmds-*/`) and that its arguments are right (for interfaces: does the interface exist? see DPDK's log above)",
                    v.name.trim_end_matches(|c: char| c.is_ascii_digit())
                )
            };
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{what}: no driver took it (rte_eal_hotplug_add: {}, rc {rc})",
                    rte_strerror(errno)
                ),
            )
            .with_fix(fix));
        }
        self.inner
            .vdevs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
        Ok(())
    }

    /// Names of the vdevs attached now.
    pub fn vdevs(&self) -> Vec<String> {
        let vdevs = self.inner.vdevs.lock().unwrap_or_else(|p| p.into_inner());
        vdevs
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect()
    }

    /// Detaches a vdev [`Eal::add_vdev`] attached. Its port must be closed.
    pub(crate) fn remove_vdev(&self, name: &str) {
        let mut vdevs = self.inner.vdevs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(i) = vdevs.iter().position(|v| v.as_bytes() == name.as_bytes()) else {
            return;
        };
        let cname = vdevs.remove(i);
        // SAFETY: both strings are NUL-terminated and live for the call; the
        // caller closed the device's port.
        let rc = unsafe { sys::rte_eal_hotplug_remove(c"vdev".as_ptr(), cname.as_ptr()) };
        if rc < 0 {
            tracing::warn!(vdev = name, rc, "rte_eal_hotplug_remove failed");
        }
    }

    /// Makes the calling thread an EAL thread (its own lcore id), so mempool
    /// per-lcore caches serve it; undone when the guard drops. A thread that
    /// is one already (the main lcore) keeps its id.
    pub fn register_thread(&self) -> Result<ThreadGuard> {
        // SAFETY: reads a thread-local; no precondition.
        if unsafe { sys::zc_lcore_id() } != u32::MAX {
            return Ok(ThreadGuard {
                registered: false,
                _eal: self.clone(),
                _not_send: std::marker::PhantomData,
            });
        }
        // SAFETY: the EAL is running and this thread is not an EAL thread.
        let rc = unsafe { sys::rte_thread_register() };
        if rc < 0 {
            let errno = ffi_errno();
            return Err(Error::new(
                ErrorKind::Exhausted,
                format!("register this thread with the EAL: {}", rte_strerror(errno)),
            )
            .with_fix("no lcore id left (RTE_MAX_LCORE): drop another registered thread first"));
        }
        Ok(ThreadGuard {
            registered: true,
            _eal: self.clone(),
            _not_send: std::marker::PhantomData,
        })
    }
}

fn already_started() -> Error {
    let when = if STATE.load(Ordering::Acquire) == DONE {
        "was started and cleaned up (or failed past argument parsing)"
    } else {
        "is already running"
    };
    Error::config(format!("the DPDK EAL {when} in this process: DPDK starts its EAL once per process"))
        .with_fix("start the EAL once and share the Eal handle (it is Clone); run each EAL configuration in its own process")
}

fn init_error(errno: c_int, cfg: &EalConfig) -> Error {
    let what = format!(
        "rte_eal_init({}) failed: {} (errno {errno})",
        cfg.args()[1..].join(" "),
        rte_strerror(errno)
    );
    match errno {
        libc::EALREADY => already_started(),
        libc::EACCES | libc::EPERM => Error::new(ErrorKind::Permission, what)
            .with_fix("run as root (DPDK needs hugepages, /dev/vfio or raw sockets)"),
        libc::ENOMEM => Error::new(ErrorKind::Exhausted, what).with_fix(
            "not enough memory: reserve hugepages (`echo 256 > /proc/sys/vm/nr_hugepages`) or use Memory::NoHuge with a smaller -m",
        ),
        libc::EINVAL => Error::config(what).with_fix("DPDK refused the arguments: see its log above"),
        _ => Error::new(ErrorKind::Io, what).with_fix("see DPDK's log above"),
    }
}

/// An EAL registration of the current thread; unregisters on drop (when it
/// registered). Not `Send`:
/// the registration belongs to the thread.
pub struct ThreadGuard {
    registered: bool,
    _eal: Eal,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: this thread registered itself in Eal::register_thread, and
            // the guard cannot have moved to another thread (it is not Send).
            unsafe { sys::rte_thread_unregister() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_built_from_the_typed_config() {
        let mut cfg = EalConfig::no_huge(0).vdev("net_ring0", "");
        cfg.pin_main = true;
        assert_eq!(
            cfg.args().join(" "),
            "zc-dpdk -l 0 --main-lcore 0 --no-pci --no-huge -m 256 --no-shconf --no-telemetry"
        );
        cfg.pin_main = false;
        let all: Vec<String> = allowed_cpus().iter().map(usize::to_string).collect();
        assert!(cfg.args().join(" ").starts_with(&format!(
            "zc-dpdk --lcores=0@({}) --main-lcore 0 ",
            all.join(",")
        )));
    }

    #[test]
    fn bad_values_are_refused_before_dpdk_sees_them() {
        let mut cfg = EalConfig::no_huge(0);
        cfg.cores = vec![];
        assert!(cfg
            .check()
            .unwrap_err()
            .to_string()
            .contains("at least one core"));
        let cfg = EalConfig::no_huge(100_000);
        assert!(cfg.check().is_err());
        let cfg = EalConfig::no_huge(0).vdev("net ring0", "");
        assert!(cfg.check().unwrap_err().to_string().contains("vdev name"));
        let cfg = EalConfig::no_huge(0).vdev("net_ring0", "a b");
        assert!(cfg
            .check()
            .unwrap_err()
            .to_string()
            .contains("without spaces"));
        let mut cfg = EalConfig::no_huge(0);
        cfg.log_level = Some("--help".to_owned());
        assert!(cfg.check().is_err());
        cfg.log_level = Some("nosuchlevel".to_owned());
        assert!(cfg.check().is_err());
        cfg.log_level = Some("pmd.net.ring:debug".to_owned());
        assert!(cfg.check().is_ok());
        cfg.log_level = Some("7".to_owned());
        assert!(cfg.check().is_ok());
        cfg.memory = Memory::NoHuge { mb: 32 };
        assert!(cfg.check().is_err());
        let mut cfg = EalConfig::no_huge(0);
        cfg.files = Files::Prefix("../x".to_owned());
        assert!(cfg.check().is_err());
    }
}
