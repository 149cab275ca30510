//! Reading the end of an override as people write it: an RFC 3339 instant, a local date and
//! time, or a local time of day (the next one to come) in the environment's zone.

use crate::calendar::{Zone, local};
use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Utc};

/// Resolves `text` to an instant after `now`: RFC 3339 as written, `YYYY-MM-DDTHH:MM[:SS]` or
/// `YYYY-MM-DD HH:MM` in `zone`, or `HH:MM` as the next such local time in `zone`.
///
/// Local times in a DST gap move to the first instant after it; in a repeated hour the first
/// occurrence counts.
pub fn resolve_until(text: &str, zone: Zone, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(local::resolve(zone, naive));
        }
    }
    let time = NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| {
        format!("'{text}' is not a time (expected HH:MM, YYYY-MM-DDTHH:MM or RFC 3339)")
    })?;
    let today = local::local_date(zone, now);
    let candidate = local::resolve(zone, today.and_time(time));
    Ok(if candidate > now {
        candidate
    } else {
        local::resolve(zone, (today + Duration::days(1)).and_time(time))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_time_of_day_means_the_next_one_in_the_environments_zone() {
        let berlin = chrono_tz::Europe::Berlin.into();
        let now = utc("2026-12-01T10:00:00Z"); // 11:00 in Berlin
        assert_eq!(
            resolve_until("23:00", berlin, now).unwrap(),
            utc("2026-12-01T22:00:00Z")
        );
        assert_eq!(
            resolve_until("09:00", berlin, now).unwrap(),
            utc("2026-12-02T08:00:00Z")
        );
    }

    #[test]
    fn local_dates_and_rfc3339_instants_are_read_as_written() {
        let berlin = chrono_tz::Europe::Berlin.into();
        let now = utc("2026-12-01T10:00:00Z");
        assert_eq!(
            resolve_until("2026-12-01T23:30", berlin, now).unwrap(),
            utc("2026-12-01T22:30:00Z")
        );
        assert_eq!(
            resolve_until("2026-12-01T23:30:00Z", berlin, now).unwrap(),
            utc("2026-12-01T23:30:00Z")
        );
        assert!(resolve_until("tonight", berlin, now).is_err());
    }
}
