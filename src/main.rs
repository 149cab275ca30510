//! The curfew binary: parse the command line and dispatch; nothing else.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = curfew::cli::Cli::parse();
    curfew::telemetry::init_tracing();
    ExitCode::from(curfew::cli::run(cli))
}
