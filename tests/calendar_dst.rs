//! Golden tests: transitions around DST changes and in unusual zones, checked by hand.
//!
//! Rules under test: a local time inside a spring-forward gap happens at the first instant after
//! the gap; a local time inside a repeated hour happens once, at its first occurrence.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use curfew::calendar::{Base, Schedule, State};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn uptime(zone: Tz, spec: &str) -> Schedule {
    Schedule::new(zone, Base::Uptime(spec.parse().unwrap()))
}

fn cron(zone: Tz, up_at: &str, down_at: &str) -> Schedule {
    Schedule::new(
        zone,
        Base::Cron {
            up_at: up_at.parse().unwrap(),
            down_at: down_at.parse().unwrap(),
        },
    )
}

/// Asserts the exact transitions in `[from, to)` as `(instant, state)` pairs.
fn assert_transitions(schedule: &Schedule, from: &str, to: &str, want: &[(&str, State)]) {
    let got: Vec<(DateTime<Utc>, State)> = schedule
        .transitions(utc(from), utc(to))
        .into_iter()
        .map(|t| (t.at, t.state))
        .collect();
    let want: Vec<(DateTime<Utc>, State)> = want.iter().map(|(at, s)| (utc(at), *s)).collect();
    assert_eq!(got, want, "transitions in [{from}, {to})");
}

use State::{Down, Up};

#[test]
fn berlin_window_starting_in_the_spring_gap_opens_when_the_gap_ends() {
    let schedule = uptime(chrono_tz::Europe::Berlin, "Sun 02:30-05:00");
    for (from, to, up, down) in [
        (
            "2026-03-28T00:00:00Z",
            "2026-03-30T00:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T03:00:00Z",
        ),
        (
            "2027-03-27T00:00:00Z",
            "2027-03-29T00:00:00Z",
            "2027-03-28T01:00:00Z",
            "2027-03-28T03:00:00Z",
        ),
    ] {
        assert_transitions(&schedule, from, to, &[(up, Up), (down, Down)]);
    }
}

#[test]
fn berlin_window_starting_in_the_repeated_hour_starts_once() {
    let schedule = uptime(chrono_tz::Europe::Berlin, "Sun 02:30-04:00");
    for (from, to, up, second_pass, down) in [
        (
            "2026-10-24T00:00:00Z",
            "2026-10-26T00:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:15:00Z",
            "2026-10-25T03:00:00Z",
        ),
        (
            "2027-10-30T00:00:00Z",
            "2027-11-01T00:00:00Z",
            "2027-10-31T00:30:00Z",
            "2027-10-31T01:15:00Z",
            "2027-10-31T03:00:00Z",
        ),
    ] {
        assert_transitions(&schedule, from, to, &[(up, Up), (down, Down)]);
        // 02:15 on the second pass is after the window opened: still up.
        assert_eq!(schedule.decide(utc(second_pass)).state, Up);
    }
}

#[test]
fn berlin_cron_in_the_repeated_hour_fires_once() {
    // down at 02:30, up at 02:45: the second 02:30 (CET) must not put it down again.
    let schedule = cron(chrono_tz::Europe::Berlin, "45 2 * * *", "30 2 * * *");
    assert_transitions(
        &schedule,
        "2026-10-25T00:00:00Z",
        "2026-10-25T12:00:00Z",
        &[("2026-10-25T00:30:00Z", Down), ("2026-10-25T00:45:00Z", Up)],
    );
    assert_eq!(schedule.decide(utc("2026-10-25T01:35:00Z")).state, Up);
}

#[test]
fn berlin_cron_in_the_spring_gap_fires_when_the_gap_ends() {
    let schedule = cron(chrono_tz::Europe::Berlin, "30 2 * * *", "0 4 * * *");
    assert_transitions(
        &schedule,
        "2027-03-28T00:00:00Z",
        "2027-03-28T12:00:00Z",
        &[("2027-03-28T01:00:00Z", Up), ("2027-03-28T02:00:00Z", Down)],
    );
}

#[test]
fn new_york_office_hours_follow_the_offset_change() {
    let schedule = uptime(chrono_tz::America::New_York, "Mon-Fri 07:00-20:00");
    // Friday 2026-03-06 is EST (-5), Monday 2026-03-09 is EDT (-4).
    assert_transitions(
        &schedule,
        "2026-03-06T02:00:00Z",
        "2026-03-10T00:00:00Z",
        &[
            ("2026-03-06T12:00:00Z", Up),
            ("2026-03-07T01:00:00Z", Down),
            ("2026-03-09T11:00:00Z", Up),
        ],
    );
    // Friday 2027-11-05 is EDT, Monday 2027-11-08 is EST.
    assert_transitions(
        &schedule,
        "2027-11-05T00:00:00Z",
        "2027-11-08T18:00:00Z",
        &[
            ("2027-11-05T11:00:00Z", Up),
            ("2027-11-06T00:00:00Z", Down),
            ("2027-11-08T12:00:00Z", Up),
        ],
    );
}

#[test]
fn new_york_gap_and_fold_in_both_years() {
    let gap = uptime(chrono_tz::America::New_York, "Sun 02:30-05:00");
    assert_transitions(
        &gap,
        "2026-03-08T00:00:00Z",
        "2026-03-09T00:00:00Z",
        &[("2026-03-08T07:00:00Z", Up), ("2026-03-08T09:00:00Z", Down)],
    );
    assert_transitions(
        &gap,
        "2027-03-14T00:00:00Z",
        "2027-03-15T00:00:00Z",
        &[("2027-03-14T07:00:00Z", Up), ("2027-03-14T09:00:00Z", Down)],
    );
    let fold = uptime(chrono_tz::America::New_York, "Sun 01:30-03:00");
    assert_transitions(
        &fold,
        "2026-11-01T00:00:00Z",
        "2026-11-02T00:00:00Z",
        &[("2026-11-01T05:30:00Z", Up), ("2026-11-01T08:00:00Z", Down)],
    );
    assert_transitions(
        &fold,
        "2027-11-07T00:00:00Z",
        "2027-11-08T00:00:00Z",
        &[("2027-11-07T05:30:00Z", Up), ("2027-11-07T08:00:00Z", Down)],
    );
    assert_eq!(fold.decide(utc("2026-11-01T06:15:00Z")).state, Up);
}

#[test]
fn lord_howe_half_hour_gap_and_fold() {
    let zone = chrono_tz::Australia::Lord_Howe;
    // Spring: 02:00 jumps to 02:30 (+10:30 to +11).
    let gap = uptime(zone, "Sun 02:15-03:00");
    assert_transitions(
        &gap,
        "2026-10-03T00:00:00Z",
        "2026-10-04T12:00:00Z",
        &[("2026-10-03T15:30:00Z", Up), ("2026-10-03T16:00:00Z", Down)],
    );
    assert_transitions(
        &gap,
        "2027-10-02T00:00:00Z",
        "2027-10-03T12:00:00Z",
        &[("2027-10-02T15:30:00Z", Up), ("2027-10-02T16:00:00Z", Down)],
    );
    // A window entirely inside the gap never opens.
    let inside_gap = uptime(zone, "Sun 02:00-02:30");
    assert_transitions(
        &inside_gap,
        "2026-10-03T00:00:00Z",
        "2026-10-04T12:00:00Z",
        &[],
    );
    // Autumn: 02:00 falls back to 01:30 (+11 to +10:30); 01:30-02:00 happens twice.
    let fold = uptime(zone, "Sun 01:45-03:00");
    assert_transitions(
        &fold,
        "2026-04-04T00:00:00Z",
        "2026-04-05T12:00:00Z",
        &[("2026-04-04T14:45:00Z", Up), ("2026-04-04T16:30:00Z", Down)],
    );
    assert_transitions(
        &fold,
        "2027-04-03T00:00:00Z",
        "2027-04-04T12:00:00Z",
        &[("2027-04-03T14:45:00Z", Up), ("2027-04-03T16:30:00Z", Down)],
    );
    assert_eq!(fold.decide(utc("2026-04-04T15:05:00Z")).state, Up);
}

#[test]
fn kolkata_half_hour_offset_without_dst() {
    let schedule = uptime(chrono_tz::Asia::Kolkata, "Mon-Fri 09:00-18:00");
    assert_transitions(
        &schedule,
        "2026-11-30T00:00:00Z",
        "2026-12-01T00:00:00Z",
        &[("2026-11-30T03:30:00Z", Up), ("2026-11-30T12:30:00Z", Down)],
    );
    assert_transitions(
        &schedule,
        "2027-03-01T00:00:00Z",
        "2027-03-02T00:00:00Z",
        &[("2027-03-01T03:30:00Z", Up), ("2027-03-01T12:30:00Z", Down)],
    );
}

#[test]
fn kiritimati_monday_starts_on_sunday_in_utc() {
    let schedule = uptime(chrono_tz::Pacific::Kiritimati, "Mon-Fri 09:00-17:00");
    assert_transitions(
        &schedule,
        "2026-11-29T00:00:00Z",
        "2026-11-30T12:00:00Z",
        &[("2026-11-29T19:00:00Z", Up), ("2026-11-30T03:00:00Z", Down)],
    );
    assert_transitions(
        &schedule,
        "2027-06-06T00:00:00Z",
        "2027-06-07T12:00:00Z",
        &[("2027-06-06T19:00:00Z", Up), ("2027-06-07T03:00:00Z", Down)],
    );
}

#[test]
fn overnight_window_spans_the_spring_gap() {
    // Sat 22:00 to Sun 06:00 across the night the clocks go forward: 7 real hours.
    let schedule = uptime(chrono_tz::Europe::Berlin, "Sat 22:00-06:00");
    assert_transitions(
        &schedule,
        "2026-03-28T12:00:00Z",
        "2026-03-29T12:00:00Z",
        &[("2026-03-28T21:00:00Z", Up), ("2026-03-29T04:00:00Z", Down)],
    );
}
