//! The committed `bpf/zc_filter.bpf.o` (embedded on docs.rs, which has no
//! clang) must be the object the build script compiles on this machine.

#[test]
fn committed_filter_object_matches_the_built_one() {
    let built: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/zc_filter.bpf.o"));
    let committed: &[u8] = include_bytes!("../bpf/zc_filter.bpf.o");
    assert!(
        built == committed,
        "bpf/zc_filter.bpf.o is stale: run ./build/regen-prebuilt.sh and commit the result"
    );
}
