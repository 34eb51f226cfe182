//! Finds the system DPDK with pkg-config, generates bindings with bindgen and
//! compiles the C shim for DPDK's `static inline` hot path.
//!
//! Linking: the `-l` flags come from `pkg-config --libs libdpdk` (emitted by the
//! pkg-config crate), never from a list of our own. Debian builds DPDK as shared
//! libraries whose EAL `dlopen`s every driver in its plugin directory
//! (`DPDK_PLUGIN_PATH`, /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0) during
//! `rte_eal_init`, so net_ring, net_null, net_af_packet and net_af_xdp register
//! without being linked: rustc's default `--as-needed` is right here, and no
//! `--no-as-needed`/`--whole-archive` is needed. (A static DPDK build would
//! need the drivers' archives linked whole, since they register from
//! constructors nobody references.)
//!
//! Compiler flags: the `-I`/`-include rte_config.h` flags come from
//! `pkg-config --cflags`, minus `-march`/`-mtune`/`-mcpu` (no tuning for the
//! build machine). DPDK's headers inline SSSE3/SSE4 intrinsics (`rte_memcpy.h`),
//! so on x86-64 the shim gets `-msse4.2`: the same instruction-set floor as
//! Debian's DPDK libraries (built for `corei7`), whose EAL refuses to start on
//! a CPU without it anyway.
//!
//! On docs.rs (`DOCS_RS` set), where DPDK and libclang are not installed, the
//! committed `bindings/dpdk.rs` is used, and neither the shim nor any library
//! is built or linked (documentation needs neither). `tests/pregenerated.rs`
//! checks that file against the bindings generated here;
//! `build/regen-prebuilt.sh` refreshes it.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

const PACKAGE: &str = "libdpdk";
const MIN_VERSION: &str = "22.11";
/// The bindings generated on Debian 12 (DPDK 22.11, clang 14), for docs.rs.
const PREGENERATED: &str = "bindings/dpdk.rs";

fn fail(msg: &str) -> ! {
    eprintln!("error: dpdk-sys: {msg}");
    exit(1);
}

fn cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = Command::new(&pkg_config)
        .args(["--cflags", PACKAGE])
        .output()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run `{pkg_config}`: {e}; install the Debian package `pkg-config`"
            ))
        });
    if !out.status.success() {
        fail(&format!(
            "`{pkg_config} --cflags {PACKAGE}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut flags = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w.starts_with("-march=") || w.starts_with("-mtune=") || w.starts_with("-mcpu=") {
            continue;
        }
        if w == "-include" {
            if let Some(file) = words.next() {
                flags.push(w.to_owned());
                flags.push(file.to_owned());
            }
            continue;
        }
        flags.push(w.to_owned());
    }
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        flags.push("-msse4.2".to_owned());
    }
    flags
}

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim/zc_dpdk_shim.c");
    println!("cargo:rerun-if-changed=shim/zc_dpdk_shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=DOCS_RS");
    if env::var_os("DOCS_RS").is_some() {
        let out = PathBuf::from(
            env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set (run through cargo)")),
        );
        println!("cargo:rerun-if-changed={PREGENERATED}");
        std::fs::copy(PREGENERATED, out.join("bindings.rs")).unwrap_or_else(|e| {
            fail(&format!(
                "cannot copy {PREGENERATED} for the docs.rs build: {e}"
            ))
        });
        return;
    }

    let lib = pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .probe(PACKAGE)
        .unwrap_or_else(|e| {
            fail(&format!(
                "DPDK {MIN_VERSION} or newer was not found by pkg-config ({PACKAGE}).\n\
                 Install the Debian package `libdpdk-dev` (`apt-get install libdpdk-dev`, \
                 or run ./build/install-deps.sh), or point PKG_CONFIG_PATH at a DPDK install.\n\
                 pkg-config said: {e}"
            ))
        });
    println!("cargo:version={}", lib.version);

    let flags = cflags();

    let mut cc = cc::Build::new();
    cc.file("shim/zc_dpdk_shim.c").opt_level(3).warnings(true);
    for f in &flags {
        cc.flag(f);
    }
    cc.compile("zc_dpdk_shim");

    let out = PathBuf::from(
        env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set (run through cargo)")),
    );
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&flags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function(
            "rte_eal_(init|cleanup|hotplug_add|hotplug_remove|process_type)\
             |rte_strerror|rte_thread_(register|unregister)|rte_socket_id|rte_version\
             |rte_pktmbuf_pool_create|rte_mempool_(free|avail_count|in_use_count)\
             |rte_mempool_(create_empty|set_ops_byname|populate_iova|populate_default|obj_iter)\
             |rte_pktmbuf_(pool_init|init)|rte_mbuf_best_mempool_ops|rte_memzone_(reserve_aligned|free)\
             |rte_eth_dev_(count_avail|get_port_by_name|info_get|configure|start|stop|close\
             |socket_id|adjust_nb_rx_tx_desc|is_valid_port|get_mtu)\
             |rte_eth_(rx_queue_setup|tx_queue_setup|promiscuous_enable|promiscuous_disable|promiscuous_get\
             |stats_get|stats_reset|macaddr_get)\
             |zc_.*",
        )
        .allowlist_type("rte_mbuf|rte_mempool|rte_memzone|rte_pktmbuf_pool_private|rte_eth_conf|rte_eth_dev_info|rte_eth_stats|rte_ether_addr")
        .allowlist_var("RTE_MEMPOOL_F_NO_IOVA_CONTIG|RTE_MEMZONE_IOVA_CONTIG|RTE_CACHE_LINE_SIZE|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_PKTMBUF_HEADROOM|RTE_MAX_ETHPORTS|RTE_MAX_LCORE|RTE_ETHER_.*_LEN")
        .rustified_enum("rte_eth_rx_mq_mode|rte_eth_tx_mq_mode")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| {
            fail(&format!(
                "bindgen could not parse the DPDK headers: {e}; bindgen needs libclang: \
                 install the Debian packages `libclang-dev` and `clang`"
            ))
        });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("cannot write bindings.rs: {e}")));
}
