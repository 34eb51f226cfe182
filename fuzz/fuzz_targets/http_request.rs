//! The file server's request parsing on arbitrary bytes: the head parser, the
//! path decoder and the `Range` parser, with the properties `open_below` and
//! the response rely on.
//!
//! Input: 8 bytes of file size (little endian), then what a client sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zc_linux::fuzzing::{decode_path, parse_range, parse_request, RangeSpec};

/// A strict percent-decoder (RFC 3986: `%` and exactly two hex digits) to
/// compare against; `None` for a malformed escape.
fn reference_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let h = raw.get(i + 1..i + 3)?;
            if !h.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = |b: u8| (b as char).to_digit(16).unwrap() as u8;
            out.push(hex(h[0]) << 4 | hex(h[1]));
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

fn check_path(target: &[u8]) {
    let Ok(segments) = decode_path(target) else {
        return;
    };
    let path = target.split(|&b| b == b'?' || b == b'#').next().unwrap();
    let raw: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(segments.len(), raw.len());
    for (seg, raw) in segments.iter().zip(raw) {
        let b = seg.as_bytes();
        assert!(!b.is_empty(), "empty segment from {raw:?}");
        assert!(
            !b.contains(&b'/') && !b.contains(&b'\\') && !b.contains(&0),
            "separator or NUL in {b:?}"
        );
        assert!(b != b"." && b != b"..", "dot segment {b:?} from {raw:?}");
        assert_eq!(
            reference_decode(raw).as_deref(),
            Some(b),
            "{raw:?} decoded leniently"
        );
    }
}

fn check_range(value: &[u8], size: u64) {
    match parse_range(value, size) {
        RangeSpec::Part(start, end) => {
            assert!(start <= end && end < size, "{start}-{end} of {size}")
        }
        RangeSpec::Unsatisfiable => {}
        RangeSpec::Full => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((size, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    // Small sizes most of the time, so ranges meet the end of the file.
    let size = u64::from_le_bytes(*size) >> (size[7] & 63);
    check_range(rest, size);
    check_path(rest);
    // As the connection does: the head runs to the first blank line.
    let Some(p) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let head = &rest[..p + 4];
    let Ok(req) = parse_request(head) else { return };
    // RFC 9112: an accepted head has no bare CR, and every field name is a
    // token, with nothing between it and its colon.
    for (i, l) in head[..head.len() - 4].split(|&b| b == b'\n').enumerate() {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        assert!(!l.contains(&b'\r'), "bare CR accepted in {l:?}");
        if i > 0 {
            let colon = l.iter().position(|&b| b == b':').unwrap();
            let name = &l[..colon];
            assert!(
                !name.is_empty() && !name.iter().any(|b| b" \t".contains(b)),
                "field name {name:?} accepted"
            );
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap();
    assert!(line.starts_with(if req.head_only { b"HEAD " } else { b"GET " }));
    assert!(!req.target.contains(&b' ') && !req.target.contains(&b'\n'));
    if let Some(r) = req.range {
        assert!(!r.contains(&b'\n'));
        check_range(r, size);
    }
    check_path(req.target);
});
