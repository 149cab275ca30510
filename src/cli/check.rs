//! `curfew check`: validate a configuration and summarise it on one screen.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::EXIT_BAD_INPUT;
use crate::calendar::format::for_people;
use crate::config::{Config, Error};
use crate::planner;
use crate::zoneinfo;

/// Validates `path` and the tokens file it names; prints a summary (exit 0) or every error
/// (exit 2).
pub fn run(path: &Path, now: DateTime<Utc>) -> u8 {
    match Config::load(path) {
        Ok(config) => {
            if let Err(code) = super::load_tokens(&config, None) {
                return code;
            }
            print!("{}", summary(&config, now));
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
    let mut out = format!("{}: OK\n", config.path.display());
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
