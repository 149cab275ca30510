//! How instants are written: for people, local time in a zone to the minute with the zone's
//! abbreviation (`Tue 2026-12-01 23:00 CET`); for machines (JSON), RFC 3339 in UTC to the
//! second (`2026-12-01T22:00:00Z`).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serializer;

use super::Zone;

/// `at` as people read it: local time in `zone`, to the minute, with the zone's abbreviation,
/// e.g. `Tue 2026-12-01 23:00 CET`.
pub fn for_people(at: DateTime<Utc>, zone: Zone) -> String {
    at.with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `at` as RFC 3339 in UTC to the second, e.g. `2026-12-01T22:00:00Z`.
pub fn utc_seconds(at: DateTime<Utc>) -> String {
    at.trunc_subsecs(0)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `at` as RFC 3339 in `zone` to the second, e.g. `2026-12-01T23:00:00+01:00`.
pub fn local_seconds(at: DateTime<Utc>, zone: Zone) -> String {
    at.trunc_subsecs(0)
        .with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serialises an instant as [`utc_seconds`] (`#[serde(serialize_with = ...)]`); reading
/// accepts any RFC 3339 instant.
pub fn serialize_utc_seconds<S: Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&utc_seconds(*at))
}

/// [`serialize_utc_seconds`] for an optional instant (`null` when absent).
pub fn serialize_optional_utc_seconds<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize_utc_seconds(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T04:24:47.756853613Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn people_read_local_time_to_the_minute_with_the_zone() {
        let berlin = Zone::from(chrono_tz::Europe::Berlin);
        assert_eq!(for_people(at(), berlin), "Thu 2026-12-03 05:24 CET");
        let new_york = Zone::from(chrono_tz::America::New_York);
        assert_eq!(for_people(at(), new_york), "Wed 2026-12-02 23:24 EST");
    }

    #[test]
    fn machines_read_utc_to_the_second() {
        assert_eq!(utc_seconds(at()), "2026-12-03T04:24:47Z");
        let berlin = Zone::from(chrono_tz::Europe::Berlin);
        assert_eq!(local_seconds(at(), berlin), "2026-12-03T05:24:47+01:00");
        #[derive(serde::Serialize)]
        struct Doc {
            #[serde(serialize_with = "serialize_utc_seconds")]
            at: DateTime<Utc>,
            #[serde(serialize_with = "serialize_optional_utc_seconds")]
            next: Option<DateTime<Utc>>,
        }
        let doc = Doc {
            at: at(),
            next: None,
        };
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"at":"2026-12-03T04:24:47Z","next":null}"#
        );
    }
}
