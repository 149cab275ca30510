//! Sleep when idle: an environment inside its uptime window goes down early after a spell
//! without requests.
//!
//! Precedence (see DESIGN.md): an active override (a wake is one) beats idleness, and so do
//! the schedule's absolute exceptions and holidays; idleness beats the weekly windows, cron
//! transitions and the default. Pure, and level-triggered: the quiet spell starts at the
//! latest of the last request, the start of the current uptime and the end of the latest
//! override, so a restart or a missed pass decides the same.

use chrono::{DateTime, Duration, Utc};

use crate::calendar::format::for_people;
use crate::calendar::{Rule, Schedule, State};
use crate::domain::{EnvironmentDecision, Override};

/// What idleness needs to know of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idleness {
    /// How long without requests sends it down.
    pub after: Duration,
    /// Its latest request, or when counting began (curfew's start) if none came since.
    pub last_activity: DateTime<Utc>,
}

/// `decision` with idleness applied: down with "idle since HH:MM" when the calendar alone
/// keeps the environment up and nothing happened for `idle.after`; otherwise the same
/// decision, whose next change comes no later than the instant it would turn idle.
pub fn apply(
    decision: EnvironmentDecision,
    schedule: &Schedule,
    overrides: &[Override],
    idle: Idleness,
    now: DateTime<Utc>,
) -> EnvironmentDecision {
    if decision.override_id.is_some() || decision.state != State::Up {
        return decision;
    }
    let (_, rule) = schedule.state_at(now);
    if matches!(rule, Rule::Exception(_) | Rule::Holiday(_)) {
        return decision;
    }
    let quiet_since = quiet_since(schedule, &decision.environment, overrides, idle, now);
    let idle_at = quiet_since + idle.after;
    if now < idle_at {
        let next_change = Some(decision.next_change.map_or(idle_at, |at| at.min(idle_at)));
        return EnvironmentDecision {
            next_change,
            ..decision
        };
    }
    let zone = schedule.zone();
    EnvironmentDecision {
        state: State::Down,
        reason: format!(
            "idle since {} (no requests for {}); the next request wakes it",
            for_people(quiet_since, zone),
            spell(idle.after)
        ),
        idle_since: Some(quiet_since),
        ..decision
    }
}

/// A spell for people: `45 min`, `2 h`, `1 h 30 min`, or seconds under a minute.
fn spell(length: Duration) -> String {
    let minutes = length.num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{} s", length.num_seconds()),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// When the present quiet spell began: the latest of the last request, the latest change of
/// the calendar's state (the start of this uptime) and the end of the latest override.
fn quiet_since(
    schedule: &Schedule,
    environment: &str,
    overrides: &[Override],
    idle: Idleness,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let uptime_began = schedule
        .transitions(now - idle.after, now + Duration::seconds(1))
        .into_iter()
        .map(|t| t.at)
        .filter(|at| *at <= now)
        .max();
    let override_ended = overrides
        .iter()
        .filter(|o| o.environment == environment && o.until <= now)
        .map(|o| o.until)
        .max();
    [Some(idle.last_activity), uptime_began, override_ended]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(idle.last_activity)
        .min(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::spec::Spec;
    use crate::calendar::{Base, Zone};
    use crate::planner::decide_environment;

    /// Mon-Fri 07:00-20:00 UTC.
    fn office_hours() -> Schedule {
        let spec: Spec = "Mon-Fri 07:00-20:00".parse().expect("valid spec");
        Schedule::new(Zone::UTC, Base::Uptime(spec))
    }

    /// Monday 2026-11-30 at `hh:mm` UTC.
    fn monday(hh: u32, mm: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(hh, mm, 0))
            .expect("valid time")
            .and_utc()
    }

    fn mk_override(from: DateTime<Utc>, until: DateTime<Utc>) -> Override {
        Override {
            id: "0000000000aa".into(),
            environment: "staging".into(),
            state: State::Up,
            created_at: from,
            until,
            reason: "wake on request".into(),
            created_by: "wake:10.0.0.7".into(),
        }
    }

    fn decide(
        overrides: &[Override],
        last: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> EnvironmentDecision {
        let schedule = office_hours();
        let idle = Idleness {
            after: Duration::minutes(45),
            last_activity: last,
        };
        let decision = decide_environment(&schedule, "staging", overrides, now);
        apply(decision, &schedule, overrides, idle, now)
    }

    #[test]
    fn an_environment_quiet_for_the_idle_spell_inside_its_uptime_goes_down() {
        let decision = decide(&[], monday(9, 0), monday(9, 45));
        assert_eq!(decision.state, State::Down);
        assert_eq!(decision.idle_since, Some(monday(9, 0)));
        assert!(
            decision.reason.starts_with("idle since"),
            "{}",
            decision.reason
        );
        // The calendar's next change is kept: 20:00 down is no change, so the next wake.
        let busy = decide(&[], monday(9, 1), monday(9, 45));
        assert_eq!(busy.state, State::Up);
        assert_eq!(busy.next_change, Some(monday(9, 46)));
    }

    #[test]
    fn the_quiet_spell_starts_no_earlier_than_the_uptime_it_lies_in() {
        // Traffic last on Friday evening; Monday 07:00 starts a fresh spell.
        let friday = monday(19, 0) - Duration::days(3);
        assert_eq!(decide(&[], friday, monday(7, 30)).state, State::Up);
        assert_eq!(decide(&[], friday, monday(7, 45)).state, State::Down);
    }

    #[test]
    fn an_override_beats_idleness_and_its_end_starts_a_fresh_spell() {
        let wake = mk_override(monday(8, 0), monday(10, 0));
        let during = decide(std::slice::from_ref(&wake), monday(7, 0), monday(9, 0));
        assert_eq!(during.state, State::Up);
        assert_eq!(during.override_id.as_deref(), Some("0000000000aa"));
        let after = decide(std::slice::from_ref(&wake), monday(7, 0), monday(10, 30));
        assert_eq!(after.state, State::Up);
        assert_eq!(after.next_change, Some(monday(10, 45)));
    }

    #[test]
    fn idleness_never_wakes_and_never_outranks_the_night() {
        let night = decide(&[], monday(6, 0) - Duration::days(1), monday(22, 0));
        assert_eq!(night.state, State::Down);
        assert_eq!(night.idle_since, None);
    }
}
