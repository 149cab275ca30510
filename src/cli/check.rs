//! `curfew check`: validate a configuration and summarise it on one screen; with
//! `--discover`, also list what its targets select now and what curfew must leave alone.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::EXIT_BAD_INPUT;
use crate::calendar::format::for_people;
use crate::clock::SystemClock;
use crate::config::{Config, Error};
use crate::domain::Target;
use crate::planner;
use crate::providers::Discovery;
use crate::providers::sim::Estate;
use crate::service;
use crate::zoneinfo;

/// Validates `path` and the tokens file it names; prints a summary (exit 0) or every error
/// (exit 2). With `discover`, it then discovers the targets (exit 1 when that fails).
pub fn run(path: &Path, now: DateTime<Utc>, discover: bool) -> u8 {
    match Config::load(path) {
        Ok(config) => {
            if let Err(code) = super::load_tokens(&config, None) {
                return code;
            }
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            print!("{}", summary(&config, now));
            if discover {
                return discovery(&config, now);
            }
            0
        }
        Err(err) => {
            eprintln!("{err}");
            if let Error::Invalid(diagnostics) = &err {
                eprintln!("{}", super::error_count(path, diagnostics.len()));
            }
            EXIT_BAD_INPUT
        }
    }
}

/// A one-screen summary of a valid configuration as of `now`.
pub fn summary(config: &Config, now: DateTime<Utc>) -> String {
    let mut out = match config.warnings.len() {
        0 => format!("{}: OK\n", config.path.display()),
        1 => format!("{}: OK, 1 warning\n", config.path.display()),
        n => format!("{}: OK, {n} warnings\n", config.path.display()),
    };
    out += &format!("  default zone  {}\n", config.timezone.name());
    out += &format!("  zone data     {}\n", zoneinfo::install().provenance());
    for (name, days) in &config.calendars {
        let upcoming = days
            .next_on_or_after(now.date_naive())
            .map_or_else(|| "none upcoming".to_string(), |d| format!("next {d}"));
        out += &format!("  calendar      {name}: {} days, {upcoming}\n", days.len());
    }
    for (name, schedule) in &config.schedules {
        out += &format!("  schedule      {name} ({})\n", schedule.zone().name());
    }
    for environment in config.environments.values() {
        let schedule = config.schedule_of(environment);
        let (decision, reason) = planner::decide(schedule, now);
        let next = decision.next_change.map_or_else(
            || "no change within two years".to_string(),
            |at| format!("changes {}", for_people(at, schedule.zone())),
        );
        out += &format!(
            "  environment   {}: schedule {}, {} target group{}; now {} ({reason}), {next}\n",
            environment.name,
            environment.schedule,
            environment.targets.len(),
            if environment.targets.len() == 1 {
                ""
            } else {
                "s"
            },
            decision.state,
        );
    }
    out
}

/// Discovers the targets of `config` (the simulated estate in memory when it has one) and
/// prints them; exit 1 when discovery fails or a target selection could not be read.
fn discovery(config: &Config, now: DateTime<Utc>) -> u8 {
    let discovered = match discover(config, now) {
        Ok(discovered) => discovered,
        Err(code) => return code,
    };
    match discovered {
        Ok(discovery) => {
            print!("{}", describe_targets(&discovery.targets));
            if discovery.undiscovered.is_empty() {
                return 0;
            }
            super::print_unseen(
                "error: targets not discovered:",
                discovery
                    .undiscovered
                    .iter()
                    .map(|u| (u.environment.as_str(), u.selection.as_str(), &u.error)),
            );
            1
        }
        Err(err) => {
            eprintln!("error: discovery: {err}");
            1
        }
    }
}

/// Discovers the targets of `config`, read-only: the simulated estate in memory when it has
/// one, else the real systems through providers built as for a dry run. The outer `Err` is
/// an exit status (no runtime), the inner one why discovery failed.
pub(super) fn discover(
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Result<Discovery, String>, u8> {
    if let Some(simulation) = &config.simulation {
        return Ok(
            Estate::from_config(simulation, config.environments.values(), now)
                .map(|estate| Discovery::complete(estate.targets(now)))
                .map_err(|err| err.to_string()),
        );
    }
    let runtime = super::service::runtime()?;
    Ok(runtime.block_on(async {
        // The state directory is only used by the simulated estate. Discovery only reads, so
        // the provider is built as for a dry run: it writes nothing.
        let provider = service::build_provider(config, Arc::new(SystemClock), Path::new("."), true)
            .await
            .map_err(|err| err.to_string())?;
        provider.discover().await.map_err(|err| err.with_hint())
    }))
}

/// One line per discovered target: id, environment, capacity, and why it is left alone when
/// curfew cannot scale it.
pub fn describe_targets(targets: &[Target]) -> String {
    let mut out = format!(
        "discovered {} target{}\n",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" }
    );
    let width = targets.iter().map(|t| t.id.len()).max().unwrap_or(0);
    for target in targets {
        out += &format!(
            "  {:<width$}  {}  {}",
            target.id, target.environment, target.capacity
        );
        if let Some(reason) = &target.rules.unusable {
            out += &format!("; left alone: {reason}");
        }
        out.push('\n');
    }
    out
}
