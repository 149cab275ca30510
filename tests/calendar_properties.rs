//! Property tests of the calendar engine over random schedules, zones and instants.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use curfew::calendar::holidays::HolidaySet;
use curfew::calendar::spec::{AbsoluteRange, ClockTime, DaySet, Spec, SpecItem, Window};
use curfew::calendar::{Base, Exception, Schedule, State};
use proptest::prelude::*;

const ZONES: [Tz; 9] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Pacific::Kiritimati,
    chrono_tz::America::Santiago,
    chrono_tz::Pacific::Chatham,
    chrono_tz::America::St_Johns,
];

/// 2026-01-01T00:00:00Z and two years on.
const EPOCH_2026: i64 = 1_767_225_600;
const TWO_YEARS: i64 = 2 * 365 * 86_400;

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(ZONES.to_vec())
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0..TWO_YEARS).prop_map(|offset| DateTime::from_timestamp(EPOCH_2026 + offset, 0).unwrap())
}

fn clock_time(max: u16) -> impl Strategy<Value = ClockTime> {
    (0..=max / 15).prop_map(|quarter| {
        let minutes = quarter * 15;
        ClockTime::new(minutes / 60, minutes % 60).unwrap()
    })
}

fn window() -> impl Strategy<Value = Window> {
    (
        1u8..=127,
        clock_time(1425),
        clock_time(1440),
        prop::option::weighted(0.3, zone()),
    )
        .prop_map(|(days, start, end, zone)| Window {
            days: DaySet::from_bits(days),
            start,
            end,
            zone: zone.map(Into::into),
        })
}

fn absolute() -> impl Strategy<Value = AbsoluteRange> {
    (instant(), 60i64..(20 * 86_400)).prop_map(|(from, length)| AbsoluteRange {
        from: from.fixed_offset(),
        to: (from + Duration::seconds(length)).fixed_offset(),
    })
}

fn spec_item() -> impl Strategy<Value = SpecItem> {
    prop_oneof![
        8 => window().prop_map(SpecItem::Weekly),
        1 => absolute().prop_map(SpecItem::Absolute),
        1 => Just(SpecItem::Always),
        1 => Just(SpecItem::Never),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    prop::collection::vec(spec_item(), 1..4).prop_map(|items| Spec { items })
}

fn cron_expr() -> impl Strategy<Value = String> {
    (0u32..60, 0u32..24, 1u8..=127).prop_map(|(minute, hour, days)| {
        let days: Vec<String> = (0..7)
            .filter(|d| days & (1 << d) != 0)
            .map(|d| d.to_string())
            .collect();
        format!("{minute} {hour} * * {}", days.join(","))
    })
}

fn base() -> impl Strategy<Value = Base> {
    prop_oneof![
        4 => spec().prop_map(Base::Uptime),
        1 => spec().prop_map(Base::Downtime),
        2 => (cron_expr(), cron_expr()).prop_map(|(up, down)| Base::Cron {
            up_at: up.parse().unwrap(),
            down_at: down.parse().unwrap(),
        }),
        1 => Just(Base::AlwaysUp),
    ]
}

fn holidays() -> impl Strategy<Value = HolidaySet> {
    prop::collection::vec(0i64..730, 0..20).prop_map(|offsets| {
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        HolidaySet::from_dates(offsets.into_iter().map(|d| first + Duration::days(d)))
    })
}

fn exceptions() -> impl Strategy<Value = Vec<Exception>> {
    prop::collection::vec(
        (absolute(), any::<bool>()).prop_map(|(range, up)| Exception {
            range,
            state: if up { State::Up } else { State::Down },
            reason: None,
        }),
        0..3,
    )
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (zone(), base(), holidays(), any::<bool>(), exceptions()).prop_map(
        |(zone, base, holidays, holidays_up, exceptions)| {
            let holiday_state = if holidays_up { State::Up } else { State::Down };
            Schedule::new(zone, base)
                .with_holidays(holidays, holiday_state)
                .with_exceptions(exceptions)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Between two consecutive planned transitions the decision never changes, and at each
    /// transition instant the new state already holds.
    #[test]
    fn decision_is_constant_between_planned_transitions(
        schedule in schedule(),
        from in instant(),
        probes in prop::collection::vec(0i64..(10 * 86_400), 1..12),
    ) {
        let to = from + Duration::days(10);
        let timeline = schedule.timeline(from, to);
        let initial = timeline.initial().unwrap().state;
        let transitions = timeline.transitions();
        for transition in &transitions {
            prop_assert_eq!(schedule.decide(transition.at).state, transition.state);
        }
        for probe in probes {
            let at = from + Duration::seconds(probe);
            let expected = transitions
                .iter()
                .take_while(|t| t.at <= at)
                .last()
                .map_or(initial, |t| t.state);
            prop_assert_eq!(schedule.decide(at).state, expected, "at {}", at);
        }
    }

    /// The next change is after t, the state holds until just before it, and it really changes.
    #[test]
    fn next_change_is_after_t_and_really_changes(schedule in schedule(), at in instant()) {
        let decision = schedule.decide(at);
        if let Some(next) = decision.next_change {
            prop_assert!(next > at);
            prop_assert_eq!(schedule.decide(next - Duration::seconds(1)).state, decision.state);
            prop_assert_ne!(schedule.decide(next).state, decision.state);
            let planned = schedule.transitions(at, next + Duration::seconds(1));
            prop_assert_eq!(planned.first().map(|t| t.at), Some(next));
        }
    }

    /// A precomputed timeline answers exactly like the schedule itself.
    #[test]
    fn timeline_lookup_matches_direct_decision(
        schedule in schedule(),
        from in instant(),
        probe in 0i64..(30 * 86_400),
    ) {
        let timeline = schedule.timeline(from, from + Duration::days(31));
        let at = from + Duration::seconds(probe);
        let fast = timeline.decide(at).unwrap();
        let slow = schedule.decide(at);
        prop_assert_eq!(fast.state, slow.state);
        prop_assert_eq!(fast.rule, slow.rule);
        if let Some(next) = fast.next_change {
            prop_assert_eq!(Some(next), slow.next_change);
        }
    }

    /// Spec strings survive Display and parsing unchanged.
    #[test]
    fn spec_round_trips_through_display(spec in spec()) {
        let text = spec.to_string();
        let parsed: Spec = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed, spec);
    }
}
