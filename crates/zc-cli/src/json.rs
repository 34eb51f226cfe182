//! Where JSON goes: every `--json FILE` of the command takes `-` for stdout.

use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use zc_core::{Error, ErrorKind, Result};

/// An open `--json` destination: a file, or stdout for `-`.
pub struct JsonOut {
    out: Box<dyn Write>,
    name: String,
}

/// `--json FILE`: true when FILE is `-`, so the command keeps its text for stderr.
pub fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

impl JsonOut {
    /// Opens (creates or truncates) `path`, or stdout for `-`.
    pub fn create(path: &Path) -> Result<Self> {
        if is_stdout(path) {
            return Ok(Self {
                out: Box::new(std::io::stdout()),
                name: "stdout".to_owned(),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let file =
            File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(Self {
            out: Box::new(BufWriter::new(file)),
            name: path.display().to_string(),
        })
    }

    /// Writes `v` as one line of JSON and flushes, so a reader following
    /// the file (or the pipe) sees each line as it is written.
    pub fn line<T: Serialize>(&mut self, v: &T) -> Result<()> {
        let text = serde_json::to_string(v).map_err(|e| self.encode_error(e))?;
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(format!("write JSON to {}", self.name), e))
    }

    /// Writes `v` as one indented document and flushes.
    pub fn document<T: Serialize>(mut self, v: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(v).map_err(|e| self.encode_error(e))?;
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(format!("write JSON to {}", self.name), e))
    }

    fn encode_error(&self, e: serde_json::Error) -> Error {
        Error::new(ErrorKind::Io, format!("encode JSON for {}: {e}", self.name))
    }
}

/// The clap value parser of `--json`: a path, `-` for stdout.
pub fn parse_target(s: &str) -> std::result::Result<PathBuf, String> {
    if s.is_empty() {
        return Err("give a file name, or - for stdout".to_owned());
    }
    Ok(PathBuf::from(s))
}

/// True when a `--json` option sends JSON to stdout.
pub fn json_on_stdout(json: Option<&Path>) -> bool {
    json.is_some_and(is_stdout)
}

/// `println!`, or `eprintln!` when stdout carries the JSON (`--json -`), so
/// that a reader of stdout gets JSON alone.
macro_rules! text {
    ($json:expr, $($arg:tt)*) => {
        if $crate::json::json_on_stdout($json) {
            eprintln!($($arg)*)
        } else {
            println!($($arg)*)
        }
    };
}
pub(crate) use text;
