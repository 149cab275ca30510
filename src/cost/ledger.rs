//! The savings ledger: actual cost and the always-on counterfactual, integrated over time per
//! environment and per calendar month (UTC), so month-to-date figures survive restarts.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Accumulated figures over some stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Dollars actually spent.
    pub actual: f64,
    /// Dollars that would have been spent always on.
    pub counterfactual: f64,
    /// Seconds the environment's desired state was up.
    pub uptime_seconds: f64,
    /// Seconds accounted in all.
    pub seconds: f64,
    /// Dollars saved while the environment slept because it was idle inside its uptime
    /// (part of the savings).
    #[serde(default)]
    pub idle_savings: f64,
}

impl Totals {
    /// Counterfactual minus actual.
    pub fn savings(&self) -> f64 {
        self.counterfactual - self.actual
    }

    /// Savings as a percentage of the counterfactual (0 when nothing would have been spent).
    pub fn savings_percent(&self) -> f64 {
        if self.counterfactual > 0.0 {
            100.0 * self.savings() / self.counterfactual
        } else {
            0.0
        }
    }

    fn add(&mut self, rates: &Rates, seconds: f64) {
        let hours = seconds / 3600.0;
        self.actual += rates.per_hour * hours;
        self.counterfactual += rates.always_on_per_hour * hours;
        if rates.up {
            self.uptime_seconds += seconds;
        }
        if rates.idle {
            self.idle_savings += (rates.always_on_per_hour - rates.per_hour).max(0.0) * hours;
        }
        self.seconds += seconds;
    }
}

/// The rates in force for an environment since the last observation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Dollars per hour now.
    pub per_hour: f64,
    /// Dollars per hour always on.
    pub always_on_per_hour: f64,
    /// Whether the desired state is up.
    pub up: bool,
    /// Whether it is down because it is idle inside its uptime.
    #[serde(default)]
    pub idle: bool,
}

/// One environment's books.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentBooks {
    /// Rates since the last observation.
    pub rates: Rates,
    /// Everything since the ledger began.
    pub total: Totals,
    /// Per UTC month, keyed `YYYY-MM`.
    pub months: BTreeMap<String, Totals>,
}

/// The ledger of every environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// The instant accounted up to.
    pub accounted_to: Option<DateTime<Utc>>,
    /// Books by environment.
    pub environments: BTreeMap<String, EnvironmentBooks>,
}

// === impl Ledger ===

impl Ledger {
    /// Accounts the time from the last observation to `now` at the rates then in force.
    /// Time never runs backwards in the ledger: an earlier `now` accounts nothing.
    pub fn accrue(&mut self, now: DateTime<Utc>) {
        let Some(from) = self.accounted_to else {
            self.accounted_to = Some(now);
            return;
        };
        if now <= from {
            return;
        }
        for (start, end) in split_by_month(from, now) {
            let seconds = (end - start).num_milliseconds() as f64 / 1000.0;
            let month = month_key(start);
            for books in self.environments.values_mut() {
                let rates = books.rates;
                books.total.add(&rates, seconds);
                books
                    .months
                    .entry(month.clone())
                    .or_default()
                    .add(&rates, seconds);
            }
        }
        self.accounted_to = Some(now);
    }

    /// Sets the rates of `environment` from now on.
    pub fn set_rates(&mut self, environment: &str, rates: Rates) {
        self.environments
            .entry(environment.to_string())
            .or_default()
            .rates = rates;
    }

    /// The month-to-date totals of `environment` as of `now`.
    pub fn month_to_date(&self, environment: &str, now: DateTime<Utc>) -> Totals {
        self.environments
            .get(environment)
            .and_then(|books| books.months.get(&month_key(now)))
            .copied()
            .unwrap_or_default()
    }

    /// Everything accounted for `environment`.
    pub fn total(&self, environment: &str) -> Totals {
        self.environments
            .get(environment)
            .map(|books| books.total)
            .unwrap_or_default()
    }
}

fn month_key(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// `[from, to)` cut at every UTC month boundary.
fn split_by_month(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut pieces = Vec::new();
    let mut start = from;
    while start < to {
        let end = next_month_start(start).min(to);
        pieces.push((start, end));
        start = end;
    }
    pieces
}

fn next_month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .unwrap_or(at + Duration::days(31))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn accrues_rates_over_time_and_splits_at_month_boundaries() {
        let mut ledger = Ledger::default();
        ledger.set_rates(
            "staging",
            Rates {
                idle: false,
                per_hour: 1.0,
                always_on_per_hour: 3.0,
                up: true,
            },
        );
        ledger.accrue(utc("2026-11-30T22:00:00Z"));
        ledger.accrue(utc("2026-12-01T02:00:00Z"));
        let november = ledger.environments["staging"].months["2026-11"];
        let december = ledger.month_to_date("staging", utc("2026-12-01T02:00:00Z"));
        assert!((november.actual - 2.0).abs() < 1e-9);
        assert!((december.actual - 2.0).abs() < 1e-9);
        assert!((december.savings() - 4.0).abs() < 1e-9);
        assert!((ledger.total("staging").uptime_seconds - 4.0 * 3600.0).abs() < 1e-6);
        assert!((december.savings_percent() - 66.666).abs() < 0.01);
    }

    #[test]
    fn time_asleep_because_idle_is_booked_as_idle_savings_apart() {
        let mut ledger = Ledger::default();
        let rates = |idle: bool, per_hour: f64| Rates {
            per_hour,
            always_on_per_hour: 3.0,
            up: !idle,
            idle,
        };
        ledger.set_rates("staging", rates(false, 3.0));
        ledger.accrue(utc("2026-12-01T09:00:00Z"));
        ledger.accrue(utc("2026-12-01T10:00:00Z"));
        ledger.set_rates("staging", rates(true, 0.5));
        ledger.accrue(utc("2026-12-01T12:00:00Z"));
        let total = ledger.total("staging");
        assert!((total.idle_savings - 5.0).abs() < 1e-9, "{total:?}");
        assert!((total.savings() - 5.0).abs() < 1e-9);
    }

    #[test]
    fn time_running_backwards_accounts_nothing() {
        let mut ledger = Ledger::default();
        ledger.set_rates(
            "staging",
            Rates {
                idle: false,
                per_hour: 1.0,
                always_on_per_hour: 1.0,
                up: true,
            },
        );
        ledger.accrue(utc("2026-12-01T02:00:00Z"));
        ledger.accrue(utc("2026-12-01T01:00:00Z"));
        assert_eq!(ledger.total("staging").seconds, 0.0);
        assert_eq!(ledger.accounted_to, Some(utc("2026-12-01T02:00:00Z")));
    }
}
