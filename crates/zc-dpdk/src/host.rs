//! What a vdev changes on its kernel interface, written down so that it can
//! be undone by whoever comes next.
//!
//! `net_af_xdp` attaches an XDP program through netlink, which outlives the
//! process, and a promiscuous port sets `IFF_PROMISC`. Closing the port
//! undoes both; a process that cannot close it (SIGKILL, an abort, a forced
//! exit) leaves them. So once the port is started, [`open_interface`]
//! records in `/run/zc/dpdk/<netns>-<interface>` the process (pid and start
//! time), the program's id and whether it set promiscuous mode, and removes
//! the record when the port closes.
//!
//! The next open on that interface reads the record. If its process is gone,
//! what it recorded is proven to be a dead zc's: the program is detached if
//! it is still the one attached, promiscuous mode is turned off, and the mode
//! says what was cleaned. An XDP program with no such record is someone
//! else's: the open is refused with its id, never detached.
//! [`restore_host_state`] undoes this process's own records at once, for a
//! process about to exit without closing its ports.
//!
//! [`open_interface`]: crate::open_interface

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zc_core::error::{Error, ErrorKind, Result};
use zc_nic::{AttachedXdp, XdpAttachMode};

/// Where the records live: tmpfs, cleared at boot like the state they describe.
const RECORD_DIR: &str = "/run/zc/dpdk";

/// What one process changed on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Changes {
    interface: String,
    pid: u32,
    /// The process's start time (`/proc/<pid>/stat` field 22), so that a
    /// recycled pid is not taken for the recorder.
    start_time: u64,
    program: Option<AttachedXdp>,
    promiscuous: bool,
}

impl Changes {
    fn encode(&self) -> String {
        let (id, mode) = match self.program {
            Some(p) => (
                p.prog_id.to_string(),
                match p.mode {
                    XdpAttachMode::Driver => "native",
                    XdpAttachMode::Generic => "generic",
                    XdpAttachMode::Offload => "offload",
                    XdpAttachMode::Multi => "multi",
                },
            ),
            None => ("none".to_owned(), "none"),
        };
        format!(
            "interface={}\npid={}\nstart_time={}\nxdp_prog_id={id}\nxdp_mode={mode}\npromiscuous={}\n",
            self.interface, self.pid, self.start_time, self.promiscuous
        )
    }

    /// Parses a record; `None` for anything that is not one of ours, whole.
    fn decode(text: &str) -> Option<Self> {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
        };
        let mode = match field("xdp_mode")? {
            "native" => Some(XdpAttachMode::Driver),
            "generic" => Some(XdpAttachMode::Generic),
            "offload" => Some(XdpAttachMode::Offload),
            "multi" => Some(XdpAttachMode::Multi),
            "none" => None,
            _ => return None,
        };
        let program = match (field("xdp_prog_id")?, mode) {
            ("none", None) => None,
            (id, Some(mode)) => Some(AttachedXdp {
                prog_id: id.parse().ok()?,
                mode,
            }),
            _ => return None,
        };
        Some(Self {
            interface: field("interface")?.to_owned(),
            pid: field("pid")?.parse().ok()?,
            start_time: field("start_time")?.parse().ok()?,
            program,
            promiscuous: field("promiscuous")?.parse().ok()?,
        })
    }
}

/// The start time of process `pid`, or `None` when there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn record_path(interface: &str) -> Result<PathBuf> {
    let netns = std::fs::metadata("/proc/self/ns/net")
        .map_err(|e| Error::io("read this process's network namespace", e))?
        .ino();
    Ok(Path::new(RECORD_DIR).join(format!("{netns}-{interface}")))
}

/// Undoes what `c` recorded, where it is still so. Returns what was done.
fn undo(c: &Changes) -> Vec<String> {
    let mut done = Vec::new();
    if let Some(p) = c.program {
        match zc_nic::detach_xdp(&c.interface, p) {
            Ok(true) => done.push(format!("detached XDP program {}", p.prog_id)),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(interface = %c.interface, error = %e, "could not detach a recorded XDP program")
            }
        }
    }
    if c.promiscuous {
        match zc_nic::set_promiscuous(&c.interface, false) {
            Ok(()) => done.push("turned promiscuous mode off".to_owned()),
            Err(e) => {
                tracing::warn!(interface = %c.interface, error = %e, "could not turn promiscuous mode off")
            }
        }
    }
    done
}

/// Before a vdev attaches to `interface`: cleans what a dead zc left there,
/// and refuses an XDP program nobody can prove is a dead zc's when `xdp`
/// (the driver attaches one). Returns what was cleaned, for the mode.
pub(crate) fn prepare(interface: &str, xdp: bool) -> Result<Option<String>> {
    let path = record_path(interface)?;
    let mut cleaned = None;
    if let Ok(text) = std::fs::read_to_string(&path) {
        let Some(c) = Changes::decode(&text) else {
            return Err(
                Error::config(format!("{} is not a record zc can read", path.display()))
                    .with_fix("remove it once no zc runs on the interface"),
            );
        };
        if c.pid == std::process::id() {
            // This process's own port, still open: the caller reuses ports,
            // or opens another queue of the interface (checked below).
            if xdp && c.program.is_some() && zc_nic::attached_xdp(interface)? == c.program {
                // Another net_af_xdp port on a further device queue: its
                // socket joins the program this process's first port attached.
                return Ok(None);
            }
        } else if start_time(c.pid) == Some(c.start_time) {
            return Err(Error::new(
                ErrorKind::AddrInUse,
                format!(
                    "{interface} is in use by zc process {} (its DPDK port is open; record {})",
                    c.pid,
                    path.display()
                ),
            )
            .with_fix("stop that process first, or use another interface"));
        } else {
            let done = undo(&c);
            let _ = std::fs::remove_file(&path);
            let what = if done.is_empty() {
                "nothing left to undo".to_owned()
            } else {
                done.join(", ")
            };
            tracing::warn!(%interface, pid = c.pid, %what, "cleaned up after a zc that exited without closing its DPDK port");
            cleaned = Some(format!(
                "cleaned up after zc process {} (no longer running): {what}",
                c.pid
            ));
        }
    }
    if xdp {
        if let Some(p) = zc_nic::attached_xdp(interface)? {
            return Err(Error::new(ErrorKind::AddrInUse, format!(
                "{interface} already has an XDP program (id {}, {} mode) that no exited zc recorded: net_af_xdp would put its sockets into that program's map, or fail",
                p.prog_id, p.mode
            ))
            .with_fix(format!(
                "see it with `bpftool prog show id {}`; if it is stale, detach it with `ip link set dev {interface} xdp off`; if another application uses it, pick another interface",
                p.prog_id
            )));
        }
    }
    Ok(cleaned)
}

/// The records this process holds, for [`restore_host_state`], each with
/// the number of ports that share it (the ports on several queues of one
/// interface share one record).
static LIVE: Mutex<Vec<(PathBuf, Changes, usize)>> = Mutex::new(Vec::new());

/// This process's record of what its port changed on an interface: written
/// when created, removed (and forgotten) when dropped, after the port closed
/// and undid the changes itself.
#[derive(Debug)]
pub(crate) struct HostRecord {
    path: PathBuf,
}

impl HostRecord {
    /// Records what a just-started port changed on `interface`; `None` when
    /// it changed nothing.
    pub(crate) fn write(interface: &str, xdp: bool, promiscuous: bool) -> Result<Option<Self>> {
        let program = if xdp {
            zc_nic::attached_xdp(interface)?
        } else {
            None
        };
        if program.is_none() && !promiscuous {
            return Ok(None);
        }
        let path = record_path(interface)?;
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c, ports)) = live.iter_mut().find(|(p, _, _)| *p == path) {
            // A further port of this process on the interface: the record
            // stands until the last of them closes.
            if c.program == program && c.promiscuous == promiscuous {
                *ports += 1;
                return Ok(Some(Self { path }));
            }
            return Err(Error::config(format!(
                "{interface}: a further DPDK port would change the interface differently from this process's first ({} vs {})",
                changes_words(program, promiscuous),
                changes_words(c.program, c.promiscuous)
            ))
            .with_fix("open every port of the interface with the same promiscuous setting"));
        }
        let pid = std::process::id();
        let changes = Changes {
            interface: interface.to_owned(),
            pid,
            start_time: start_time(pid).unwrap_or(0),
            program,
            promiscuous,
        };
        std::fs::create_dir_all(RECORD_DIR)
            .and_then(|()| std::fs::write(&path, changes.encode()))
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        live.push((path.clone(), changes, 1));
        Ok(Some(Self { path }))
    }
}

/// What a record says was changed, in words for an error.
fn changes_words(program: Option<AttachedXdp>, promiscuous: bool) -> String {
    let program = match program {
        Some(p) => format!("XDP program {}", p.prog_id),
        None => "no XDP program".to_owned(),
    };
    format!(
        "{program}, promiscuous {}",
        if promiscuous { "on" } else { "off" }
    )
}

impl Drop for HostRecord {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        let Some(i) = live.iter().position(|(p, _, _)| *p == self.path) else {
            return; // already undone by restore_host_state
        };
        live[i].2 -= 1;
        if live[i].2 == 0 {
            live.remove(i);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Undoes at once, through the kernel, what this process's DPDK ports
/// changed on their interfaces (XDP programs detached, promiscuous mode
/// off) and removes their records, without touching the ports themselves:
/// for a process about to exit without closing them (a forced exit on a
/// second Ctrl-C). The ports stop receiving. Returns what was done.
pub fn restore_host_state() -> Vec<String> {
    let Ok(mut live) = LIVE.try_lock() else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for (path, c, _) in live.drain(..) {
        for d in undo(&c) {
            done.push(format!("{}: {d}", c.interface));
        }
        let _ = std::fs::remove_file(path);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_damaged_one_is_refused() {
        let c = Changes {
            interface: "eth1".into(),
            pid: 42,
            start_time: 7,
            program: Some(AttachedXdp {
                prog_id: 99,
                mode: XdpAttachMode::Generic,
            }),
            promiscuous: true,
        };
        assert_eq!(Changes::decode(&c.encode()), Some(c.clone()));
        let none = Changes { program: None, ..c };
        assert_eq!(Changes::decode(&none.encode()), Some(none.clone()));
        let text = none.encode();
        for cut in 0..text.len() - 1 {
            // Any truncation loses a field or garbles one: never a panic.
            let _ = Changes::decode(&text[..cut]);
        }
        assert_eq!(Changes::decode("pid=1\n"), None);
        assert_eq!(
            Changes::decode(&text.replace("xdp_mode=none", "xdp_mode=native")),
            None
        );
    }

    #[test]
    fn this_process_has_a_start_time_and_a_made_up_pid_none() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }
}
