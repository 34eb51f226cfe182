//! Finds libbpf with pkg-config and generates bindings with bindgen.
//!
//! Only what zc needs is bound (allowlists), so a new libbpf with more
//! declarations does not change the generated API by accident.
//!
//! libxdp is not bound: zc-afxdp loads its own XDP program with libbpf and
//! drives the AF_XDP rings itself, so linking libxdp would only make a
//! missing libxdp fail the build for nothing.
//!
//! For crates that compile C against the same headers (zc-afxdp's XDP
//! filter), the include directories are exported through the `links`
//! metadata: `DEP_XDP_INCLUDE`, separated by `:`, with the multiarch
//! directory that holds `<asm/types.h>` on Debian first.
//!
//! On docs.rs (`DOCS_RS` set), where neither libbpf nor libclang is
//! installed, the committed `bindings/libbpf.rs` is used instead and nothing
//! is probed or exported. `tests/pregenerated.rs` checks that file against
//! the bindings generated here; `build/regen-prebuilt.sh` refreshes it.

use std::env;
use std::path::PathBuf;

/// Debian/Ubuntu packages that provide each pkg-config module.
const PACKAGES: &[(&str, &str, &str)] = &[("libbpf", "1.0", "libbpf-dev")];

/// The bindings generated on Debian 12 (libbpf 1.1, clang 14), for docs.rs.
const PREGENERATED: &str = "bindings/libbpf.rs";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if env::var_os("DOCS_RS").is_some() {
        println!("cargo:rerun-if-changed={PREGENERATED}");
        if let Err(e) = std::fs::copy(PREGENERATED, out.join("bindings.rs")) {
            eprintln!("xdp-sys: cannot copy {PREGENERATED} for the docs.rs build: {e}");
            std::process::exit(1);
        }
        return;
    }

    let mut include_paths = Vec::new();
    for (module, min, package) in PACKAGES {
        match pkg_config::Config::new().atleast_version(min).probe(module) {
            Ok(lib) => include_paths.extend(lib.include_paths),
            Err(e) => {
                eprintln!(
                    "xdp-sys: {module} >= {min} not found through pkg-config: {e}\n\
                     xdp-sys: install it: `apt-get install {package} libelf-dev zlib1g-dev` \
                     (or run ./build/install-deps.sh as root)"
                );
                std::process::exit(1);
            }
        }
    }

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // The AF_XDP kernel ABI (linux/if_xdp.h) and the attach flags (linux/if_link.h).
        .allowlist_type("sockaddr_xdp")
        .allowlist_type("xdp_umem_reg")
        .allowlist_type("xdp_mmap_offsets")
        .allowlist_type("xdp_ring_offset")
        .allowlist_type("xdp_desc")
        .allowlist_type("xdp_statistics")
        .allowlist_type("xdp_options")
        .allowlist_var("XDP_.*")
        .allowlist_var("XSK_.*")
        .allowlist_var("SOL_XDP")
        .allowlist_var("AF_XDP")
        // libbpf: loading an object, its maps and programs, attaching to XDP.
        .allowlist_function("bpf_object__.*")
        .allowlist_function("bpf_program__.*")
        .allowlist_function("bpf_map__.*")
        .allowlist_function("bpf_map_(update|delete|lookup)_elem")
        .allowlist_function("bpf_xdp_(attach|detach|query|query_id)")
        .allowlist_function("bpf_link_(create|detach)")
        .allowlist_type("bpf_link_create_opts")
        .allowlist_function(
            "libbpf_(get_error|strerror|set_print|major_version|minor_version|num_possible_cpus)",
        )
        .allowlist_type("bpf_xdp_query_opts")
        .allowlist_type("bpf_xdp_attach_opts")
        .opaque_type("bpf_object")
        .opaque_type("bpf_program")
        .opaque_type("bpf_map")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .derive_default(true)
        .layout_tests(true);
    for p in &include_paths {
        builder = builder.clang_arg(format!("-I{}", p.display()));
    }
    let bindings = match builder.generate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "xdp-sys: bindgen could not parse the libbpf headers: {e}\n\
                 xdp-sys: install clang's library: `apt-get install libclang-dev libbpf-dev`"
            );
            std::process::exit(1);
        }
    };
    if let Some(dir) = multiarch_include() {
        include_paths.insert(0, dir);
    }
    let joined = env::join_paths(&include_paths).expect("include paths without ':'");
    println!("cargo:include={}", joined.to_string_lossy());

    if let Err(e) = bindings.write_to_file(out.join("bindings.rs")) {
        eprintln!(
            "xdp-sys: cannot write {}: {e}",
            out.join("bindings.rs").display()
        );
        std::process::exit(1);
    }
}

/// The Debian multiarch include directory of the target (`/usr/include/
/// x86_64-linux-gnu`), which holds `<asm/types.h>`: a C compiler finds it by
/// itself, but `clang -target bpf` does not.
fn multiarch_include() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let dir = PathBuf::from(format!("/usr/include/{arch}-linux-{env}"));
    dir.join("asm/types.h").exists().then_some(dir)
}
