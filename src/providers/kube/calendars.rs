//! Per-object calendars from annotations: `curfew.dev/schedule`, `curfew.dev/uptime` and
//! kube-downscaler's `downscaler/uptime`, `downscaler/downtime` and `downscaler/force-*`.
//!
//! Schedule annotations and force annotations are looked up separately, each on the first
//! layer (workload, then namespace) that carries one. The schedule annotation replaces the
//! base rule of the environment's schedule (its zone, holidays and exceptions stay), except
//! `curfew.dev/schedule`, which names a whole schedule of the configuration. Forced states
//! beat every rule of that schedule: a forced range becomes an exception listed first, and
//! `"true"` replaces the schedule with `always`. `force-uptime` beats `force-downtime`.

use indexmap::IndexMap;

use super::annotations::{
    Annotations, DOWNSCALER_DOWNTIME, DOWNSCALER_FORCE_DOWNTIME, DOWNSCALER_FORCE_UPTIME,
    DOWNSCALER_UPTIME, Error, SCHEDULE, UPTIME, bad,
};
use crate::calendar::spec::{Spec, SpecItem};
use crate::calendar::{Base, Exception, Schedule, State};
use crate::domain::TargetCalendar;

/// Schedule annotations, in precedence order within one object.
const SCHEDULE_KEYS: [&str; 4] = [SCHEDULE, UPTIME, DOWNSCALER_UPTIME, DOWNSCALER_DOWNTIME];
/// Force annotations, in precedence order.
const FORCE_KEYS: [&str; 2] = [DOWNSCALER_FORCE_UPTIME, DOWNSCALER_FORCE_DOWNTIME];

/// One layer of annotations and what it belongs to (`deployment shop/web`, `namespace shop`).
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The annotations.
    pub annotations: &'a Annotations,
    /// The object they are on, for reasons and messages.
    pub object: &'a str,
}

/// Whether any of `layers` carries a calendar annotation (a cheap test before
/// [`CalendarAnnotations::find`]).
pub fn mentioned(layers: &[&Annotations]) -> bool {
    layers.iter().any(|layer| {
        SCHEDULE_KEYS
            .iter()
            .chain(&FORCE_KEYS)
            .any(|key| layer.contains_key(*key))
    })
}

/// An annotation found on a layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Found {
    key: &'static str,
    value: String,
    object: String,
}

impl Found {
    fn source(&self) -> String {
        format!("{} on {}", self.key, self.object)
    }
}

/// The calendar annotations that decide one object, before they are compiled; equal values
/// compile to equal calendars, so this is a cache key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CalendarAnnotations {
    schedule: Vec<Found>,
    force: Vec<Found>,
}

// === impl CalendarAnnotations ===

impl CalendarAnnotations {
    /// The calendar annotations of `layers`, workload first.
    pub fn find(layers: &[Layer<'_>]) -> Self {
        CalendarAnnotations {
            schedule: first_layer_with(layers, &SCHEDULE_KEYS),
            force: first_layer_with(layers, &FORCE_KEYS),
        }
    }

    /// Whether no calendar annotation applies (the environment's schedule decides).
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty() && self.force.is_empty()
    }

    /// The calendar these annotations describe over `environment` (the environment's
    /// schedule), with `schedules` the configuration's. Without annotations
    /// ([`CalendarAnnotations::is_empty`]) it is the environment's schedule.
    pub fn compile(
        &self,
        environment: &Schedule,
        schedules: &IndexMap<String, Schedule>,
    ) -> Result<TargetCalendar, Error> {
        let mut schedule = self.base(environment, schedules)?;
        let mut forced = Vec::new();
        for found in &self.force {
            let state = if found.key == DOWNSCALER_FORCE_UPTIME {
                State::Up
            } else {
                State::Down
            };
            match force_ranges(found)? {
                Force::Never => {}
                Force::Always => {
                    let base = match state {
                        State::Up => Base::Uptime(always()),
                        State::Down => Base::Downtime(always()),
                    };
                    schedule = Schedule::new(schedule.zone(), base);
                    break;
                }
                Force::Ranges(ranges) => forced.extend(ranges.into_iter().map(|range| Exception {
                    range,
                    state,
                    reason: Some(found.source()),
                })),
            }
        }
        if !forced.is_empty() {
            forced.extend(schedule.exceptions().iter().cloned());
            schedule = schedule.with_exceptions(forced);
        }
        let source = self
            .schedule
            .iter()
            .chain(&self.force)
            .map(Found::source)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(TargetCalendar { source, schedule })
    }

    /// The schedule before forced states: the environment's, or what the schedule
    /// annotation says.
    fn base(
        &self,
        environment: &Schedule,
        schedules: &IndexMap<String, Schedule>,
    ) -> Result<Schedule, Error> {
        let [found, rest @ ..] = self.schedule.as_slice() else {
            return Ok(environment.clone());
        };
        let spec = || {
            found.value.parse::<Spec>().map_err(|error| {
                bad(
                    found.key,
                    &found.value,
                    format!("is not a spec string: {error}"),
                )
            })
        };
        match found.key {
            SCHEDULE => schedules.get(found.value.trim()).cloned().ok_or_else(|| {
                bad(
                    SCHEDULE,
                    &found.value,
                    "names no schedule of the configuration",
                )
            }),
            UPTIME => Ok(environment.with_base(Base::Uptime(spec()?))),
            _ if !rest.is_empty() => Err(bad(
                found.key,
                &found.value,
                format!(
                    "is set together with {} on {}: kube-downscaler combines the two, curfew takes one; keep either",
                    rest[0].key, found.object
                ),
            )),
            DOWNSCALER_UPTIME => Ok(environment.with_base(Base::Uptime(spec()?))),
            _ => Ok(environment.with_base(Base::Downtime(spec()?))),
        }
    }
}

/// The annotations among `keys` on the first layer carrying any of them, in `keys` order.
/// Within a layer, curfew's own schedule annotations hide kube-downscaler's.
fn first_layer_with(layers: &[Layer<'_>], keys: &[&'static str]) -> Vec<Found> {
    for layer in layers {
        let mut found: Vec<Found> = keys
            .iter()
            .filter_map(|key| {
                let value = layer.annotations.get(*key)?;
                Some(Found {
                    key,
                    value: value.clone(),
                    object: layer.object.to_string(),
                })
            })
            .collect();
        if found.is_empty() {
            continue;
        }
        if found[0].key == SCHEDULE || found[0].key == UPTIME {
            found.truncate(1);
        }
        return found;
    }
    Vec::new()
}

/// What a force annotation's value means.
enum Force {
    /// `"false"`: not forced (and the namespace's force does not apply either).
    Never,
    /// `"true"`: forced at all times.
    Always,
    /// Forced inside these ranges.
    Ranges(Vec<crate::calendar::spec::AbsoluteRange>),
}

fn force_ranges(found: &Found) -> Result<Force, Error> {
    let expected = "is not 'true', 'false' or absolute ranges (2026-12-24T00:00:00+01:00-2026-12-27T00:00:00+01:00)";
    match found.value.trim().to_ascii_lowercase().as_str() {
        "true" => return Ok(Force::Always),
        "false" => return Ok(Force::Never),
        _ => {}
    }
    let spec: Spec = found
        .value
        .parse()
        .map_err(|_| bad(found.key, &found.value, expected))?;
    spec.items
        .into_iter()
        .map(|item| match item {
            SpecItem::Absolute(range) => Ok(range),
            _ => Err(bad(found.key, &found.value, expected)),
        })
        .collect::<Result<_, _>>()
        .map(Force::Ranges)
}

fn always() -> Spec {
    Spec {
        items: vec![SpecItem::Always],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kube::annotations::testing::{at, mk};

    /// Office hours in Berlin, the environment's schedule.
    fn office() -> Schedule {
        Schedule::new(
            chrono_tz::Europe::Berlin,
            Base::Uptime("Mon-Fri 07:00-20:00".parse().expect("spec")),
        )
    }

    fn named() -> IndexMap<String, Schedule> {
        IndexMap::from([(
            "nights".to_string(),
            Schedule::new(
                chrono_tz::UTC,
                Base::Uptime("Mon-Sun 20:00-06:00".parse().expect("spec")),
            ),
        )])
    }

    fn find(workload: &Annotations, namespace: &Annotations) -> CalendarAnnotations {
        let layers = [
            Layer {
                annotations: workload,
                object: "deployment shop/web",
            },
            Layer {
                annotations: namespace,
                object: "namespace shop",
            },
        ];
        CalendarAnnotations::find(&layers)
    }

    fn compile(workload: &Annotations, namespace: &Annotations) -> Result<TargetCalendar, Error> {
        find(workload, namespace).compile(&office(), &named())
    }

    fn state(calendar: &TargetCalendar, instant: &str) -> State {
        calendar.schedule.decide(at(instant)).state
    }

    // Monday 2026-11-30: 06:00Z is 07:00 in Berlin, 18:30Z is 19:30.
    const MONDAY_EARLY: &str = "2026-11-30T05:30:00Z";
    const MONDAY_EVENING: &str = "2026-11-30T18:30:00Z";
    const MONDAY_NIGHT: &str = "2026-11-30T21:00:00Z";

    #[test]
    fn no_calendar_annotation_means_the_environment_decides() {
        let none = find(&mk(&[]), &mk(&[("other", "x")]));
        assert!(none.is_empty());
        assert_eq!(
            none.compile(&office(), &named()).map(|c| c.schedule),
            Ok(office())
        );
    }

    #[test]
    fn a_workload_uptime_beats_the_namespace_one_and_keeps_the_environment_zone() {
        let workload = mk(&[(UPTIME, "Mon-Fri 08:00-19:00")]);
        let namespace = mk(&[(DOWNSCALER_UPTIME, "always")]);
        let calendar = compile(&workload, &namespace).expect("valid");
        assert_eq!(calendar.source, "curfew.dev/uptime on deployment shop/web");
        assert_eq!(state(&calendar, MONDAY_EARLY), State::Down);
        assert_eq!(
            state(&calendar, MONDAY_EVENING),
            State::Down,
            "19:30 Berlin"
        );
        assert_eq!(state(&calendar, "2026-11-30T12:00:00Z"), State::Up);
        let inherited = compile(&mk(&[]), &namespace).expect("valid");
        assert_eq!(inherited.source, "downscaler/uptime on namespace shop");
        assert_eq!(state(&inherited, MONDAY_NIGHT), State::Up);
    }

    #[test]
    fn downscaler_downtime_is_the_complement() {
        let workload = mk(&[(DOWNSCALER_DOWNTIME, "Mon-Fri 19:00-24:00")]);
        let calendar = compile(&workload, &mk(&[])).expect("valid");
        assert_eq!(state(&calendar, MONDAY_EARLY), State::Up);
        assert_eq!(state(&calendar, MONDAY_EVENING), State::Down);
    }

    #[test]
    fn a_schedule_annotation_names_a_configured_schedule() {
        let workload = mk(&[(SCHEDULE, "nights")]);
        let calendar = compile(&workload, &mk(&[])).expect("valid");
        assert_eq!(state(&calendar, MONDAY_NIGHT), State::Up);
        assert_eq!(state(&calendar, "2026-11-30T12:00:00Z"), State::Down);
        let unknown = compile(&mk(&[(SCHEDULE, "weekends")]), &mk(&[]));
        assert_eq!(unknown.map_err(|e| e.key), Err(SCHEDULE));
    }

    #[test]
    fn forced_states_beat_schedules_and_uptime_beats_downtime() {
        let forced_up = mk(&[(DOWNSCALER_FORCE_UPTIME, "true")]);
        let calendar = compile(&forced_up, &mk(&[])).expect("valid");
        assert_eq!(state(&calendar, MONDAY_NIGHT), State::Up);
        let forced_down_in_namespace = mk(&[(DOWNSCALER_FORCE_DOWNTIME, "true")]);
        let own_uptime = mk(&[(UPTIME, "always")]);
        let calendar = compile(&own_uptime, &forced_down_in_namespace).expect("valid");
        assert_eq!(state(&calendar, "2026-11-30T12:00:00Z"), State::Down);
        let both = mk(&[
            (
                DOWNSCALER_FORCE_UPTIME,
                "2026-11-30T20:00:00Z-2026-11-30T23:00:00Z",
            ),
            (DOWNSCALER_FORCE_DOWNTIME, "true"),
        ]);
        let calendar = compile(&both, &mk(&[])).expect("valid");
        assert_eq!(
            state(&calendar, MONDAY_NIGHT),
            State::Up,
            "inside the forced uptime"
        );
        assert_eq!(state(&calendar, "2026-11-30T12:00:00Z"), State::Down);
    }

    #[test]
    fn a_forced_range_applies_only_inside_it() {
        let workload = mk(&[(
            DOWNSCALER_FORCE_DOWNTIME,
            "2026-11-30T10:00:00Z-2026-11-30T14:00:00Z",
        )]);
        let calendar = compile(&workload, &mk(&[])).expect("valid");
        assert_eq!(state(&calendar, "2026-11-30T12:00:00Z"), State::Down);
        assert_eq!(state(&calendar, "2026-11-30T15:00:00Z"), State::Up);
        let decision = calendar.schedule.decide(at("2026-11-30T12:00:00Z"));
        assert!(
            calendar
                .schedule
                .describe(decision.rule)
                .contains(DOWNSCALER_FORCE_DOWNTIME),
            "{}",
            calendar.schedule.describe(decision.rule)
        );
        let not_forced = mk(&[(DOWNSCALER_FORCE_DOWNTIME, "false")]);
        let namespace = mk(&[(DOWNSCALER_FORCE_DOWNTIME, "true")]);
        let calendar = compile(&not_forced, &namespace).expect("valid");
        assert_eq!(
            state(&calendar, "2026-11-30T12:00:00Z"),
            State::Up,
            "workload opts out"
        );
    }

    #[test]
    fn unusable_values_name_the_annotation() {
        let cases = [
            (UPTIME, "Mon-Fri 8-19"),
            (DOWNSCALER_DOWNTIME, "weekends"),
            (DOWNSCALER_FORCE_UPTIME, "yes"),
            (DOWNSCALER_FORCE_DOWNTIME, "Mon-Fri 08:00-19:00"),
        ];
        for (key, value) in cases {
            let error = compile(&mk(&[(key, value)]), &mk(&[])).expect_err(value);
            assert_eq!(error.key, key);
            assert!(error.to_string().contains(value), "{error}");
        }
        let both = mk(&[
            (DOWNSCALER_UPTIME, "Mon-Fri 08:00-19:00"),
            (DOWNSCALER_DOWNTIME, "Sat-Sun 00:00-24:00"),
        ]);
        assert!(compile(&both, &mk(&[])).is_err());
    }
}
