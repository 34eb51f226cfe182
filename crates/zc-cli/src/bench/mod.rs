//! `zc bench`: every chosen backend on the same veth testbed and the same traffic.
//!
//! - `args`: the command line and its defaults.
//! - `run`: the testbeds, the runs and what each measured.
//! - `itch`: the ITCH feed run (`--itch`), from the wire to the order book.
//! - `report`: the tables, and the JSON, Markdown and SVG files.

mod args;
mod itch;
mod report;
mod run;

pub use args::BenchArgs;
pub use run::run;
