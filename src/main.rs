//! The curfew binary: parse the command line, install the zone database and dispatch; nothing
//! else.
// Denied, not forbidden: `allocator` makes the one call to the C library that needs it.
#![deny(unsafe_code)]

mod allocator;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    allocator::return_freed_memory();
    // One TLS crypto provider for every client (kube, AWS); rustls panics without one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = curfew::cli::Cli::parse();
    // Zone rules: the system's tz database when it is newer than the embedded data. Before
    // anything compiles a schedule, so that every zone comes from one place.
    curfew::zoneinfo::install();
    curfew::telemetry::init_tracing(cli.log_format);
    ExitCode::from(curfew::cli::run(cli))
}
