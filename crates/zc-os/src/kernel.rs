//! The running kernel's release, for features that depend on it.

/// A kernel release as (major, minor), comparable with `>=`.
pub type Release = (u32, u32);

/// The running kernel's release, from `/proc/sys/kernel/osrelease`, or `None`
/// when it cannot be read or parsed.
pub fn release() -> Option<Release> {
    parse_release(&release_string()?)
}

/// The full release string (`6.1.0-18-amd64`), as `uname -r` prints it.
pub fn release_string() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(text.trim().to_owned())
}

/// Parses the leading `major.minor` of a release string.
pub fn parse_release(text: &str) -> Option<Release> {
    let mut it = text.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_releases() {
        assert_eq!(parse_release("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(parse_release("5.19"), Some((5, 19)));
        assert_eq!(parse_release("6"), None);
        assert_eq!(parse_release("linux"), None);
    }

    #[test]
    fn this_kernel_has_a_release() {
        let r = release().expect("osrelease readable");
        assert!(r >= (3, 0), "{r:?}");
    }
}
