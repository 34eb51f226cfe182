//! The fuzz seed corpus in `fuzz/corpus/` parses as the fuzzer expects: valid
//! frames stay valid, so the corpus keeps reaching the deep paths.

use std::path::Path;
use zc_core::wire::parse_udp_frame;

#[test]
fn seed_corpus_frames_named_valid_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frame_and_message");
    let mut valid = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let parsed = parse_udp_frame(&bytes);
        if name.starts_with("valid") {
            parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
            valid += 1;
        } else {
            assert!(parsed.is_err(), "{name} should be refused");
        }
    }
    assert!(valid >= 3, "corpus has {valid} valid frames");
}
