//! What DPDK on a PCI port needs: an IOMMU, the vfio-pci driver, and NICs
//! bound to it. (zc's own DPDK backends run on `net_af_xdp` and
//! `net_af_packet` vdevs over a kernel interface and need none of this.)

use super::finding::{Finding, Status};
use super::sysroot::SysRoot;
use serde::Serialize;

/// Drivers that hand a PCI device to user space.
const USER_SPACE_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// A network-class PCI device bound to a user-space driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSpaceNic {
    /// PCI address.
    pub pci: String,
    /// `vfio-pci`, `uio_pci_generic` or `igb_uio`.
    pub driver: String,
    /// IOMMU group (`/dev/vfio/N`).
    pub iommu_group: Option<String>,
}

/// The IOMMU and vfio state of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VfioFacts {
    /// IOMMU groups the kernel made (0: no IOMMU in use).
    pub iommu_groups: usize,
    /// vfio's unsafe no-IOMMU mode is on.
    pub noiommu_mode: bool,
    /// The vfio-pci driver is loaded.
    pub vfio_pci_loaded: bool,
    /// `/dev/vfio/vfio` exists.
    pub vfio_device: bool,
    /// Network PCI devices bound to a user-space driver (ready for a DPDK PMD).
    pub user_space_nics: Vec<UserSpaceNic>,
}

impl VfioFacts {
    /// Reads the IOMMU and vfio state under `root`.
    pub fn read(root: &SysRoot) -> Self {
        let user_space_nics =
            root.list("sys/bus/pci/devices")
                .into_iter()
                .filter_map(|pci| {
                    let dir = format!("sys/bus/pci/devices/{pci}");
                    let class = root.read(&format!("{dir}/class"))?;
                    let driver = root.link_name(&format!("{dir}/driver"))?;
                    (class.starts_with("0x02") && USER_SPACE_DRIVERS.contains(&driver.as_str()))
                        .then(|| UserSpaceNic {
                            iommu_group: root.link_name(&format!("{dir}/iommu_group")),
                            pci,
                            driver,
                        })
                })
                .collect();
        Self {
            iommu_groups: root.list("sys/kernel/iommu_groups").len(),
            noiommu_mode: root
                .read("sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
                .as_deref()
                == Some("Y"),
            vfio_pci_loaded: root.exists("sys/bus/pci/drivers/vfio-pci"),
            vfio_device: root.exists("dev/vfio/vfio"),
            user_space_nics,
        }
    }

    /// The IOMMU, vfio-pci and bound-NIC findings.
    pub fn findings(&self) -> Vec<Finding> {
        let iommu = if self.iommu_groups > 0 {
            Finding::new(
                "IOMMU",
                Status::Ok,
                format!("on, {} groups", self.iommu_groups),
            )
        } else if self.noiommu_mode {
            Finding::fix(
                "IOMMU",
                Status::Warn,
                "off; vfio runs in unsafe no-IOMMU mode (the device can write anywhere in memory)",
                "enable VT-d / AMD-Vi in the firmware and boot with intel_iommu=on iommu=pt (or amd_iommu=on)",
            )
        } else {
            Finding::fix(
                "IOMMU",
                Status::Warn,
                "off: vfio-pci cannot take a NIC for a DPDK poll-mode driver",
                "enable VT-d / AMD-Vi in the firmware and boot with intel_iommu=on iommu=pt (or amd_iommu=on)",
            )
        };
        let vfio = match (self.vfio_pci_loaded, self.vfio_device) {
            (true, true) => Finding::new("vfio-pci", Status::Ok, "loaded, /dev/vfio/vfio present"),
            (true, false) => Finding::fix(
                "vfio-pci",
                Status::Warn,
                "loaded, but /dev/vfio/vfio is missing",
                "modprobe vfio; check that udev created /dev/vfio",
            ),
            (false, _) => Finding::fix("vfio-pci", Status::Warn, "not loaded", "modprobe vfio-pci"),
        };
        let bound = if self.user_space_nics.is_empty() {
            Finding::new(
                "user-space NICs",
                Status::Info,
                "none: every NIC is bound to a kernel driver (what AF_XDP and zc's DPDK vdevs use); a DPDK PCI port needs `dpdk-devbind.py --bind=vfio-pci PCI`",
            )
        } else {
            let list: Vec<String> = self
                .user_space_nics
                .iter()
                .map(|n| match &n.iommu_group {
                    Some(g) => format!("{} ({}, IOMMU group {g})", n.pci, n.driver),
                    None => format!("{} ({})", n.pci, n.driver),
                })
                .collect();
            Finding::new("user-space NICs", Status::Info, list.join(", "))
        };
        vec![iommu, vfio, bound]
    }
}
