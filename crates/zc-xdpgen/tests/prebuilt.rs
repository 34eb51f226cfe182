//! The committed `bpf/*.bpf.o` (embedded on docs.rs, which has no clang) must
//! be the objects the build script compiles on this machine.

#[test]
fn committed_program_objects_match_the_built_ones() {
    let pairs: [(&str, &[u8], &[u8]); 2] = [
        (
            "zc_xdpgen",
            include_bytes!(concat!(env!("OUT_DIR"), "/zc_xdpgen.bpf.o")),
            include_bytes!("../bpf/zc_xdpgen.bpf.o"),
        ),
        (
            "zc_xdpsink",
            include_bytes!(concat!(env!("OUT_DIR"), "/zc_xdpsink.bpf.o")),
            include_bytes!("../bpf/zc_xdpsink.bpf.o"),
        ),
    ];
    for (name, built, committed) in pairs {
        assert!(
            built == committed,
            "bpf/{name}.bpf.o is stale: run ./build/regen-prebuilt.sh and commit the result"
        );
    }
}
