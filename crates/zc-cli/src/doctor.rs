//! `zc doctor`: what this machine supports, and what each backend will get.

use clap::Args;
use std::process::{Command, ExitCode};
use zc_core::Result;

/// Check this machine.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Each check prints ok or MISSING with the command that fixes it. Exit code 0
when every backend in this build has what it needs, 1 otherwise.")]
pub struct DoctorArgs {}

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
        detail: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
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
    let memlock = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    let unlimited = memlock == libc::RLIM_INFINITY;
    c.push(Check {
        name: "memlock limit",
        ok: unlimited || memlock >= 512 << 20,
        detail: if unlimited {
            "unlimited".into()
        } else {
            format!("{} KiB", memlock / 1024)
        },
        fix: "ulimit -l unlimited   (AF_XDP UMEM and DPDK memory are locked)",
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

pub fn run(_a: DoctorArgs) -> Result<ExitCode> {
    let checks = checks();
    println!("machine");
    for c in &checks {
        let status = if c.ok { "ok     " } else { "MISSING" };
        println!("  {status} {:<18} {}", c.name, c.detail);
        if !c.ok && !c.fix.is_empty() {
            println!("          {:<18} fix: {}", "", c.fix);
        }
    }
    println!("\nbackends");
    let mut all_ready = true;
    for b in zc::BACKENDS {
        let missing: Vec<&str> = needs(b.name)
            .iter()
            .copied()
            .filter(|n| checks.iter().any(|c| c.name == *n && !c.ok))
            .collect();
        let line = if !b.enabled {
            format!("not in this build (cargo feature `{}`)", b.feature)
        } else if missing.is_empty() {
            "ready".to_owned()
        } else {
            all_ready = false;
            format!("needs: {}", missing.join(", "))
        };
        println!("  {:<10} {:<60} {line}", b.name, b.summary);
    }
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
