//! What sysfs and procfs show of one interface: link, MTU, queues, the PCI
//! device behind it and its binding, NUMA node, and the IRQs of its queues
//! with their CPU affinity.

use super::finding::{Finding, Status};
use super::sysroot::{format_cpulist, SysRoot};
use super::tuning::HostFacts;
use serde::Serialize;
use zc_core::error::Result;

/// The PCI function behind an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PciFacts {
    /// PCI address (`0000:3b:00.0`).
    pub address: String,
    /// Vendor and device id (`8086:159b`).
    pub id: String,
    /// The kernel driver bound to it.
    pub driver: Option<String>,
    /// Its IOMMU group, when the IOMMU is on.
    pub iommu_group: Option<String>,
    /// The NUMA node it is attached to.
    pub numa_node: Option<u32>,
    /// The CPUs of that node.
    pub numa_cpus: Vec<usize>,
}

/// One interrupt of the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Irq {
    /// IRQ number.
    pub irq: u32,
    /// Its name in `/proc/interrupts` (names the queue on most drivers).
    pub name: String,
    /// CPUs it may be delivered to (`smp_affinity_list`).
    pub affinity: Vec<usize>,
    /// CPUs it is delivered to now (`effective_affinity_list`), when the kernel says.
    pub effective: Option<Vec<usize>>,
}

/// An interface as sysfs and procfs show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceFacts {
    /// Interface name.
    pub name: String,
    /// `operstate`: `up`, `down`, `unknown` (drivers that do not say, such as loopback)...
    pub operstate: String,
    /// Administratively up (`ip link set IF up`: `IFF_UP` in `flags`).
    pub admin_up: Option<bool>,
    /// Carrier (cable and far end) present.
    pub carrier: Option<bool>,
    /// MTU in bytes.
    pub mtu: Option<u32>,
    /// Link speed in Mb/s, when the driver reports one.
    pub speed_mbps: Option<u32>,
    /// `full` or `half`, when the driver reports it.
    pub duplex: Option<String>,
    /// Receive queues the kernel made for the device.
    pub rx_queues: usize,
    /// Transmit queues.
    pub tx_queues: usize,
    /// The device's directory in sysfs.
    pub sysfs_path: String,
    /// The PCI function behind it; `None` for virtual devices.
    pub pci: Option<PciFacts>,
    /// The device's interrupts.
    pub irqs: Vec<Irq>,
}

/// Interface names the kernel accepts (and nothing that walks out of sysfs).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && s.chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// `/proc/interrupts`: IRQ number → name (the last column).
fn irq_names(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| {
            let (num, rest) = l.trim_start().split_once(':')?;
            let irq = num.parse().ok()?;
            let name = rest.split_whitespace().last()?.to_owned();
            Some((irq, name))
        })
        .collect()
}

impl DeviceFacts {
    /// Reads interface `name` under `root`.
    pub fn read(root: &SysRoot, name: &str) -> Result<Self> {
        let dir = format!("sys/class/net/{name}");
        if !valid_name(name) || !root.exists(&dir) {
            return Err(zc_nic::interface_not_found(name));
        }
        let sysfs_path = root.resolve(&dir).unwrap_or_else(|| format!("/{dir}"));
        let queues = root.list(&format!("{dir}/queues"));
        let count = |prefix: &str| queues.iter().filter(|q| q.starts_with(prefix)).count();
        let pci = Self::pci(root, &sysfs_path);
        let irqs = pci
            .as_ref()
            .map(|p| Self::irqs(root, &p.address))
            .unwrap_or_default();
        Ok(Self {
            name: name.to_owned(),
            operstate: root
                .read(&format!("{dir}/operstate"))
                .unwrap_or_else(|| "unknown".into()),
            admin_up: root
                .read(&format!("{dir}/flags"))
                .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
                .map(|f| f & 1 != 0),
            carrier: root
                .read_num::<u8>(&format!("{dir}/carrier"))
                .map(|c| c == 1),
            mtu: root.read_num(&format!("{dir}/mtu")),
            speed_mbps: root
                .read_num::<i64>(&format!("{dir}/speed"))
                .and_then(|s| u32::try_from(s).ok()),
            duplex: root
                .read(&format!("{dir}/duplex"))
                .filter(|d| d != "unknown"),
            rx_queues: count("rx-"),
            tx_queues: count("tx-"),
            sysfs_path,
            pci,
            irqs,
        })
    }

    fn pci(root: &SysRoot, sysfs_path: &str) -> Option<PciFacts> {
        // /sys/devices/pci0000:00/0000:00:02.0/0000:3b:00.0/net/ens1f0: the
        // last PCI address before `net` is the function (a virtio device
        // sits one level below its PCI function).
        let mut dir = String::new();
        let mut address = None;
        for part in sysfs_path.trim_start_matches('/').split('/') {
            if part == "net" {
                break;
            }
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(part);
            if is_pci_address(part) {
                address = Some((part.to_owned(), dir.clone()));
            }
        }
        let (address, dir) = address?;
        let hex = |f: &str| {
            root.read(&format!("{dir}/{f}"))
                .map(|v| v.trim_start_matches("0x").to_owned())
                .unwrap_or_else(|| "?".into())
        };
        let numa_node = root
            .read_num::<i64>(&format!("{dir}/numa_node"))
            .and_then(|n| u32::try_from(n).ok());
        let numa_cpus = numa_node
            .and_then(|n| root.read(&format!("sys/devices/system/node/node{n}/cpulist")))
            .and_then(|t| super::sysroot::parse_cpulist(&t))
            .unwrap_or_default();
        Some(PciFacts {
            id: format!("{}:{}", hex("vendor"), hex("device")),
            driver: root.link_name(&format!("{dir}/driver")),
            iommu_group: root.link_name(&format!("{dir}/iommu_group")),
            numa_node,
            numa_cpus,
            address,
        })
    }

    fn irqs(root: &SysRoot, pci: &str) -> Vec<Irq> {
        let dir = format!("sys/bus/pci/devices/{pci}");
        let mut numbers: Vec<u32> = root
            .list(&format!("{dir}/msi_irqs"))
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        if numbers.is_empty() {
            // Legacy INTx: one line, 0 when none.
            numbers.extend(
                root.read_num::<u32>(&format!("{dir}/irq"))
                    .filter(|&n| n != 0),
            );
        }
        numbers.sort_unstable();
        let names = irq_names(&root.read("proc/interrupts").unwrap_or_default());
        let cpus = |rel: String| {
            root.read(&rel)
                .and_then(|t| super::sysroot::parse_cpulist(&t))
        };
        numbers
            .into_iter()
            .map(|irq| Irq {
                irq,
                name: names
                    .iter()
                    .find(|(n, _)| *n == irq)
                    .map_or_else(String::new, |(_, name)| name.clone()),
                affinity: cpus(format!("proc/irq/{irq}/smp_affinity_list")).unwrap_or_default(),
                effective: cpus(format!("proc/irq/{irq}/effective_affinity_list")),
            })
            .collect()
    }

    /// Link, bus and binding, NUMA placement and IRQ affinity findings.
    pub fn findings(&self, host: &HostFacts) -> Vec<Finding> {
        vec![
            self.link(),
            self.bus(),
            self.numa(host),
            self.irq_affinity(host),
        ]
    }

    fn link(&self) -> Finding {
        let speed = match (self.speed_mbps, &self.duplex) {
            (Some(s), Some(d)) => format!(", {s} Mb/s {d} duplex"),
            (Some(s), None) => format!(", {s} Mb/s"),
            _ => String::new(),
        };
        let carrier = self.carrier == Some(true);
        match self.operstate.as_str() {
            "up" if carrier => Finding::new("link", Status::Ok, format!("up{speed}")),
            "unknown" if carrier => Finding::new(
                "link",
                Status::Ok,
                format!("up (carrier on; the driver reports no operational state){speed}"),
            ),
            state => {
                let carrier = match self.carrier {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "unknown (interface down)",
                };
                let fix = if self.admin_up == Some(false) {
                    format!("ip link set {} up", self.name)
                } else {
                    "the far end is down: check the cable, the optic and the switch port (for a veth pair, the peer end)".to_owned()
                };
                Finding::fix(
                    "link",
                    Status::Missing,
                    format!("{state}, carrier {carrier}"),
                    fix,
                )
            }
        }
    }

    fn bus(&self) -> Finding {
        let Some(p) = &self.pci else {
            return Finding::new(
                "device",
                Status::Info,
                format!(
                    "virtual ({}): no PCI function, IRQs or NUMA node",
                    self.sysfs_path
                ),
            );
        };
        let driver = p.driver.as_deref().unwrap_or("no driver");
        let group = p.iommu_group.as_ref().map_or_else(
            || "no IOMMU group".to_owned(),
            |g| format!("IOMMU group {g}"),
        );
        Finding::new(
            "device",
            Status::Info,
            format!("PCI {} [{}] bound to {driver}, {group}", p.address, p.id),
        )
    }

    fn numa(&self, host: &HostFacts) -> Finding {
        let Some(p) = &self.pci else {
            return Finding::new("NUMA node", Status::Info, "none (virtual device)");
        };
        let Some(node) = p.numa_node else {
            return Finding::new(
                "NUMA node",
                Status::Info,
                "none reported (single-node host)",
            );
        };
        let cpus = format_cpulist(&p.numa_cpus);
        let local: Vec<usize> = host
            .isolated_cpus
            .iter()
            .copied()
            .filter(|c| p.numa_cpus.contains(c))
            .collect();
        if !host.isolated_cpus.is_empty() && local.is_empty() {
            return Finding::fix(
                "NUMA node",
                Status::Warn,
                format!(
                    "node {node} (CPUs {cpus}); the isolated CPUs {} are all on other nodes: every packet crosses the interconnect",
                    format_cpulist(&host.isolated_cpus)
                ),
                format!("isolate and pin the receive threads on CPUs of node {node} ({cpus})"),
            );
        }
        Finding::new(
            "NUMA node",
            Status::Ok,
            format!("node {node} (CPUs {cpus}): pin the receive threads there"),
        )
    }

    fn irq_affinity(&self, host: &HostFacts) -> Finding {
        if self.irqs.is_empty() {
            return Finding::new(
                "IRQ affinity",
                Status::Info,
                if self.pci.is_some() {
                    "no interrupts allocated (interface down?)"
                } else {
                    "no interrupts (virtual device: receive work runs in the sender's softirq)"
                },
            );
        }
        let mut unpinned = Vec::new();
        let mut on_isolated = Vec::new();
        let list: Vec<String> = self
            .irqs
            .iter()
            .map(|i| {
                let cpus = i.effective.as_ref().unwrap_or(&i.affinity);
                if !host.online_cpus.is_empty()
                    && host.online_cpus.len() > 1
                    && host.online_cpus.iter().all(|c| i.affinity.contains(c))
                {
                    unpinned.push(i.irq);
                }
                if i.affinity.iter().any(|c| host.isolated_cpus.contains(c)) {
                    on_isolated.push(i.irq);
                }
                format!("{} {} → CPU {}", i.irq, i.name, format_cpulist(cpus))
            })
            .collect();
        let detail = list.join("; ");
        let housekeeping = self
            .pci
            .as_ref()
            .map(|p| {
                p.numa_cpus
                    .iter()
                    .copied()
                    .filter(|c| !host.isolated_cpus.contains(c))
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty())
            .map_or_else(
                || "a housekeeping CPU".to_owned(),
                |c| format!("a housekeeping CPU ({})", format_cpulist(&c)),
            );
        let irq_words = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        if !unpinned.is_empty() {
            return Finding::fix(
                "IRQ affinity",
                Status::Warn,
                format!("IRQs {} may run on any CPU: {detail}", irq_words(&unpinned)),
                format!(
                    "for each queue's IRQ N: echo CPU > /proc/irq/N/smp_affinity_list, CPU being {housekeeping} or the CPU that polls that queue"
                ),
            );
        }
        if !on_isolated.is_empty() {
            return Finding::fix(
                "IRQ affinity",
                Status::Warn,
                format!(
                    "IRQs {} land on isolated CPUs and preempt what runs there: {detail}",
                    irq_words(&on_isolated)
                ),
                format!(
                    "move them to {housekeeping}: echo CPU > /proc/irq/N/smp_affinity_list (keep one there only if that CPU's thread busy-polls the same queue)"
                ),
            );
        }
        Finding::new("IRQ affinity", Status::Ok, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_sysfs_are_refused() {
        for bad in ["", ".", "..", "a/b", "../../etc", "x y", "sixteen-chars-xx"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name("ens1f0np0"));
    }

    #[test]
    fn pci_addresses_and_interrupt_names_parse() {
        assert!(is_pci_address("0000:3b:00.0"));
        assert!(!is_pci_address("pci0000:00"));
        assert!(!is_pci_address("virtio2"));
        let t = "           CPU0       CPU1\n  24:  0  5  IR-PCI-MSI 1572864-edge  ice-ens1f0-TxRx-0\nNMI:  0 0  Non-maskable interrupts\n";
        assert_eq!(irq_names(t), vec![(24, "ice-ens1f0-TxRx-0".to_owned())]);
    }
}
