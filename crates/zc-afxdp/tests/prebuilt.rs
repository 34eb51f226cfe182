//! The committed `bpf/zc_filter.bpf.o` and `bpf/zc_filter_nic.bpf.o`
//! (embedded on docs.rs, which has no clang) must be the objects the build
//! script compiles on this machine.

#[test]
fn committed_filter_objects_match_the_built_ones() {
    let objects: [(&str, &[u8], &[u8]); 2] = [
        (
            "zc_filter.bpf.o",
            include_bytes!(concat!(env!("OUT_DIR"), "/zc_filter.bpf.o")),
            include_bytes!("../bpf/zc_filter.bpf.o"),
        ),
        (
            "zc_filter_nic.bpf.o",
            include_bytes!(concat!(env!("OUT_DIR"), "/zc_filter_nic.bpf.o")),
            include_bytes!("../bpf/zc_filter_nic.bpf.o"),
        ),
    ];
    for (name, built, committed) in objects {
        assert!(
            built == committed,
            "bpf/{name} is stale: run ./build/regen-prebuilt.sh and commit the result"
        );
    }
}
