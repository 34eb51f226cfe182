//! `zc doctor`: what this machine supports, how it is tuned, what each
//! interface asked about can do, and what each backend will get.
//!
//! The probes live in this module's files: [`tuning`] and [`vfio`] read the
//! host, [`device`] what sysfs and procfs show of an interface, [`nic`] what
//! the kernel's ethtool and netdev interfaces answer (through `zc-nic`).

mod device;
mod finding;
mod nic;
mod sysroot;
mod tuning;
mod vfio;

use crate::json::{is_stdout, JsonOut};
use clap::Args;
use finding::{print_section, Finding, Status};
use serde::Serialize;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use sysroot::SysRoot;
use zc_core::Result;

/// Check this machine and, with --interface, its NICs.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Each check prints ok, WARN (works, but costs latency or a feature), MISSING (a
backend or the interface needs it) or info, with the command that fixes it on
the line below. Sections: machine (kernel features and libraries), host tuning
(isolated and tickless CPUs, real-time limits, locked memory, irqbalance),
vfio / IOMMU (for DPDK on a PCI port), one per --interface (link, driver and
firmware, PCI binding and NUMA node, IRQ affinity, native XDP and AF_XDP
zero-copy, queues and RSS, hardware timestamps, MTU), and backends.

Exit code 0 when every backend in this build has what it needs and every
interface asked about is up; 3 otherwise; 1 when a check cannot run (e.g. an
interface does not exist); 2 on a usage error.

Examples:
  zc doctor
  zc doctor --interface ens1f0
  zc doctor --interface ens1f0 --interface ens1f1 --json - | jq '.interfaces[].checks'
  ip netns exec NS zc doctor --interface veth1   (an interface in another namespace)")]
pub struct DoctorArgs {
    /// Check this network interface too (repeat for several).
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Write one JSON document (every fact and finding) to FILE (`-` or no
    /// FILE: stdout, instead of the text).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::json::parse_target)]
    pub json: Option<PathBuf>,
}

struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn pkg_version(lib: &str) -> Option<String> {
    let out = Command::new("pkg-config")
        .args(["--modversion", lib])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn meminfo(key: &str) -> Option<u64> {
    read("/proc/meminfo")?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mounted(fstype: &str, at: &str) -> bool {
    read("/proc/mounts").is_some_and(|m| {
        m.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[1] == at && f[2] == fstype
        })
    })
}

/// io_uring_setup with one entry: Ok(features) or the errno.
fn probe_io_uring() -> std::result::Result<u32, std::io::Error> {
    // io_uring_params is 120 bytes; `features` is the u32 at offset 20.
    let mut params = [0u32; 30];
    // SAFETY: io_uring_setup(entries, params) reads and writes exactly one
    // io_uring_params (120 bytes), which `params` provides.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is the ring fd just created and owned by nothing else.
    unsafe { libc::close(fd as i32) };
    Ok(params[5])
}

fn probe_af_xdp() -> std::result::Result<(), std::io::Error> {
    // SAFETY: plain socket(2) call; the fd is closed right away.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created here.
    unsafe { libc::close(fd) };
    Ok(())
}

fn checks() -> Vec<Check> {
    let mut c = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    c.push(Check {
        name: "privileges",
        ok: root,
        detail: if root {
            "root".into()
        } else {
            "not root".into()
        },
        fix:
            "run as root (the testbed, AF_XDP and DPDK need CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)",
    });
    c.push(Check {
        name: "kernel",
        ok: true,
        detail: zc_os::kernel::release_string().unwrap_or_default(),
        fix: "",
    });
    c.push(Check {
        name: "cores",
        ok: true,
        detail: zc_core::sys::online_cpus().to_string(),
        fix: "",
    });
    let rmem = read("/proc/sys/net/core/rmem_max")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    c.push(Check {
        name: "net.core.rmem_max",
        ok: rmem >= 32 << 20,
        detail: format!("{rmem} bytes"),
        fix: "sysctl -w net.core.rmem_max=67108864   (receivers ask for 32 MiB)",
    });
    let disabled = read("/proc/sys/kernel/io_uring_disabled").unwrap_or_else(|| "0".into());
    let (ok, detail) = match probe_io_uring() {
        Ok(f) => (
            true,
            format!("available, features {f:#x}, io_uring_disabled={disabled}"),
        ),
        Err(e) => (
            false,
            format!("io_uring_setup failed: {e}, io_uring_disabled={disabled}"),
        ),
    };
    c.push(Check {
        name: "io_uring",
        ok,
        detail,
        fix: "sysctl -w kernel.io_uring_disabled=0; needs Linux 6.0+ for provided-buffer rings",
    });
    let (ok, detail) = match probe_af_xdp() {
        Ok(()) => (true, "AF_XDP sockets can be created".to_owned()),
        Err(e) => (false, format!("socket(AF_XDP) failed: {e}")),
    };
    c.push(Check {
        name: "AF_XDP",
        ok,
        detail,
        fix: "run as root (CAP_NET_RAW); needs CONFIG_XDP_SOCKETS",
    });
    let bpffs = mounted("bpf", "/sys/fs/bpf");
    c.push(Check {
        name: "bpffs",
        ok: bpffs,
        detail: if bpffs {
            "mounted on /sys/fs/bpf".into()
        } else {
            "not mounted".into()
        },
        fix: "mount -t bpf bpf /sys/fs/bpf",
    });
    let total = meminfo("HugePages_Total:").unwrap_or(0);
    let free = meminfo("HugePages_Free:").unwrap_or(0);
    let size = meminfo("Hugepagesize:").unwrap_or(0);
    c.push(Check {
        name: "hugepages",
        ok: free >= 128 && mounted("hugetlbfs", "/dev/hugepages"),
        detail: format!("{free} free of {total} × {size} KiB, hugetlbfs on /dev/hugepages: {}", mounted("hugetlbfs", "/dev/hugepages")),
        fix: "echo 256 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs nodev /dev/hugepages   (or run DPDK with --no-huge)",
    });
    let dpdk = pkg_version("libdpdk");
    c.push(Check {
        name: "DPDK",
        ok: dpdk.is_some(),
        detail: dpdk.map_or("libdpdk not found by pkg-config".into(), |v| {
            format!("libdpdk {v}")
        }),
        fix: "apt-get install libdpdk-dev dpdk-dev",
    });
    let xdp = pkg_version("libxdp");
    let bpf = pkg_version("libbpf");
    c.push(Check {
        name: "libxdp / libbpf",
        ok: xdp.is_some() && bpf.is_some(),
        detail: format!(
            "libxdp {}, libbpf {}",
            xdp.unwrap_or_else(|| "missing".into()),
            bpf.unwrap_or_else(|| "missing".into())
        ),
        fix: "apt-get install libxdp-dev libbpf-dev clang llvm",
    });
    c
}

/// Which checks each backend depends on.
fn needs(backend: &str) -> &'static [&'static str] {
    match backend {
        "recvfrom" | "recvmmsg" => &[],
        "uring" => &["io_uring"],
        // Attached through a BPF link, nothing pinned: no bpffs; the memlock
        // limit is raised in-process.
        "afxdp" => &["privileges", "AF_XDP"],
        "dpdk" => &["privileges", "DPDK", "AF_XDP", "memlock limit"],
        "dpdk-packet" => &["privileges", "DPDK", "memlock limit"],
        _ => &[],
    }
}

impl From<Check> for Finding {
    fn from(c: Check) -> Self {
        let status = if c.ok { Status::Ok } else { Status::Missing };
        if c.ok || c.fix.is_empty() {
            Finding::new(c.name, status, c.detail)
        } else {
            Finding::fix(c.name, status, c.detail, c.fix)
        }
    }
}

/// One interface: its facts and the findings drawn from them.
#[derive(Serialize)]
struct InterfaceReport {
    name: String,
    device: device::DeviceFacts,
    nic: nic::NicFacts,
    checks: Vec<Finding>,
}

/// A backend and what it lacks.
#[derive(Serialize)]
struct BackendReport {
    name: &'static str,
    summary: &'static str,
    enabled: bool,
    feature: &'static str,
    ready: bool,
    missing: Vec<&'static str>,
}

/// Everything `zc doctor` found; the `--json` document.
#[derive(Serialize)]
struct Report {
    machine: Vec<Finding>,
    host: Vec<Finding>,
    host_facts: tuning::HostFacts,
    vfio: Vec<Finding>,
    vfio_facts: vfio::VfioFacts,
    interfaces: Vec<InterfaceReport>,
    backends: Vec<BackendReport>,
    /// Every backend in this build is ready and every interface is up.
    ready: bool,
}

fn report(a: &DoctorArgs, root: &SysRoot) -> Result<Report> {
    let machine: Vec<Finding> = checks().into_iter().map(Finding::from).collect();
    let host_facts = tuning::HostFacts::read(root);
    let host = host_facts.findings();
    let vfio_facts = vfio::VfioFacts::read(root);
    let vfio = vfio_facts.findings();
    let mut interfaces = Vec::new();
    for name in &a.interfaces {
        let device = device::DeviceFacts::read(root, name)?;
        let nic = nic::NicFacts::query(name);
        let mut checks = device.findings(&host_facts);
        checks.extend(nic.findings(&device));
        interfaces.push(InterfaceReport {
            name: name.clone(),
            device,
            nic,
            checks,
        });
    }
    let missing_now = |n: &str| {
        machine
            .iter()
            .chain(&host)
            .any(|f| f.check == n && f.status == Status::Missing)
    };
    let backends: Vec<BackendReport> = zc::BACKENDS
        .iter()
        .map(|b| {
            let missing: Vec<&str> = needs(b.name)
                .iter()
                .copied()
                .filter(|n| missing_now(n))
                .collect();
            BackendReport {
                name: b.name,
                summary: b.summary,
                enabled: b.enabled,
                feature: b.feature,
                ready: b.enabled && missing.is_empty(),
                missing,
            }
        })
        .collect();
    let ready = backends.iter().all(|b| !b.enabled || b.ready)
        && interfaces
            .iter()
            .all(|i| i.checks.iter().all(|f| f.status != Status::Missing));
    Ok(Report {
        machine,
        host,
        host_facts,
        vfio,
        vfio_facts,
        interfaces,
        backends,
        ready,
    })
}

pub fn run(a: DoctorArgs) -> Result<ExitCode> {
    let r = report(&a, &SysRoot::host())?;
    if let Some(path) = &a.json {
        JsonOut::create(path)?.document(&r)?;
    }
    if !a.json.as_deref().is_some_and(is_stdout) {
        print_section("machine", &r.machine);
        println!();
        print_section("host tuning", &r.host);
        println!();
        print_section("vfio / IOMMU (DPDK on a PCI port)", &r.vfio);
        for i in &r.interfaces {
            println!();
            print_section(&format!("interface {}", i.name), &i.checks);
        }
        if r.interfaces.is_empty() {
            println!("\n(add --interface IF for the NIC checks: driver, XDP, queues, RSS, timestamps, IRQs)");
        }
        println!("\nbackends");
        for b in &r.backends {
            let line = if !b.enabled {
                format!("not in this build (cargo feature `{}`)", b.feature)
            } else if b.ready {
                "ready".to_owned()
            } else {
                format!("needs: {}", b.missing.join(", "))
            };
            println!("  {:<10} {:<60} {line}", b.name, b.summary);
        }
    }
    Ok(if r.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::VERDICT)
    })
}

#[cfg(test)]
mod tests;
