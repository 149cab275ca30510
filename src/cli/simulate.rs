//! `curfew simulate`: forecast cost with and without the schedule.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EXIT_BAD_INPUT, check_window, load_config};
use crate::calendar::format;
use crate::cost::forecast::{self, EnvironmentForecast};

#[derive(Serialize)]
struct ForecastDocument<'a> {
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    from: DateTime<Utc>,
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    to: DateTime<Utc>,
    currency: &'a str,
    prices_taken: Option<chrono::NaiveDate>,
    environments: Vec<EnvironmentForecast>,
}

/// Parses `YYYY-MM` as the month's first instant and the next month's, in UTC.
pub fn parse_month(text: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let first = chrono::NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a month (expected YYYY-MM, e.g. 2026-12)"))?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| format!("'{text}' is too far in the future"))?;
    let midnight = |day: chrono::NaiveDate| day.and_time(chrono::NaiveTime::MIN).and_utc();
    Ok((midnight(first), midnight(next)))
}

/// Prints the forecast of `path` over `[from, to)`: for its simulated estate, or with
/// `discover` for what its targets select now (read-only). Exit 2 for bad input, 1 when
/// discovery fails or misses a selection.
pub fn run(path: &Path, from: DateTime<Utc>, to: DateTime<Utc>, discover: bool, json: bool) -> u8 {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(code) = check_window(from, to) {
        return code;
    }
    let environments = if discover {
        let discovery = match super::check::discover(&config, Utc::now()) {
            Ok(Ok(discovery)) => discovery,
            Ok(Err(err)) => {
                eprintln!("error: discovery: {err}");
                return 1;
            }
            Err(code) => return code,
        };
        if !discovery.undiscovered.is_empty() {
            super::print_unseen(
                "error: targets not discovered, so the forecast would miss them:",
                discovery
                    .undiscovered
                    .iter()
                    .map(|u| (u.environment.as_str(), u.selection.as_str(), &u.error)),
            );
            return 1;
        }
        forecast::forecast_targets(&config, &config.cost, &discovery.targets, from, to)
    } else {
        match forecast::forecast(&config, &config.cost, from, to) {
            Ok(environments) => environments,
            Err(err) => {
                eprintln!("error: {err}");
                eprintln!(
                    "  hint: or price what the targets select now with --discover (read-only)"
                );
                return EXIT_BAD_INPUT;
            }
        }
    };
    let catalog = config.cost.catalog();
    if json {
        let document = ForecastDocument {
            from,
            to,
            currency: catalog.currency(),
            prices_taken: catalog.taken(),
            environments,
        };
        match serde_json::to_string_pretty(&document) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                return 1;
            }
        }
        return 0;
    }
    println!(
        "forecast from {} to {} ({} list prices{})",
        from.format("%Y-%m-%d %H:%M UTC"),
        to.format("%Y-%m-%d %H:%M UTC"),
        catalog.currency(),
        catalog
            .taken()
            .map(|d| format!(" taken {d}"))
            .unwrap_or_default()
    );
    println!(
        "{:<20} {:>9} {:>9} {:>14} {:>14} {:>12} {:>8}",
        "environment", "hours up", "down", "with schedule", "always on", "savings", "saved"
    );
    for env in &environments {
        println!(
            "{:<20} {:>9.1} {:>9.1} {:>14.2} {:>14.2} {:>12.2} {:>7.1}%",
            env.name,
            env.hours_up,
            env.hours_down,
            env.cost_with_schedule,
            env.cost_without_schedule,
            env.savings,
            env.savings_percent
        );
        if discover {
            for kind in &env.by_kind {
                println!(
                    "  {:<18} {:>19} {:>14.2} {:>14.2} {:>12.2}",
                    kind.kind,
                    format!(
                        "{} target{}",
                        kind.targets,
                        if kind.targets == 1 { "" } else { "s" }
                    ),
                    kind.cost_with_schedule,
                    kind.cost_without_schedule,
                    kind.savings
                );
            }
        }
    }
    let with: f64 = environments.iter().map(|e| e.cost_with_schedule).sum();
    let without: f64 = environments.iter().map(|e| e.cost_without_schedule).sum();
    if environments.len() > 1 {
        println!(
            "{:<20} {:>19} {:>14.2} {:>14.2} {:>12.2}",
            "total",
            "",
            with,
            without,
            without - with
        );
    }
    0
}
