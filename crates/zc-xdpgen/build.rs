//! Compiles the generator and sink XDP programs (`bpf/*.bpf.c`) with
//! `clang -target bpf` into `$OUT_DIR`, where the crate embeds them with
//! `include_bytes!`, against the include directories xdp-sys exports
//! (`DEP_XDP_INCLUDE`).
//!
//! On docs.rs (`DOCS_RS` set), which has no clang nor kernel headers, the
//! committed `bpf/*.bpf.o` are embedded instead. The compile is reproducible
//! (`-fdebug-prefix-map`: no build path in the objects' debug info), so
//! `tests/prebuilt.rs` checks the committed objects against the ones built
//! here; `build/regen-prebuilt.sh` refreshes them.

use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["zc_xdpgen", "zc_xdpsink"];

fn main() {
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    println!("cargo:rerun-if-env-changed=DEP_XDP_INCLUDE");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if std::env::var_os("DOCS_RS").is_some() {
        for name in PROGRAMS {
            let prebuilt = format!("bpf/{name}.bpf.o");
            println!("cargo:rerun-if-changed={prebuilt}");
            if let Err(e) = std::fs::copy(&prebuilt, out_dir.join(format!("{name}.bpf.o"))) {
                eprintln!("zc-xdpgen: cannot copy {prebuilt} for the docs.rs build: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    // xdp-sys exports the directories of libbpf's and the kernel's headers
    // (with Debian's multiarch one, where <asm/types.h> lives).
    let includes = std::env::var_os("DEP_XDP_INCLUDE").unwrap_or_default();
    for name in PROGRAMS {
        let src = format!("bpf/{name}.bpf.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-fdebug-prefix-map={manifest_dir}=."))
            .args(
                std::env::split_paths(&includes)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| format!("-I{}", p.display())),
            )
            .args(["-c", &src, "-o"])
            .arg(out_dir.join(format!("{name}.bpf.o")))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("zc-xdpgen: `{clang} -target bpf` failed ({s}) on {src}; it needs the kernel and libbpf headers: `apt-get install clang libbpf-dev linux-libc-dev`");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("zc-xdpgen: cannot run `{clang}` ({e}) to compile {src}: `apt-get install clang` (or set BPF_CLANG)");
                std::process::exit(1);
            }
        }
    }
}
