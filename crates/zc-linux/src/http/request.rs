//! Parsing of what a client sends: the request head, the target's path and
//! the `Range` header. Pure functions on bytes, so the fuzz targets in `fuzz/`
//! reach them (feature `fuzzing`) without a socket or a folder.

use std::ffi::CString;

/// A parsed request head; slices borrow the connection's head buffer.
pub struct Request<'h> {
    /// HEAD rather than GET.
    pub head_only: bool,
    /// The request target as sent (path, query, fragment), not decoded.
    pub target: &'h [u8],
    /// The `Range` header's value, trimmed.
    pub range: Option<&'h [u8]>,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
}

/// An error status with a short body; the connection closes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16);

/// Cuts optional whitespace (RFC 9110 `OWS`: spaces and tabs) off both ends.
fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// An RFC 9110 `tchar`: what a method or a field name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field value may hold visible characters, spaces, tabs and obs-text;
/// any other control character (a bare CR, a NUL, ...) makes it invalid.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Parses a request head: `head` runs up to and including the first blank
/// line (`\r\n\r\n`), as the connection buffers it.
///
/// Strict where RFC 9112 says a server must or may reject, because a lenient
/// reading is how a proxy in front and this server come to disagree about
/// where a request ends: whitespace before a field's colon, a field name that
/// is not a token (a tab in it, or empty), a CR that does not end a line, a
/// control character in a value, a second `Host`, and obsolete line folding
/// are all 400.
pub fn parse_request(head: &[u8]) -> std::result::Result<Request<'_>, Status> {
    let head = &head[..head.len() - 4];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().ok_or(Status(400))?;
    if line.contains(&b'\r') {
        return Err(Status(400)); // a bare CR
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status(400));
    };
    if target.is_empty() || !target.iter().all(|&b| b > 0x20 && b != 0x7f) {
        return Err(Status(400));
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        v if v.starts_with(b"HTTP/") => return Err(Status(505)),
        _ => return Err(Status(400)),
    };
    let head_only = match method {
        b"GET" => false,
        b"HEAD" => true,
        m if !m.is_empty() && m.iter().copied().all(is_tchar) => return Err(Status(405)),
        _ => return Err(Status(400)),
    };
    let mut keep_alive = http11;
    let mut range = None;
    let mut hosts = 0;
    for l in lines {
        if l.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(Status(400)); // obsolete line folding
        }
        let colon = l.iter().position(|&b| b == b':').ok_or(Status(400))?;
        let (name, value) = (&l[..colon], &l[colon + 1..]);
        // A name is a token: no whitespace before the colon, no tab inside.
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(Status(400));
        }
        if !value.iter().copied().all(is_value_byte) {
            return Err(Status(400));
        }
        let value = trim(value);
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for tok in value.split(|&b| b == b',').map(trim) {
                if tok.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"range") {
            range = Some(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || (name.eq_ignore_ascii_case(b"content-length") && value != b"0")
        {
            // A body on GET/HEAD has no meaning here, and not reading it would
            // desynchronise the connection: refuse.
            return Err(Status(400));
        }
    }
    // RFC 9112 section 3.2: no Host in HTTP/1.1, or more than one, is 400.
    if hosts > 1 || (http11 && hosts == 0) {
        return Err(Status(400));
    }
    Ok(Request {
        head_only,
        target,
        range,
        keep_alive,
    })
}

/// The percent-decoded segments of a request target's path (query and
/// fragment cut off, empty segments skipped), or the status to answer with.
pub fn decode_path(target: &[u8]) -> std::result::Result<Vec<CString>, Status> {
    let path = target
        .split(|&b| b == b'?' || b == b'#')
        .next()
        .unwrap_or_default();
    if path.first() != Some(&b'/') {
        return Err(Status(400));
    }
    path.split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect()
}

/// Percent-decodes one path segment, refusing anything that could climb out
/// or hide a separator.
fn decode_segment(raw: &[u8]) -> std::result::Result<CString, Status> {
    if raw == b"." || raw == b".." || raw.contains(&b'\\') {
        return Err(Status(403));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            // Exactly two hex digits: `u8::from_str_radix` alone would also
            // take a sign, decoding `%+a` as a newline.
            let v = match raw.get(i + 1..i + 3) {
                Some(&[h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    hex_value(h) << 4 | hex_value(l)
                }
                _ => return Err(Status(400)),
            };
            if matches!(v, b'.' | b'/' | b'\\' | 0) {
                return Err(Status(403));
            }
            out.push(v);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    CString::new(out).map_err(|_| Status(400))
}

/// The value of one ASCII hex digit.
fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        _ => (d | 0x20) - b'a' + 10,
    }
}

/// A `Range` header against a file of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable range: send the whole file with 200.
    Full,
    /// Bytes `start..=end`, with 206.
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Reads a `Range` value against a file of `size` bytes.
pub fn parse_range(value: &[u8], size: u64) -> RangeSpec {
    let Some(spec) = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case(b"bytes="))
        .map(|_| trim(&value[6..]))
    else {
        return RangeSpec::Full;
    };
    if spec.contains(&b',') {
        return RangeSpec::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeSpec::Full;
    };
    let num = |b: &[u8]| -> Option<u64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.is_empty() {
        return match num(last) {
            None => RangeSpec::Full,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if size == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Part(size.saturating_sub(n), size - 1),
        };
    }
    let Some(start) = num(first) else {
        return RangeSpec::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match num(last) {
            Some(e) if e >= start => e,
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(start, end.min(size - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(b"bytes=0-0", 10), RangeSpec::Part(0, 0));
        assert_eq!(parse_range(b"bytes=2-", 10), RangeSpec::Part(2, 9));
        assert_eq!(parse_range(b"bytes=2-100", 10), RangeSpec::Part(2, 9));
        assert_eq!(parse_range(b"bytes=-3", 10), RangeSpec::Part(7, 9));
        assert_eq!(parse_range(b"bytes=-30", 10), RangeSpec::Part(0, 9));
        assert_eq!(parse_range(b"bytes=10-", 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=5-2", 10), RangeSpec::Full);
        assert_eq!(parse_range(b"bytes=0-1,3-4", 10), RangeSpec::Full);
        assert_eq!(parse_range(b"items=0-1", 10), RangeSpec::Full);
        assert_eq!(parse_range(b"bytes=x-1", 10), RangeSpec::Full);
        assert_eq!(
            parse_range(b"bytes=99999999999999999999999-", 10),
            RangeSpec::Full
        );
    }

    #[test]
    fn segments_that_could_climb_out_are_refused() {
        for bad in [
            &b".."[..],
            b".",
            b"%2e%2e",
            b"%2E.",
            b"a%2fb",
            b"a%5cb",
            b"a\\b",
            b"%00",
        ] {
            assert_eq!(
                decode_segment(bad),
                Err(Status(403)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(decode_segment(b"%zz"), Err(Status(400)));
        assert_eq!(decode_segment(b"%4"), Err(Status(400)));
        // Found by the http_request fuzz target: a sign is not a hex digit.
        assert_eq!(decode_segment(b"%+a"), Err(Status(400)));
        assert_eq!(decode_segment(b"%-0"), Err(Status(400)));
        assert_eq!(decode_segment(b"a%2Fb"), Err(Status(403)));
        assert_eq!(
            decode_segment(b"%C3%A9").unwrap().as_bytes(),
            "é".as_bytes()
        );
        assert_eq!(decode_segment(b"a%20b").unwrap().as_bytes(), b"a b");
        assert_eq!(decode_segment(b"...").unwrap().as_bytes(), b"...");
    }

    #[test]
    fn fuzz_seed_requests_named_get_or_head_parse() {
        // The http_request corpus: 8 bytes of file size, then the request. Its
        // valid seeds must stay valid, so the fuzzer keeps reaching the path
        // and Range parsers.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_request");
        let mut valid = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("get-") || name.starts_with("head-")) {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let req = &bytes[8..];
            let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let r = parse_request(&req[..end]).unwrap_or_else(|s| panic!("{name}: {s:?}"));
            decode_path(r.target).unwrap_or_else(|s| panic!("{name}: {s:?}"));
            valid += 1;
        }
        assert!(valid >= 3, "corpus has {valid} valid requests");
    }

    #[test]
    fn request_heads_parse_strictly() {
        let r = parse_request(b"GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2\r\n\r\n").unwrap();
        assert!(
            r.keep_alive && !r.head_only && r.range == Some(&b"bytes=1-2"[..]) && r.target == b"/a"
        );
        let r = parse_request(b"HEAD /a HTTP/1.0\r\n\r\n").unwrap();
        assert!(!r.keep_alive && r.head_only);
        assert!(
            parse_request(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .is_ok_and(|r| !r.keep_alive)
        );
        assert_eq!(
            parse_request(b"GET /a HTTP/1.1\r\n\r\n").err(),
            Some(Status(400))
        );
        assert_eq!(
            parse_request(b"POST /a HTTP/1.1\r\nHost: x\r\n\r\n").err(),
            Some(Status(405))
        );
        assert_eq!(
            parse_request(b"GET /a HTTP/2.0\r\nHost: x\r\n\r\n").err(),
            Some(Status(505))
        );
        assert_eq!(
            parse_request(b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").err(),
            Some(Status(400))
        );
        assert_eq!(
            parse_request(b"GET  /a HTTP/1.1\r\nHost: x\r\n\r\n").err(),
            Some(Status(400))
        );
        assert_eq!(
            parse_request(b"GET /a HTTP/1.1\r\nbroken\r\n\r\n").err(),
            Some(Status(400))
        );
    }

    #[test]
    fn header_lines_rfc_9112_forbids_are_400() {
        for bad in [
            &b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"[..],
            b"GET /a HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\nX\tY: z\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\nX:\ta\rb\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
            b"GET /a\r HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"GET /a HTTP/1.0\r\nHost: x\r\nhost: x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\n: z\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"G(T /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(bad).err(),
                Some(Status(400)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Optional whitespace around values, obs-text and an empty value are fine.
        let r = parse_request(b"GET /a HTTP/1.1\r\nHost:x\r\nX-A:\t b \t\r\nX-B:\r\nX-C: \xe9\r\nRange:  bytes=1-2 \r\n\r\n").unwrap();
        assert_eq!(r.range, Some(&b"bytes=1-2"[..]));
        // A token method other than GET and HEAD is 405, not 400.
        assert_eq!(
            parse_request(b"DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n").err(),
            Some(Status(405))
        );
    }
}
