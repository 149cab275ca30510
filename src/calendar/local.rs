//! Turning local wall-clock times into instants, with curfew's DST rules.
//!
//! * A local time inside a spring-forward gap happens at the first instant after the gap.
//! * A local time inside a repeated (fall-back) hour happens once, at its first occurrence.

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};

use super::Zone;

/// The longest gap a time zone has ever had, used to bound the search for the gap's end.
const LONGEST_GAP_MINUTES: i64 = 24 * 60;

/// Resolves a local wall-clock time in `tz` to the instant it happens at.
pub fn resolve(tz: Zone, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => first_instant_after_gap(tz, local),
    }
}

/// Resolves local midnight at the start of `day` in `tz`.
pub fn start_of_day(tz: Zone, day: NaiveDate) -> DateTime<Utc> {
    resolve(tz, day.and_time(NaiveTime::MIN))
}

/// The local date in `tz` at instant `at`.
pub fn local_date(tz: Zone, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The local wall-clock time in `tz` at instant `at`.
pub fn local_time(tz: Zone, at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&tz).naive_local()
}

/// The transition instant that ends the gap `local` falls into.
///
/// Walks forward minute by minute to the first wall-clock time that exists; that wall-clock
/// time is reached exactly at the transition, so its instant is the first one after the gap.
fn first_instant_after_gap(tz: Zone, local: NaiveDateTime) -> DateTime<Utc> {
    let truncated = local
        .date()
        .and_hms_opt(local.hour(), local.minute(), 0)
        .unwrap_or(local);
    for minutes in 1..=LONGEST_GAP_MINUTES {
        let candidate = truncated + Duration::minutes(minutes);
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(at) => return at.with_timezone(&Utc),
            LocalResult::Ambiguous(first, second) => {
                return first.min(second).with_timezone(&Utc);
            }
            LocalResult::None => continue,
        }
    }
    // No zone has a gap longer than a day; treat the time as UTC rather than loop forever.
    local.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn time_inside_spring_forward_gap_happens_when_the_gap_ends() {
        let at = resolve(chrono_tz::Europe::Berlin.into(), local("2026-03-29 02:30"));
        assert_eq!(at, utc("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn time_inside_repeated_hour_happens_at_its_first_occurrence() {
        let at = resolve(chrono_tz::Europe::Berlin.into(), local("2026-10-25 02:30"));
        assert_eq!(at, utc("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn half_hour_gap_of_lord_howe_ends_at_half_past_two() {
        let at = resolve(
            chrono_tz::Australia::Lord_Howe.into(),
            local("2026-10-04 02:10"),
        );
        assert_eq!(at, utc("2026-10-03T15:30:00Z"));
    }

    #[test]
    fn ordinary_time_resolves_with_the_zone_offset() {
        let at = resolve(chrono_tz::Asia::Kolkata.into(), local("2026-06-01 09:00"));
        assert_eq!(at, utc("2026-06-01T03:30:00Z"));
    }
}
