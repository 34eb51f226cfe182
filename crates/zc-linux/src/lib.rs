//! Linux zero-copy file and stream paths, each next to the plain path it
//! replaces so that both can be measured side by side:
//!
//! | zero-copy path | plain twin | module |
//! |---|---|---|
//! | `sendfile(2)` file → socket, and an HTTP/1.1 file server on it | `pread` + `send` | [`mod@file`], [`http`] |
//! | `mmap` + `send` (safe against truncation) | `pread` + `send` | [`mod@file`] |
//! | `splice(2)` TCP proxy through one long-lived pipe per direction | `read` + `write` proxy | [`mod@proxy`] |
//! | `MSG_ZEROCOPY` sender, buffers returned only by completions | plain `send` | [`zerocopy`] |
//!
//! Every call loops over short writes and `EAGAIN`; errors are
//! [`zc_core::Error`]s that say what failed and, where known, what to do.

pub mod file;
pub mod http;
mod listen;
pub mod proxy;
mod sys;
pub mod zerocopy;

pub use file::{copy_file, is_truncated, send_file, send_with, FileMethod, MappedFile};
pub use http::{serve, FileServer, ServeConfig};
pub use listen::RunningService;
pub use proxy::{proxy, relay, Proxy, ProxyConfig, ProxyMethod, RelayOptions, RelayStats};
pub use zerocopy::{send_plain, Completion, SendError, StableBuf, ZeroCopySender, ZeroCopyStats};

/// The private parsers, for the fuzz targets in `fuzz/` only: the `fuzzing`
/// feature is off by default and nothing here is a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::request::{
        decode_path, parse_range, parse_request, RangeSpec, Request, Status,
    };
    pub use crate::zerocopy::ledger::{Applied, Ledger};
}
