//! Reading sysfs and procfs under a root directory: `/` on a real host, a
//! committed tree of files in the tests (for what a veth pair cannot show:
//! PCI devices, IRQs, isolated CPUs).

use std::path::{Path, PathBuf};

/// The directory that stands for `/`.
#[derive(Debug, Clone)]
pub struct SysRoot(PathBuf);

impl SysRoot {
    /// The host's own files.
    pub fn host() -> Self {
        Self(PathBuf::from("/"))
    }

    /// A tree of files standing for `/`.
    #[cfg(test)]
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// `rel` (written without the leading `/`) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    /// The file's contents, trimmed; `None` when it cannot be read.
    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// The file parsed as a number.
    pub fn read_num<T: std::str::FromStr>(&self, rel: &str) -> Option<T> {
        self.read(rel)?.parse().ok()
    }

    /// The last component of the symbolic link's target (`driver` → `ice`).
    pub fn link_name(&self, rel: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(rel)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// The entries of a directory, sorted; empty when it cannot be read.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `rel` with every symbolic link resolved, as a path from the root
    /// (`/sys/devices/...`); `None` when it does not exist.
    pub fn resolve(&self, rel: &str) -> Option<String> {
        let root = std::fs::canonicalize(&self.0).ok()?;
        let full = std::fs::canonicalize(self.path(rel)).ok()?;
        let inside = full.strip_prefix(&root).ok()?;
        Some(Path::new("/").join(inside).to_string_lossy().into_owned())
    }

    /// True when `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }
}

/// Parses a kernel CPU list (`0-3,8,10-11`); `None` when malformed.
/// An empty text (or the kernel's `(null)`) is the empty list.
pub fn parse_cpulist(text: &str) -> Option<Vec<usize>> {
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Some(Vec::new());
    }
    let mut cpus = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// Writes CPUs as a kernel CPU list, runs collapsed (`0-3,8`).
pub fn format_cpulist(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_format_back() {
        assert_eq!(
            parse_cpulist("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpulist(""), Some(vec![]));
        assert_eq!(parse_cpulist("(null)"), Some(vec![]));
        assert_eq!(parse_cpulist("3-1"), None);
        assert_eq!(parse_cpulist("x"), None);
        assert_eq!(parse_cpulist("0-99999999999"), None);
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[5]), "5");
        assert_eq!(format_cpulist(&[]), "");
    }
}
