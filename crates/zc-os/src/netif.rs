//! Network interfaces by name.

use zc_core::error::{Error, ErrorKind, Result};

/// The index of interface `name` in the calling thread's network namespace
/// (`if_nametoindex`); never 0.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| Error::config(format!("interface name {name:?} contains a NUL byte")))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("interface {name:?} not found in this network namespace"),
        )
        .with_fix("list the interfaces with `ip -br link`, or run in the namespace that has it (`ip netns exec NS ...`)"));
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_index_and_a_missing_name_is_not_found() {
        assert!(ifindex("lo").unwrap() > 0);
        assert_eq!(
            ifindex("zcnosuch0").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(ifindex("nul\0").unwrap_err().kind(), ErrorKind::Config);
    }
}
