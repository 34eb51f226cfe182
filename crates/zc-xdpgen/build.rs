//! Compiles the generator and sink XDP programs (`bpf/*.bpf.c`) with
//! `clang -target bpf` into `$OUT_DIR`, where the crate embeds them with
//! `include_bytes!`.

use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["zc_xdpgen", "zc_xdpsink"];

fn main() {
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    // <asm/types.h> lives under the multiarch directory on Debian.
    let multiarch = match std::env::var("CARGO_CFG_TARGET_ARCH")
        .unwrap_or_default()
        .as_str()
    {
        "x86_64" => "x86_64-linux-gnu".to_owned(),
        "aarch64" => "aarch64-linux-gnu".to_owned(),
        other => other.to_owned(),
    };
    for name in PROGRAMS {
        let src = format!("bpf/{name}.bpf.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I/usr/include/{multiarch}"))
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
