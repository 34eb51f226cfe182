//! The committed `bindings/libbpf.rs` (used on docs.rs, where the system
//! library is absent) must be what the build script generates on this machine.

#[test]
fn committed_bindings_match_the_generated_ones() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
    let committed = include_str!("../bindings/libbpf.rs");
    assert!(
        generated == committed,
        "bindings/libbpf.rs is stale: run ./build/regen-prebuilt.sh and commit the result"
    );
}
