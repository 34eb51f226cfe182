//! Host tuning for low latency: isolated CPUs, tickless CPUs, real-time
//! scheduling limits, locked memory and IRQ balancing, read from procfs and
//! sysfs under a [`SysRoot`].

use super::finding::{Finding, Status};
use super::sysroot::{format_cpulist, parse_cpulist, SysRoot};
use serde::Serialize;

/// Receivers lock their UMEM, mempools and rings; below this the AF_XDP and
/// DPDK backends fail to register their memory.
pub const MEMLOCK_NEEDED: u64 = 512 << 20;

const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_NICE: u32 = 23;

/// A resource limit from `/proc/self/limits`; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The limit in force.
    pub soft: Option<u64>,
    /// The most the process may raise it to.
    pub hard: Option<u64>,
}

/// What the host's tuning is, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    /// CPUs online.
    pub online_cpus: Vec<usize>,
    /// CPUs taken from the scheduler (`isolcpus=`).
    pub isolated_cpus: Vec<usize>,
    /// CPUs without the scheduler tick when one task runs (`nohz_full=`).
    pub nohz_full_cpus: Vec<usize>,
    /// RLIMIT_MEMLOCK in bytes.
    pub memlock: Option<Limit>,
    /// RLIMIT_RTPRIO.
    pub rtprio: Option<Limit>,
    /// The process may lock memory beyond the limit (CAP_IPC_LOCK).
    pub cap_ipc_lock: bool,
    /// The process may use real-time priorities beyond the limit (CAP_SYS_NICE).
    pub cap_sys_nice: bool,
    /// `kernel.sched_rt_runtime_us` (-1: real-time tasks are never throttled).
    pub sched_rt_runtime_us: Option<i64>,
    /// `kernel.sched_rt_period_us`.
    pub sched_rt_period_us: Option<i64>,
    /// An `irqbalance` process is running.
    pub irqbalance_running: bool,
}

fn limit(limits: &str, name: &str) -> Option<Limit> {
    let rest = limits.lines().find_map(|l| l.strip_prefix(name))?;
    let mut f = rest.split_whitespace();
    let value = |s: Option<&str>| -> Option<Option<u64>> {
        match s? {
            "unlimited" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    Some(Limit {
        soft: value(f.next())?,
        hard: value(f.next())?,
    })
}

fn effective_caps(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

impl HostFacts {
    /// Reads the host's tuning under `root`, for the process reading it
    /// (`/proc/self`).
    pub fn read(root: &SysRoot) -> Self {
        let cpus = |rel: &str| {
            root.read(rel)
                .and_then(|t| parse_cpulist(&t))
                .unwrap_or_default()
        };
        let limits = root.read("proc/self/limits").unwrap_or_default();
        let caps = effective_caps(&root.read("proc/self/status").unwrap_or_default());
        let irqbalance_running = root.list("proc").iter().any(|pid| {
            pid.bytes().all(|b| b.is_ascii_digit())
                && root.read(&format!("proc/{pid}/comm")).as_deref() == Some("irqbalance")
        });
        Self {
            online_cpus: cpus("sys/devices/system/cpu/online"),
            isolated_cpus: cpus("sys/devices/system/cpu/isolated"),
            nohz_full_cpus: cpus("sys/devices/system/cpu/nohz_full"),
            memlock: limit(&limits, "Max locked memory"),
            rtprio: limit(&limits, "Max realtime priority"),
            cap_ipc_lock: caps & (1 << CAP_IPC_LOCK) != 0,
            cap_sys_nice: caps & (1 << CAP_SYS_NICE) != 0,
            sched_rt_runtime_us: root.read_num("proc/sys/kernel/sched_rt_runtime_us"),
            sched_rt_period_us: root.read_num("proc/sys/kernel/sched_rt_period_us"),
            irqbalance_running,
        }
    }

    /// One finding per tuning item, each warning with its fix.
    pub fn findings(&self) -> Vec<Finding> {
        vec![
            self.isolated(),
            self.nohz_full(),
            self.realtime(),
            self.throttling(),
            self.memlock(),
            self.irqbalance(),
        ]
    }

    fn isolated(&self) -> Finding {
        if self.isolated_cpus.is_empty() {
            return Finding::fix(
                "isolated CPUs",
                Status::Warn,
                "none: the scheduler may run any task on the receive threads' CPUs",
                "boot with isolcpus=managed_irq,domain,CPUS (say 2-3: not CPU 0, on the NIC's NUMA node) and pin the receive threads there (`zc recv --pin CPU`)",
            );
        }
        Finding::new(
            "isolated CPUs",
            Status::Ok,
            format_cpulist(&self.isolated_cpus),
        )
    }

    fn nohz_full(&self) -> Finding {
        let name = "nohz_full";
        if self.nohz_full_cpus.is_empty() {
            let cpus = if self.isolated_cpus.is_empty() {
                "CPUS".to_owned()
            } else {
                format_cpulist(&self.isolated_cpus)
            };
            return Finding::fix(
                name,
                Status::Warn,
                "none: the scheduler tick interrupts every CPU, busy-polling ones too",
                format!("boot with nohz_full={cpus} rcu_nocbs={cpus} (the isolated CPUs)"),
            );
        }
        let uncovered: Vec<usize> = self
            .isolated_cpus
            .iter()
            .copied()
            .filter(|c| !self.nohz_full_cpus.contains(c))
            .collect();
        if !uncovered.is_empty() {
            return Finding::fix(
                name,
                Status::Warn,
                format!(
                    "{}; isolated CPUs {} still take the tick",
                    format_cpulist(&self.nohz_full_cpus),
                    format_cpulist(&uncovered)
                ),
                format!(
                    "boot with nohz_full={} (every isolated CPU)",
                    format_cpulist(&self.isolated_cpus)
                ),
            );
        }
        Finding::new(name, Status::Ok, format_cpulist(&self.nohz_full_cpus))
    }

    fn realtime(&self) -> Finding {
        let name = "real-time priority";
        let lim = match self.rtprio {
            Some(Limit { soft, hard }) => {
                format!("RLIMIT_RTPRIO soft {}, hard {}", show(soft), show(hard))
            }
            None => "RLIMIT_RTPRIO unreadable".to_owned(),
        };
        if self.cap_sys_nice {
            return Finding::new(
                name,
                Status::Ok,
                format!("CAP_SYS_NICE: SCHED_FIFO allowed at any priority ({lim})"),
            );
        }
        match self.rtprio {
            Some(Limit { hard: None, .. }) => Finding::new(name, Status::Ok, lim),
            Some(Limit { hard: Some(h), .. }) if h > 0 => Finding::new(name, Status::Ok, lim),
            _ => Finding::fix(
                name,
                Status::Warn,
                format!("{lim}: this user cannot run a thread at a real-time priority"),
                "allow it in /etc/security/limits.conf (`USER - rtprio 99`), or give the binary CAP_SYS_NICE (`setcap cap_sys_nice+ep zc`)",
            ),
        }
    }

    fn throttling(&self) -> Finding {
        let name = "RT throttling";
        match (self.sched_rt_runtime_us, self.sched_rt_period_us) {
            (Some(-1), _) => Finding::new(name, Status::Ok, "off (kernel.sched_rt_runtime_us = -1)"),
            (Some(run), Some(period)) => Finding::fix(
                name,
                Status::Warn,
                format!(
                    "a real-time thread is stopped for {} µs of every {period} µs (kernel.sched_rt_runtime_us = {run})",
                    period - run
                ),
                "sysctl -w kernel.sched_rt_runtime_us=-1   (only with the busy-polling threads on isolated CPUs: a runaway real-time thread then keeps its CPU)",
            ),
            _ => Finding::new(name, Status::Info, "kernel.sched_rt_runtime_us unreadable"),
        }
    }

    fn memlock(&self) -> Finding {
        let name = "memlock limit";
        let fix = "ulimit -l unlimited, or LimitMEMLOCK=infinity in the service unit   (AF_XDP UMEM and DPDK memory are locked)";
        let Some(Limit { soft, hard }) = self.memlock else {
            return Finding::fix(name, Status::Missing, "RLIMIT_MEMLOCK unreadable", fix);
        };
        let detail = format!("soft {}, hard {}", show_bytes(soft), show_bytes(hard));
        if soft.is_none_or(|s| s >= MEMLOCK_NEEDED) {
            return Finding::new(name, Status::Ok, detail);
        }
        if self.cap_ipc_lock {
            return Finding::new(
                name,
                Status::Ok,
                format!("{detail}; CAP_IPC_LOCK: locked memory is not charged to it"),
            );
        }
        Finding::fix(
            name,
            Status::Missing,
            format!(
                "{detail}: below the {} MiB the bypass backends lock",
                MEMLOCK_NEEDED >> 20
            ),
            fix,
        )
    }

    fn irqbalance(&self) -> Finding {
        if self.irqbalance_running {
            return Finding::fix(
                "irqbalance",
                Status::Warn,
                "running: it moves the NIC's interrupts between CPUs and undoes affinities set by hand",
                "systemctl disable --now irqbalance, or keep it off the receive CPUs with IRQBALANCE_BANNED_CPULIST=CPUS in /etc/default/irqbalance",
            );
        }
        Finding::new("irqbalance", Status::Ok, "not running")
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

fn show_bytes(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |n| format!("{} KiB", n / 1024))
}
