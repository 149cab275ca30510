//! Standard 5-field cron expressions, evaluated with the `cron` crate on local wall-clock time.
//!
//! The standard form (`minute hour day-of-month month day-of-week`, 0 or 7 = Sunday, names,
//! lists, ranges, steps) is validated here and translated into the `cron` crate's Quartz-style
//! form with explicit value lists. As in Vixie cron, when both day fields are restricted the
//! expression fires on days that match either. Fire times are naive local times; turning them
//! into instants (with the DST rules) is the caller's job, see [`super::local::resolve`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};

/// What can be wrong with a cron expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not exactly five fields.
    #[error("expected 5 fields 'minute hour day-of-month month day-of-week', found {0}")]
    FieldCount(usize),
    /// A field value that does not parse or is out of range.
    #[error("bad {field} field '{token}': {reason}")]
    BadField {
        /// Which field.
        field: &'static str,
        /// The offending token.
        token: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The translated expression was refused by the cron crate.
    #[error("cron expression '{0}' cannot be evaluated: {1}")]
    Engine(String, String),
}

/// Result type of cron parsing.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A field's allowed range and names.
struct FieldKind {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of the first name (months count from 1, weekdays from 0).
    first_named: u32,
}

const MINUTE: FieldKind = FieldKind {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_named: 0,
};
const HOUR: FieldKind = FieldKind {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_named: 0,
};
const DAY_OF_MONTH: FieldKind = FieldKind {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    first_named: 0,
};
const MONTH: FieldKind = FieldKind {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    first_named: 1,
};
const DAY_OF_WEEK: FieldKind = FieldKind {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    first_named: 0,
};

/// A parsed field: the set of allowed values and whether it was written as `*...`.
struct Field {
    values: Vec<u32>,
    starred: bool,
}

// === impl FieldKind ===

impl FieldKind {
    fn error(&self, token: &str, reason: impl Into<String>) -> Error {
        Error::BadField {
            field: self.name,
            token: token.to_string(),
            reason: reason.into(),
        }
    }

    fn value(&self, token: &str, whole: &str) -> Result<u32> {
        let number = match token.parse::<u32>() {
            Ok(number) => number,
            Err(_) => self
                .names
                .iter()
                .position(|name| name.eq_ignore_ascii_case(token))
                .map(|index| index as u32 + self.first_named)
                .ok_or_else(|| self.error(whole, format!("'{token}' is not a number or name")))?,
        };
        if number < self.min || number > self.max {
            return Err(self.error(
                whole,
                format!("{number} is outside {}-{}", self.min, self.max),
            ));
        }
        Ok(number)
    }

    fn parse(&self, text: &str) -> Result<Field> {
        let mut values = Vec::new();
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step
                        .parse()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| self.error(text, format!("bad step '{step}'")))?;
                    (range, step)
                }
                None => (part, 1),
            };
            let (low, high) = if range == "*" {
                (self.min, self.max)
            } else if let Some((low, high)) = range.split_once('-') {
                (self.value(low, text)?, self.value(high, text)?)
            } else {
                let low = self.value(range, text)?;
                // `5/15` means from 5 to the end in steps of 15.
                (low, if step > 1 { self.max } else { low })
            };
            if low > high {
                return Err(self.error(text, format!("range {low}-{high} runs backwards")));
            }
            values.extend((low..=high).step_by(step as usize));
        }
        values.sort_unstable();
        values.dedup();
        Ok(Field {
            values,
            starred: text.starts_with('*'),
        })
    }
}

/// A validated standard cron expression.
#[derive(Clone)]
pub struct CronExpr {
    source: String,
    /// One schedule, or two when both day fields are restricted (fires on either).
    schedules: Vec<cron::Schedule>,
}

// === impl CronExpr ===

impl CronExpr {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first fire strictly after `after`, in naive local time.
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = as_proxy(after);
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after(&start).next())
            .min()
            .map(|at| at.naive_utc())
    }

    /// The last fire strictly before `before`, in naive local time.
    pub fn previous_before(&self, before: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = as_proxy(before);
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after(&start).next_back())
            .max()
            .map(|at| at.naive_utc())
    }

    /// Every fire in `(after, until]`, in naive local time, in order.
    pub fn fires_between(&self, after: NaiveDateTime, until: NaiveDateTime) -> Vec<NaiveDateTime> {
        let mut fires: Vec<NaiveDateTime> = self
            .schedules
            .iter()
            .flat_map(|schedule| {
                schedule
                    .after(&as_proxy(after))
                    .map(|at| at.naive_utc())
                    .take_while(move |at| *at <= until)
            })
            .collect();
        fires.sort_unstable();
        fires.dedup();
        fires
    }
}

/// The `cron` crate works on zoned times; UTC stands in for naive local time.
fn as_proxy(local: NaiveDateTime) -> DateTime<Utc> {
    local.and_utc()
}

impl FromStr for CronExpr {
    type Err = Error;

    fn from_str(text: &str) -> Result<CronExpr> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(Error::FieldCount(fields.len()));
        };
        let minute = MINUTE.parse(minute)?;
        let hour = HOUR.parse(hour)?;
        let day_of_month = DAY_OF_MONTH.parse(day_of_month)?;
        let month = MONTH.parse(month)?;
        let day_of_week = DAY_OF_WEEK.parse(day_of_week)?;
        let weekdays = weekday_names(&day_of_week.values);
        let time = format!("0 {} {}", list(&minute.values), list(&hour.values));
        let month = list(&month.values);
        let mut quartz = Vec::new();
        match (day_of_month.starred, day_of_week.starred) {
            (false, false) => {
                quartz.push(format!("{time} {} {month} *", list(&day_of_month.values)));
                quartz.push(format!("{time} * {month} {weekdays}"));
            }
            _ => quartz.push(format!(
                "{time} {} {month} {weekdays}",
                list(&day_of_month.values)
            )),
        }
        let schedules = quartz
            .iter()
            .map(|expr| {
                cron::Schedule::from_str(expr)
                    .map_err(|e| Error::Engine(expr.clone(), e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CronExpr {
            source: text.split_whitespace().collect::<Vec<_>>().join(" "),
            schedules,
        })
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronExpr({:?})", self.source)
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

fn list(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Weekday numbers (0 and 7 = Sunday) as names, which the `cron` crate reads unambiguously.
fn weekday_names(values: &[u32]) -> String {
    let mut names: Vec<&str> = values
        .iter()
        .map(|value| DAY_OF_WEEK.names[(*value % 7) as usize])
        .collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn cron(s: &str) -> CronExpr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn weekday_names_and_ranges_fire_on_working_days() {
        // 2026-11-27 is a Friday.
        let expr = cron("0 7 * * MON-FRI");
        assert_eq!(
            expr.next_after(at("2026-11-27 08:00")),
            Some(at("2026-11-30 07:00"))
        );
    }

    #[test]
    fn zero_and_seven_both_mean_sunday() {
        let zero = cron("30 6 * * 0");
        let seven = cron("30 6 * * 7");
        let next = Some(at("2026-11-29 06:30"));
        assert_eq!(zero.next_after(at("2026-11-27 08:00")), next);
        assert_eq!(seven.next_after(at("2026-11-27 08:00")), next);
    }

    #[test]
    fn numeric_weekday_range_follows_standard_numbering() {
        // 1-5 is Monday to Friday in standard cron, not Sunday to Thursday as in Quartz.
        let expr = cron("0 20 * * 1-5");
        assert_eq!(
            expr.next_after(at("2026-11-28 00:00")),
            Some(at("2026-11-30 20:00"))
        );
    }

    #[test]
    fn steps_and_lists_expand() {
        let expr = cron("*/20 9,17 * * *");
        let fires = expr.fires_between(at("2026-11-28 08:59"), at("2026-11-28 17:20"));
        let want: Vec<_> = ["09:00", "09:20", "09:40", "17:00", "17:20"]
            .iter()
            .map(|t| at(&format!("2026-11-28 {t}")))
            .collect();
        assert_eq!(fires, want);
    }

    #[test]
    fn restricted_day_of_month_and_weekday_fire_on_either() {
        // The 1st of the month or any Monday.
        let expr = cron("0 8 1 * MON");
        let fires = expr.fires_between(at("2026-11-28 00:00"), at("2026-12-08 00:00"));
        assert_eq!(
            fires,
            vec![
                at("2026-11-30 08:00"),
                at("2026-12-01 08:00"),
                at("2026-12-07 08:00")
            ]
        );
    }

    #[test]
    fn previous_fire_is_strictly_before() {
        let expr = cron("0 20 * * MON-FRI");
        assert_eq!(
            expr.previous_before(at("2026-11-30 20:00")),
            Some(at("2026-11-27 20:00"))
        );
    }

    #[test]
    fn out_of_range_values_name_the_field_and_token() {
        let err = "61 7 * * *".parse::<CronExpr>().unwrap_err();
        assert!(err.to_string().contains("minute field '61'"), "{err}");
        let err = "0 7 * * FUNDAY".parse::<CronExpr>().unwrap_err();
        assert!(err.to_string().contains("day-of-week"), "{err}");
        assert_eq!(
            "0 7 * *".parse::<CronExpr>().unwrap_err(),
            Error::FieldCount(4)
        );
    }
}
