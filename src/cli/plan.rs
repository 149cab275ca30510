//! `curfew plan`: every transition per environment in a window.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{check_window, load_config};
use crate::calendar::format;
use crate::planner::{DEFAULT_SPAN, EnvironmentPlan};

/// The JSON document `plan --json` prints.
#[derive(Debug, Serialize)]
struct PlanDocument {
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    from: DateTime<Utc>,
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    to: DateTime<Utc>,
    environments: Vec<EnvironmentPlan>,
}

/// Prints the plan of `path` over `[from, to)` (default seven days); exit 2 on a bad config.
pub fn run(path: &Path, from: DateTime<Utc>, to: Option<DateTime<Utc>>, json: bool) -> u8 {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let to = to.unwrap_or(from + DEFAULT_SPAN);
    if let Err(code) = check_window(from, to) {
        return code;
    }
    let environments = config.plan(from, to);
    if json {
        let document = PlanDocument {
            from,
            to,
            environments,
        };
        match serde_json::to_string_pretty(&document) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                return 1;
            }
        }
    } else {
        print!("{}", table(&environments, from, to));
    }
    0
}

/// The plan as a human-readable table.
fn table(environments: &[EnvironmentPlan], from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let mut out = format!(
        "plan from {} to {}\n",
        from.format("%Y-%m-%d %H:%M UTC"),
        to.format("%Y-%m-%d %H:%M UTC")
    );
    for environment in environments {
        out += &format!(
            "\n{} (schedule {}, {}): {} at start, {}\n",
            environment.name,
            environment.schedule,
            environment.timezone,
            environment.state,
            environment.reason
        );
        for target in &environment.targets {
            out += &format!("  target  {target}\n");
        }
        if environment.transitions.is_empty() {
            out += "  no transitions\n";
        }
        for transition in &environment.transitions {
            out += &format!(
                "  {}  {:<25}  {:<4}  {}\n",
                transition.at.format("%Y-%m-%dT%H:%M:%SZ"),
                transition.local,
                transition.direction,
                transition.rule
            );
        }
    }
    out
}
