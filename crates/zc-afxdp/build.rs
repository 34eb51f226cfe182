//! Compiles the XDP filter (`bpf/zc_filter.bpf.c`) with `clang -target bpf`
//! into `$OUT_DIR/zc_filter.bpf.o` and `$OUT_DIR/zc_filter_nic.bpf.o` (see
//! `OBJECTS`), which the crate embeds with `include_bytes!`,
//! with the include directories xdp-sys exports (`DEP_XDP_INCLUDE`).
//!
//! On docs.rs (`DOCS_RS` set), which has no clang nor kernel headers, the
//! committed `bpf/*.bpf.o` are embedded instead. The compile is made
//! reproducible (`-fdebug-prefix-map`: no build path in the object's debug
//! info), so `tests/prebuilt.rs` can check the committed object against the
//! one built here; `build/regen-prebuilt.sh` refreshes it.

use std::path::PathBuf;
use std::process::Command;

/// The objects built from the one source: the plain filter, and the variant
/// that also asks the driver for the NIC's receive stamp (`-DZC_NIC_STAMP`:
/// the `bpf_xdp_metadata_rx_timestamp` kfunc, which needs a device-bound
/// program and a kernel that has it, so it lives in its own object).
const OBJECTS: [(&str, &[&str]); 2] = [
    ("zc_filter.bpf.o", &[]),
    ("zc_filter_nic.bpf.o", &["-DZC_NIC_STAMP"]),
];

fn main() {
    let src = "bpf/zc_filter.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if std::env::var_os("DOCS_RS").is_some() {
        for (name, _) in OBJECTS {
            let prebuilt = format!("bpf/{name}");
            println!("cargo:rerun-if-changed={prebuilt}");
            if let Err(e) = std::fs::copy(&prebuilt, out_dir.join(name)) {
                eprintln!("zc-afxdp: cannot copy {prebuilt} for the docs.rs build: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    // xdp-sys exports the directories of libbpf's and the kernel's headers
    // (with Debian's multiarch one, where <asm/types.h> lives).
    println!("cargo:rerun-if-env-changed=DEP_XDP_INCLUDE");
    let includes = std::env::var_os("DEP_XDP_INCLUDE").unwrap_or_default();
    for (name, defines) in OBJECTS {
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .args(defines)
            .arg(format!("-fdebug-prefix-map={manifest_dir}=."))
            .args(
                std::env::split_paths(&includes)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| format!("-I{}", p.display())),
            )
            .args(["-c", src, "-o"])
            .arg(out_dir.join(name))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("zc-afxdp: `{clang} -target bpf` failed ({s}) on {src} for {name}; it needs the kernel and libbpf headers: `apt-get install clang libbpf-dev linux-libc-dev`");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("zc-afxdp: cannot run `{clang}` ({e}) to compile the XDP filter: `apt-get install clang` (or set BPF_CLANG)");
                std::process::exit(1);
            }
        }
    }
}
