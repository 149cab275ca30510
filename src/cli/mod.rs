//! The command line: each command is a small function over the library.
//!
//! Every command returns an [`ExitCode`]-style number: 0 success, 1 failure at run time,
//! 2 bad input (invalid configuration, spec or arguments).

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Parser, Subcommand};

mod check;
mod client;
mod demo_clock;
mod demo_upstream;
mod dry_run;
mod eval;
mod explain;
mod plan;
mod service;
mod simulate;

pub use self::client::degraded_text;

/// Exit status for bad input: invalid configuration, spec or arguments.
pub const EXIT_BAD_INPUT: u8 = 2;

/// curfew: a cost-aware scheduled scaler for staging infrastructure.
#[derive(Debug, Parser)]
#[command(name = "curfew", version, about, long_about = None)]
pub struct Cli {
    /// Log format: text for people, json (one object per line) for log pipelines.
    #[arg(
        long,
        global = true,
        env = "CURFEW_LOG_FORMAT",
        default_value = "text",
        value_parser = parse_log_format
    )]
    pub log_format: crate::telemetry::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a configuration: exit 0 with a summary, or 2 listing every error.
    Check {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Summarise as of this instant (RFC 3339 or YYYY-MM-DD, UTC); default now.
        #[arg(long, value_parser = parse_instant)]
        at: Option<DateTime<Utc>>,
        /// Also discover what the targets select now, and what curfew must leave alone
        /// (exit 1 when discovery fails).
        #[arg(long)]
        discover: bool,
    },
    /// Show every transition per environment in a window (default: now to +7 days).
    Plan {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Start of the window (RFC 3339 or YYYY-MM-DD, UTC); default now.
        #[arg(long, value_parser = parse_instant)]
        from: Option<DateTime<Utc>>,
        /// End of the window (RFC 3339 or YYYY-MM-DD, UTC); default start + 7 days.
        #[arg(long, value_parser = parse_instant)]
        to: Option<DateTime<Utc>>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Decide one spec at one instant; without flags, JSON lines on stdin.
    Eval {
        /// A spec string, e.g. "Mon-Fri 07:00-20:00 Europe/Berlin".
        #[arg(long, requires = "at")]
        spec: Option<String>,
        /// The instant (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_instant, requires = "spec")]
        at: Option<DateTime<Utc>>,
        /// Zone for windows without their own (default UTC).
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Forecast cost per environment with and without the schedule.
    Simulate {
        /// The configuration file (its `simulation:` section gives the capacity, unless
        /// --discover).
        #[arg(short, long)]
        config: PathBuf,
        /// Start of the window (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_instant, required_unless_present = "month", requires = "to")]
        from: Option<DateTime<Utc>>,
        /// End of the window (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_instant, requires = "from")]
        to: Option<DateTime<Utc>>,
        /// The window is this calendar month, in UTC (YYYY-MM), instead of --from/--to.
        #[arg(long, value_parser = simulate::parse_month, conflicts_with_all = ["from", "to"])]
        month: Option<(DateTime<Utc>, DateTime<Utc>)>,
        /// Price what the configured targets select now, discovered read-only through the
        /// real providers (Kubernetes, AWS), instead of the `simulation:` section.
        #[arg(long)]
        discover: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Explain an environment: why it is in its state, each target's actual and desired
    /// capacity, what blocks convergence, the next transitions.
    Explain {
        /// The environment.
        environment: String,
        /// Work standalone from this configuration and a read-only discovery, instead of
        /// asking a running service.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Explain as of this instant (standalone only; RFC 3339 or YYYY-MM-DD, UTC); default
        /// now.
        #[arg(long, value_parser = parse_instant, requires = "config")]
        at: Option<DateTime<Utc>>,
        /// The state directory whose overrides apply (standalone only; default: the
        /// configuration's `state.dir`).
        #[arg(long, requires = "config")]
        state_dir: Option<PathBuf>,
        /// The service and token (without --config).
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Run the service: keep every target converged to the calendar.
    Run(service::RunArgs),
    /// The full service on the embedded simulated estate; no cloud needed.
    Demo(service::DemoArgs),
    /// Show each environment of a running service: state, next change, overrides.
    Status {
        /// The service and token.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Create, list, extend or cancel overrides on a running service.
    Override {
        /// What to do.
        #[command(subcommand)]
        command: OverrideCommand,
    },
    /// Show the audit log of a running service, newest first.
    Audit {
        /// Only entries of this environment.
        #[arg(long = "env")]
        environment: Option<String>,
        /// Only entries at or after this instant (RFC 3339, YYYY-MM-DDTHH:MM in UTC, or
        /// YYYY-MM-DD).
        #[arg(long, value_parser = parse_instant)]
        since: Option<DateTime<Utc>>,
        /// At most this many entries (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// The service and token.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Print curfew's version, git commit, providers and the tz database in use.
    Version,
    /// Print a completion script for a shell, e.g. `curfew completions bash >
    /// /etc/bash_completion.d/curfew`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `curfew override ...`.
#[derive(Debug, Subcommand)]
pub enum OverrideCommand {
    /// Force an environment up (or down) until a time or for a while.
    Create {
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        /// When it ends: HH:MM (next such time in the environment's zone), a local
        /// YYYY-MM-DDTHH:MM, or RFC 3339.
        #[arg(long, conflicts_with = "duration")]
        until: Option<String>,
        /// How long it lasts, e.g. 3h or 1h30m.
        #[arg(long = "for")]
        duration: Option<String>,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// The state to force.
        #[arg(long, default_value = "up", value_parser = parse_state)]
        state: crate::calendar::State,
        /// The service and token.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// List the active overrides.
    List {
        /// The service and token.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Cancel an override: the calendar decides again at once.
    Cancel {
        /// The override's id.
        id: String,
        /// The service and token.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Extend an active override: it ends that much later.
    Extend {
        /// The override's id.
        id: String,
        /// How much longer, e.g. 2h or 1h30m.
        #[arg(long = "for")]
        duration: String,
        /// The service and token.
        #[command(flatten)]
        server: client::ServerArgs,
    },
}

fn parse_log_format(text: &str) -> Result<crate::telemetry::LogFormat, String> {
    text.parse()
}

fn parse_state(text: &str) -> Result<crate::calendar::State, String> {
    text.parse()
}

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: Cli) -> u8 {
    let now = Utc::now();
    match cli.command {
        Command::Check {
            config,
            at,
            discover,
        } => check::run(&config, at.unwrap_or(now), discover),
        Command::Plan {
            config,
            from,
            to,
            json,
        } => plan::run(&config, from.unwrap_or(now), to, json),
        Command::Eval { spec, at, timezone } => match (spec, at) {
            (Some(spec), Some(at)) => eval::single(&spec, at, &timezone),
            _ => eval::batch(std::io::stdin().lock(), std::io::stdout().lock(), &timezone),
        },
        Command::Simulate {
            config,
            from,
            to,
            month,
            discover,
            json,
        } => {
            // clap requires --from and --to together unless --month is given.
            match month.or(from.zip(to)) {
                Some((from, to)) => simulate::run(&config, from, to, discover, json),
                None => {
                    eprintln!("error: give --month, or --from and --to");
                    EXIT_BAD_INPUT
                }
            }
        }
        Command::Explain {
            environment,
            config,
            at,
            state_dir,
            server,
        } => match config {
            Some(config) => explain::standalone(
                explain::Standalone {
                    config: &config,
                    state_dir: state_dir.as_deref(),
                    at: at.unwrap_or(now),
                },
                &environment,
                server.json,
            ),
            None => explain::from_server(server, &environment),
        },
        Command::Run(args) => service::run(args),
        Command::Demo(args) => service::demo(args),
        Command::Status { server } => client::status(server),
        Command::Override { command } => match command {
            OverrideCommand::Create {
                environment,
                until,
                duration,
                reason,
                state,
                server,
            } => client::create(
                server,
                client::CreateArgs {
                    environment,
                    state,
                    until,
                    duration,
                    reason,
                },
            ),
            OverrideCommand::List { server } => client::list(server),
            OverrideCommand::Cancel { id, server } => client::cancel(server, &id),
            OverrideCommand::Extend {
                id,
                duration,
                server,
            } => client::extend(server, &id, &duration),
        },
        Command::Audit {
            environment,
            since,
            limit,
            server,
        } => client::audit(server, environment.as_deref(), since, limit),
        Command::Version => {
            print!("{}", version());
            0
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "curfew", &mut std::io::stdout());
            0
        }
    }
}

/// The providers built into this binary, by Cargo feature.
fn providers() -> String {
    let built_in = [
        (cfg!(feature = "kubernetes"), "kubernetes"),
        (cfg!(feature = "aws"), "aws (autoscaling, ec2, eks, rds)"),
        (true, "simulated"),
    ];
    built_in
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `curfew version` prints: the release, the commit it was built from, the providers
/// and the tz database in use.
pub fn version() -> String {
    format!(
        "curfew {}\ncommit {}\nproviders {}\ntz database {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("CURFEW_GIT_COMMIT"),
        providers(),
        crate::zoneinfo::install().provenance()
    )
}

/// Loads and validates a configuration, printing every error; `Err` holds the exit status.
fn load_config(path: &std::path::Path) -> Result<crate::config::Config, u8> {
    crate::config::Config::load(path).map_err(|err| {
        eprintln!("{err}");
        EXIT_BAD_INPUT
    })
}

/// Loads and checks the tokens the API accepts (`tokens_file`, else the configuration's
/// `server.tokens_file`, else none), printing every problem; `Err` holds the exit status.
fn load_tokens(
    config: &crate::config::Config,
    tokens_file: Option<&std::path::Path>,
) -> Result<crate::api::Tokens, u8> {
    crate::api::load_tokens(config, tokens_file).map_err(|err| {
        eprintln!("{err}");
        if let crate::api::auth::Error::Invalid(problems) = &err
            && let Some(first) = problems.first()
        {
            eprintln!("{}", error_count(&first.file, problems.len()));
        }
        EXIT_BAD_INPUT
    })
}

/// Prints `header`, then each selection that could not be discovered as `ENV: SELECTION:
/// ERROR; hint: ...`, to stderr.
fn print_unseen<'a>(
    header: &str,
    unseen: impl Iterator<Item = (&'a str, &'a str, &'a crate::providers::Error)>,
) {
    eprintln!("{header}");
    for (environment, selection, error) in unseen {
        eprintln!("  {environment}: {selection}: {}", error.with_hint());
    }
}

/// `FILE: 3 errors`.
fn error_count(path: &std::path::Path, count: usize) -> String {
    format!(
        "{}: {count} error{}",
        path.display(),
        if count == 1 { "" } else { "s" }
    )
}

/// Checks that a time window is not empty; `Err` holds the exit status.
fn check_window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), u8> {
    if to <= from {
        eprintln!("error: --to ({to}) must be after --from ({from})");
        return Err(EXIT_BAD_INPUT);
    }
    Ok(())
}

/// Parses an instant: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` (UTC) or `YYYY-MM-DD` (UTC midnight).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .ok_or_else(|| format!("'{text}' is not an instant (expected RFC 3339 or YYYY-MM-DD)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_in_several_forms() {
        let want = "2026-12-01T07:00:00Z";
        assert_eq!(
            parse_instant(want).unwrap().to_rfc3339(),
            "2026-12-01T07:00:00+00:00"
        );
        assert_eq!(
            parse_instant("2026-12-01T08:00:00+01:00").unwrap(),
            parse_instant(want).unwrap()
        );
        assert_eq!(
            parse_instant("2026-12-01T07:00").unwrap(),
            parse_instant(want).unwrap()
        );
        assert_eq!(
            parse_instant("2026-12-01").unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert!(parse_instant("tomorrow").is_err());
    }
}
