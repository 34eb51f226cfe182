//! The testbed every zc backend is tested and measured on: a veth pair with one
//! end (`host_if`) in the current network namespace, where the receiver under
//! test runs, and the other end (`peer_if`) in a namespace created for the run,
//! where the traffic generator runs.
//!
//! Addresses come from 198.18.0.0/15 (the benchmarking range): `198.18.N.1` on
//! the host end and `198.18.N.2` on the peer end, for a subnet number `N` the
//! caller picks so that parallel testbeds do not collide. Neighbour entries are
//! static (no ARP during a measurement), and transmit checksum offload is off
//! on both ends so that raw backends (AF_XDP, DPDK) see complete UDP checksums.
//!
//! Everything is removed when the [`Testbed`] is dropped, also while unwinding
//! from a panic. A testbed writes a marker file, `/run/zc-testbed/<name>`,
//! before it creates anything and removes it last: a namespace or interface
//! of the same name is removed at set-up only when that marker proves a
//! killed testbed left it. Anything else of that name is someone else's and
//! is left alone (set-up then fails, naming it).
#![forbid(unsafe_code)]

use nix::sched::{sched_setaffinity, setns, CloneFlags, CpuSet};
use nix::unistd::Pid;
use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;
use zc_core::error::{Error, ErrorKind, Result};

/// Testbed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestbedConfig {
    /// Short unique name (≤ 10 characters, `[a-z0-9]`): the namespace is
    /// `<name>-ns`, the interfaces `<name>h` (host) and `<name>p` (peer).
    pub name: String,
    /// Third octet of the 198.18.N.0/24 subnet.
    pub subnet: u8,
    /// RX and TX queues of each veth end.
    pub queues: u32,
}

impl TestbedConfig {
    /// One queue, subnet `subnet`.
    pub fn new(name: &str, subnet: u8) -> Self {
        Self {
            name: name.to_owned(),
            subnet,
            queues: 1,
        }
    }
}

/// A live veth pair and namespace; removed on drop.
#[derive(Debug)]
pub struct Testbed {
    /// The namespace holding the peer end.
    pub netns: String,
    /// Interface in this namespace (where receivers attach).
    pub host_if: String,
    /// Interface in `netns` (where the generator sends from).
    pub peer_if: String,
    /// Address of `host_if`.
    pub host_addr: Ipv4Addr,
    /// Address of `peer_if`.
    pub peer_addr: Ipv4Addr,
    /// MAC address of `host_if`.
    pub host_mac: [u8; 6],
    /// MAC address of `peer_if`.
    pub peer_mac: [u8; 6],
    /// Queues on each end.
    pub queues: u32,
}

fn run(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| {
            Error::io(format!("run `{}`", args[0]), e).with_fix(format!(
                "install it: `apt-get install {}` (or run ./build/install-deps.sh)",
                match args[0] {
                    "ethtool" => "ethtool",
                    "chrt" => "util-linux",
                    _ => "iproute2",
                }
            ))
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let cmd = args.join(" ");
    if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        return Err(Error::new(
            ErrorKind::Permission,
            format!("`{cmd}` failed: {stderr}"),
        )
        .with_fix("the testbed creates a network namespace and a veth pair: run as root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"));
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("`{cmd}` failed: {stderr}"),
    ))
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    Some(mac)
}

fn mac_of(netns: Option<&str>, ifname: &str) -> Result<[u8; 6]> {
    let path = format!("/sys/class/net/{ifname}/address");
    let text = match netns {
        None => std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read {path}"), e))?,
        Some(ns) => run(&["ip", "netns", "exec", ns, "cat", &path])?,
    };
    parse_mac(&text).ok_or_else(|| {
        Error::new(
            ErrorKind::Io,
            format!("unreadable MAC address {text:?} in {path}"),
        )
    })
}

fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Testbed {
    /// Creates the namespace, the veth pair, addresses and neighbour entries.
    pub fn create(cfg: &TestbedConfig) -> Result<Self> {
        let valid = !cfg.name.is_empty()
            && cfg.name.len() <= 10
            && cfg
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(Error::config(format!(
                "testbed name {:?} must be 1 to 10 characters of a-z and 0-9",
                cfg.name
            )));
        }
        if cfg.queues == 0 || cfg.queues > 64 {
            return Err(Error::config(format!(
                "testbed queues {} must be 1 to 64",
                cfg.queues
            )));
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(Error::new(ErrorKind::Permission, "cannot create the veth testbed without privileges")
                .with_fix("the testbed creates a network namespace and a veth pair: run as root (sudo), or with CAP_SYS_ADMIN and CAP_NET_ADMIN"));
        }
        let netns = format!("{}-ns", cfg.name);
        let host_if = format!("{}h", cfg.name);
        let peer_if = format!("{}p", cfg.name);
        let marker = std::path::PathBuf::from(MARKER_DIR).join(&cfg.name);
        if marker.exists() {
            remove_stale(&netns, &host_if);
        } else if let Some(what) = [
            (interface_exists(&host_if), &host_if),
            (interface_exists(&peer_if), &peer_if),
            (netns_exists(&netns), &netns),
        ]
        .into_iter()
        .find_map(|(exists, n)| exists.then_some(n))
        {
            return Err(Error::config(format!(
                "testbed {:?}: {what} exists and no testbed marker ({}) says a testbed made it",
                cfg.name,
                marker.display()
            ))
            .with_fix("it is not ours to remove: pick another testbed name, or remove it yourself if you know it is stale"));
        }
        std::fs::create_dir_all(MARKER_DIR)
            .and_then(|()| std::fs::write(&marker, format!("{}\n", std::process::id())))
            .map_err(|e| Error::io(format!("write the testbed marker {}", marker.display()), e))?;

        run(&["ip", "netns", "add", &netns])?;
        // From here on, Drop cleans up whatever was created.
        let mut tb = Testbed {
            netns,
            host_if,
            peer_if,
            host_addr: Ipv4Addr::new(198, 18, cfg.subnet, 1),
            peer_addr: Ipv4Addr::new(198, 18, cfg.subnet, 2),
            host_mac: [0; 6],
            peer_mac: [0; 6],
            queues: cfg.queues,
        };
        tb.configure()?;
        tracing::info!(netns = %tb.netns, host_if = %tb.host_if, "testbed up");
        Ok(tb)
    }

    fn configure(&mut self) -> Result<()> {
        let q = self.queues.to_string();
        let (ns, host, peer) = (
            self.netns.as_str(),
            self.host_if.as_str(),
            self.peer_if.as_str(),
        );
        run(&[
            "ip",
            "link",
            "add",
            "name",
            host,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "netns",
            ns,
        ])?;
        let host_cidr = format!("{}/24", self.host_addr);
        let peer_cidr = format!("{}/24", self.peer_addr);
        // No IPv6 on the pair: its link-local address would bring duplicate
        // address detection, router solicitations and MLD reports, stray
        // frames that a raw receiver sees and a full ring drops beside the
        // test's own (the sweep once counted one device drop more than the
        // messages it lost). Absent when the kernel has no IPv6: nothing to do.
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            let host_key = format!("net.ipv6.conf.{host}.disable_ipv6=1");
            let peer_key = format!("net.ipv6.conf.{peer}.disable_ipv6=1");
            run(&["sysctl", "-qw", &host_key])?;
            run(&["ip", "netns", "exec", ns, "sysctl", "-qw", &peer_key])?;
        }
        run(&["ip", "addr", "add", &host_cidr, "dev", host])?;
        run(&["ip", "-n", ns, "addr", "add", &peer_cidr, "dev", peer])?;
        run(&["ip", "link", "set", host, "up"])?;
        run(&["ip", "-n", ns, "link", "set", peer, "up"])?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        // Full checksums in every frame: raw receivers verify them.
        run(&["ethtool", "-K", host, "tx", "off"])?;
        run(&[
            "ip", "netns", "exec", ns, "ethtool", "-K", peer, "tx", "off",
        ])?;
        self.host_mac = mac_of(None, host)?;
        self.peer_mac = mac_of(Some(ns), peer)?;
        let (hm, pm) = (mac_string(&self.host_mac), mac_string(&self.peer_mac));
        let (ha, pa) = (self.host_addr.to_string(), self.peer_addr.to_string());
        run(&[
            "ip",
            "neigh",
            "replace",
            &pa,
            "lladdr",
            &pm,
            "dev",
            host,
            "nud",
            "permanent",
        ])?;
        run(&[
            "ip",
            "-n",
            ns,
            "neigh",
            "replace",
            &ha,
            "lladdr",
            &hm,
            "dev",
            peer,
            "nud",
            "permanent",
        ])?;
        // Multicast feeds: route the benchmarking multicast range via the veth.
        run(&["ip", "-n", ns, "route", "add", "239.0.0.0/8", "dev", peer])?;
        Ok(())
    }

    /// Runs `f` on a new thread inside the peer namespace: sockets it opens
    /// live there (the generator side).
    pub fn spawn_in_peer<T, F>(&self, f: F) -> Result<std::thread::JoinHandle<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let path = format!("/run/netns/{}", self.netns);
        let ns = File::open(&path).map_err(|e| Error::io(format!("open {path}"), e))?;
        std::thread::Builder::new()
            .name(format!("{}-peer", self.netns))
            .spawn(move || {
                setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::io(format!("enter network namespace {path}"), e.into()))?;
                f()
            })
            .map_err(|e| Error::io("spawn the peer thread", e))
    }

    /// Runs a command inside the peer namespace and returns its stdout.
    pub fn exec_in_peer(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "netns", "exec", self.netns.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }
}

/// Linux keeps 15 bytes of a thread's name (`TASK_COMM_LEN` - 1).
const COMM_LEN: usize = 15;

impl Testbed {
    /// Moves the host end's receive work into kernel threads that can be
    /// seen and pinned, and returns their thread ids.
    ///
    /// Turns GRO on, which gives a veth end NAPI even without an XDP program
    /// (frames an XDP generator transmits are dropped uncounted by an end
    /// without NAPI), then threaded NAPI (`/sys/class/net/IF/threaded`): the
    /// poll that delivers what the peer sends then runs in
    /// `napi/<host_if>-<id>` threads instead of the sender's softirq.
    pub fn enable_threaded_napi(&self) -> Result<Vec<i32>> {
        run(&["ethtool", "-K", &self.host_if, "gro", "on"])?;
        let path = format!("/sys/class/net/{}/threaded", self.host_if);
        std::fs::write(&path, "1").map_err(|e| {
            Error::io(format!("write 1 to {path}"), e)
                .with_fix("threaded NAPI needs Linux 5.12 or later and root")
        })?;
        self.napi_threads()
    }

    /// Thread ids of the host end's NAPI threads (one per receive queue),
    /// found by name in /proc.
    pub fn napi_threads(&self) -> Result<Vec<i32>> {
        let full = format!("napi/{}-", self.host_if);
        let prefix = &full[..full.len().min(COMM_LEN)];
        let mut tids = Vec::new();
        let dir = std::fs::read_dir("/proc").map_err(|e| Error::io("list /proc", e))?;
        for entry in dir.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            // A process may exit between the listing and the read.
            let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
                continue;
            };
            if comm.trim_end().starts_with(prefix) {
                tids.push(tid);
            }
        }
        if tids.len() != self.queues as usize {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "found {} kernel threads named {prefix}* where {} (one per queue of {}) were expected",
                    tids.len(),
                    self.queues,
                    self.host_if
                ),
            )
            .with_fix(if tids.is_empty() {
                format!("enable threaded NAPI first (Testbed::enable_threaded_napi, or GRO on and `echo 1 > /sys/class/net/{}/threaded`)", self.host_if)
            } else {
                "thread names are cut to 15 characters: another testbed of the same name (in another network namespace) shares the prefix; give this one another name".to_owned()
            }));
        }
        tids.sort_unstable();
        Ok(tids)
    }

    /// Pins the host end's NAPI threads to `cpu`; returns their thread ids.
    pub fn pin_napi_threads(&self, cpu: usize) -> Result<Vec<i32>> {
        let tids = self.napi_threads()?;
        let mut set = CpuSet::new();
        set.set(cpu)
            .map_err(|_| Error::config(format!("CPU {cpu} is beyond what a cpu_set_t can name")))?;
        for &tid in &tids {
            sched_setaffinity(Pid::from_raw(tid), &set).map_err(|e| {
                Error::io(
                    format!("pin NAPI thread {tid} of {} to CPU {cpu}", self.host_if),
                    e.into(),
                )
            })?;
        }
        Ok(tids)
    }

    /// Runs the host end's NAPI threads under SCHED_FIFO at `priority`
    /// (1–99), as softirq work effectively runs: ahead of every ordinary
    /// thread, so that a busy CPU does not starve the receive path into
    /// dropping. Returns their thread ids.
    pub fn set_napi_fifo_priority(&self, priority: u8) -> Result<Vec<i32>> {
        if !(1..=99).contains(&priority) {
            return Err(Error::config(format!(
                "SCHED_FIFO priority {priority} must be 1 to 99"
            )));
        }
        let tids = self.napi_threads()?;
        let prio = priority.to_string();
        for &tid in &tids {
            run(&["chrt", "--fifo", "--pid", &prio, &tid.to_string()])?;
        }
        Ok(tids)
    }
}

/// Where a testbed records, before creating anything, that it owns its names.
const MARKER_DIR: &str = "/run/zc-testbed";

/// Removes what a killed testbed of these names left; called only when its
/// marker file proves a testbed created them.
fn remove_stale(netns: &str, host_if: &str) {
    if std::path::Path::new(&format!("/sys/class/net/{host_if}")).exists() {
        tracing::warn!(host_if, "removing a stale testbed interface");
        let _ = run(&["ip", "link", "del", host_if]);
    }
    if std::path::Path::new(&format!("/run/netns/{netns}")).exists() {
        tracing::warn!(netns, "removing a stale testbed namespace");
        let _ = run(&["ip", "netns", "del", netns]);
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Deleting one veth end deletes its peer; deleting the namespace
        // deletes the peer end too. Do both so a half-built testbed goes.
        if let Err(e) = run(&["ip", "link", "del", &self.host_if]) {
            if std::path::Path::new(&format!("/sys/class/net/{}", self.host_if)).exists() {
                tracing::warn!("testbed: could not remove {}: {e}", self.host_if);
            }
        }
        if let Err(e) = run(&["ip", "netns", "del", &self.netns]) {
            tracing::warn!("testbed: could not remove namespace {}: {e}", self.netns);
        }
        // The marker goes last, and only once nothing of ours is left: while
        // anything remains, it is what lets the next run remove it.
        if !interface_exists(&self.host_if) && !netns_exists(&self.netns) {
            let name = self.netns.trim_end_matches("-ns");
            let _ = std::fs::remove_file(std::path::Path::new(MARKER_DIR).join(name));
        }
    }
}

/// True when an interface of this name exists in the current namespace.
pub fn interface_exists(ifname: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{ifname}")).exists()
}

/// True when a named network namespace of this name exists.
pub fn netns_exists(netns: &str) -> bool {
    std::path::Path::new(&format!("/run/netns/{netns}")).exists()
}
