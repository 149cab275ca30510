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

/// Prints the forecast of `path` over `[from, to)`; exit 2 for bad input.
pub fn run(path: &Path, from: DateTime<Utc>, to: DateTime<Utc>, json: bool) -> u8 {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(code) = check_window(from, to) {
        return code;
    }
    let environments = match forecast::forecast(&config, &config.cost, from, to) {
        Ok(environments) => environments,
        Err(err) => {
            eprintln!("error: {err}");
            return EXIT_BAD_INPUT;
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
    }
    0
}
