//! A compiled schedule: its base rule (windows, cron or always-up), holidays and exceptions.
//!
//! Over any span of time each layer yields pieces (intervals with a state and the rule behind
//! it); the layers are then swept in precedence order, exception > holiday > base, into a
//! [`Timeline`].

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeDelta, Utc};

use super::cron::CronExpr;
use super::holidays::HolidaySet;
use super::local::{local_date, local_time, resolve, start_of_day};
use super::spec::{AbsoluteRange, Spec, SpecItem, Window};
use super::timeline::{Segment, Timeline};
use super::{Decision, Rule, State, Transition, Zone};

/// How far [`Schedule::decide`] looks ahead for the next change, in growing steps.
const LOOKAHEAD_DAYS: [i64; 3] = [8, 64, 800];
/// Cron fires are searched this far past a local time, covering any DST shift.
const DST_MARGIN: TimeDelta = TimeDelta::hours(3);

/// What decides the state when no exception or holiday applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// Up inside the spec's windows, down outside them.
    Uptime(Spec),
    /// Down inside the spec's windows, up outside them.
    Downtime(Spec),
    /// Up from each `up_at` fire, down from each `down_at` fire.
    Cron {
        /// When to wake.
        up_at: CronExpr,
        /// When to sleep.
        down_at: CronExpr,
    },
    /// No calendar: always up.
    AlwaysUp,
}

/// An absolute range that forces a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// When it applies.
    pub range: AbsoluteRange,
    /// The state it forces.
    pub state: State,
    /// Why, for people reading the plan.
    pub reason: Option<String>,
}

/// A compiled schedule. Pure: every question takes the instant as a parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    zone: Zone,
    base: Base,
    holidays: HolidaySet,
    holiday_state: State,
    exceptions: Vec<Exception>,
}

/// The span a timeline covers, as instants and as Unix seconds.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    start: i64,
    end: i64,
}

impl Span {
    /// `[s, e)` clipped to the span, if anything is left.
    fn clip(&self, s: i64, e: i64) -> Option<(i64, i64)> {
        let (s, e) = (s.max(self.start), e.min(self.end));
        (s < e).then_some((s, e))
    }
}

/// An interval `[start, end)` in Unix seconds with the state a layer gives it.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: i64,
    end: i64,
    state: State,
    rule: Rule,
}

// === impl Schedule ===

impl Schedule {
    /// A schedule in `zone` decided by `base`, with no holidays or exceptions.
    pub fn new(zone: impl Into<Zone>, base: Base) -> Self {
        Schedule {
            zone: zone.into(),
            base,
            holidays: HolidaySet::default(),
            holiday_state: State::Down,
            exceptions: Vec::new(),
        }
    }

    /// Adds holidays: whole local days in the schedule's zone with state `state`.
    pub fn with_holidays(mut self, holidays: HolidaySet, state: State) -> Self {
        self.holidays = holidays;
        self.holiday_state = state;
        self
    }

    /// Adds exceptions; where they overlap, the first listed wins.
    pub fn with_exceptions(mut self, exceptions: Vec<Exception>) -> Self {
        self.exceptions = exceptions;
        self
    }

    /// The same schedule (zone, holidays, exceptions) with another base rule.
    pub fn with_base(&self, base: Base) -> Self {
        Schedule {
            base,
            ..self.clone()
        }
    }

    /// The schedule's zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The base rule.
    pub fn base(&self) -> &Base {
        &self.base
    }

    /// The holidays.
    pub fn holidays(&self) -> &HolidaySet {
        &self.holidays
    }

    /// The exceptions.
    pub fn exceptions(&self) -> &[Exception] {
        &self.exceptions
    }

    /// The zone a rule's times are local to (a window may carry its own).
    pub fn zone_of(&self, rule: Rule) -> Zone {
        match (rule, &self.base) {
            (Rule::Window(index), Base::Uptime(spec) | Base::Downtime(spec)) => {
                match spec.items.get(index as usize) {
                    Some(SpecItem::Weekly(Window {
                        zone: Some(zone), ..
                    })) => *zone,
                    _ => self.zone,
                }
            }
            _ => self.zone,
        }
    }

    /// A human description of a rule of this schedule, e.g. `uptime 'Mon-Fri 07:00-20:00'`.
    pub fn describe(&self, rule: Rule) -> String {
        match (rule, &self.base) {
            (Rule::Exception(index), _) => match self.exceptions.get(index as usize) {
                Some(Exception {
                    range,
                    state,
                    reason: Some(reason),
                }) => format!("exception '{reason}' ({state} {range})"),
                Some(exception) => format!("exception ({} {})", exception.state, exception.range),
                None => "exception".to_string(),
            },
            (Rule::Holiday(day), _) => format!("holiday {day}"),
            (Rule::Window(index), Base::Uptime(spec) | Base::Downtime(spec)) => {
                let sense = self.window_sense();
                match spec.items.get(index as usize) {
                    Some(item) => format!("{sense} '{item}'"),
                    None => sense.to_string(),
                }
            }
            (Rule::OutsideWindows, Base::Uptime(spec) | Base::Downtime(spec)) => {
                format!("outside {} '{spec}'", self.window_sense())
            }
            (Rule::CronUp, Base::Cron { up_at, .. }) => format!("up_at '{up_at}'"),
            (Rule::CronDown, Base::Cron { down_at, .. }) => format!("down_at '{down_at}'"),
            (Rule::Default, _) => "default (up)".to_string(),
            (other, _) => format!("{other:?}"),
        }
    }

    fn window_sense(&self) -> &'static str {
        match self.base {
            Base::Downtime(_) => "downtime",
            _ => "uptime",
        }
    }

    /// The state and rule at `at`, without looking for the next change (cheaper than
    /// [`Schedule::decide`]).
    pub fn state_at(&self, at: DateTime<Utc>) -> (State, Rule) {
        self.timeline(at, at + Duration::seconds(1))
            .initial()
            .map_or((State::Up, Rule::Default), |segment| {
                (segment.state, segment.rule)
            })
    }

    /// The decision at `at`: state, the rule behind it, and the next instant it changes.
    ///
    /// `next_change` is `None` when the state does not change for over two years.
    pub fn decide(&self, at: DateTime<Utc>) -> Decision {
        let mut decision = None;
        for days in LOOKAHEAD_DAYS {
            let timeline = self.timeline(at, at + Duration::days(days));
            decision = timeline.decide(at);
            if decision.is_some_and(|d| d.next_change.is_some()) {
                break;
            }
        }
        decision.unwrap_or(Decision {
            state: State::Up,
            rule: Rule::Default,
            next_change: None,
        })
    }

    /// Every change of state in `(from, to)`, in order.
    pub fn transitions(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
        self.timeline(from, to).transitions()
    }

    /// The schedule's decisions over `[from, to)`.
    pub fn timeline(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Timeline {
        let (start, end) = (from.timestamp(), to.timestamp().max(from.timestamp() + 1));
        let span = Span {
            from,
            to,
            start,
            end,
        };
        let exceptions = self.exception_pieces(span);
        let holidays = self.holiday_pieces(span);
        let base = self.base_pieces(span);
        let mut boundaries: Vec<i64> = [&exceptions, &holidays, &base]
            .into_iter()
            .flat_map(|pieces| pieces.iter().flat_map(|p| [p.start, p.end]))
            .filter(|at| start < *at && *at < end)
            .collect();
        boundaries.push(start);
        boundaries.sort_unstable();
        boundaries.dedup();
        let segments = boundaries.into_iter().map(|at| {
            let (state, rule) = first_covering(&exceptions, at)
                .or_else(|| covering(&holidays, at))
                .or_else(|| covering(&base, at))
                .unwrap_or((State::Up, Rule::Default));
            Segment {
                start: at,
                state,
                rule,
            }
        });
        Timeline::new(start, end, segments)
    }

    fn exception_pieces(&self, span: Span) -> Vec<Piece> {
        self.exceptions
            .iter()
            .enumerate()
            .filter_map(|(index, exception)| {
                span.clip(
                    exception.range.from.timestamp(),
                    exception.range.to.timestamp(),
                )
                .map(|(s, e)| Piece {
                    start: s,
                    end: e,
                    state: exception.state,
                    rule: Rule::Exception(index as u16),
                })
            })
            .collect()
    }

    fn holiday_pieces(&self, span: Span) -> Vec<Piece> {
        let first = local_date(self.zone, span.from) - Duration::days(1);
        let last = local_date(self.zone, span.to);
        let mut pieces = Vec::new();
        let mut next = self.holidays.next_on_or_after(first);
        while let Some(day) = next.filter(|day| *day <= last) {
            let day_start = start_of_day(self.zone, day).timestamp();
            let day_end = start_of_day(self.zone, day + Duration::days(1)).timestamp();
            if let Some((s, e)) = span.clip(day_start, day_end) {
                pieces.push(Piece {
                    start: s,
                    end: e,
                    state: self.holiday_state,
                    rule: Rule::Holiday(day),
                });
            }
            next = day
                .succ_opt()
                .and_then(|d| self.holidays.next_on_or_after(d));
        }
        pieces
    }

    fn base_pieces(&self, span: Span) -> Vec<Piece> {
        match &self.base {
            Base::Uptime(spec) => self.window_pieces(spec, span, State::Up, State::Down),
            Base::Downtime(spec) => self.window_pieces(spec, span, State::Down, State::Up),
            Base::Cron { up_at, down_at } => self.cron_pieces(up_at, down_at, span),
            Base::AlwaysUp => vec![Piece {
                start: span.start,
                end: span.end,
                state: State::Up,
                rule: Rule::Default,
            }],
        }
    }

    /// Inside any item: `inside`; elsewhere `outside` (rule [`Rule::OutsideWindows`]).
    fn window_pieces(&self, spec: &Spec, span: Span, inside: State, outside: State) -> Vec<Piece> {
        let mut matched: Vec<Piece> = Vec::new();
        for (index, item) in spec.items.iter().enumerate() {
            let rule = Rule::Window(index as u16);
            let mut push = |s: i64, e: i64| {
                if let Some((s, e)) = span.clip(s, e) {
                    matched.push(Piece {
                        start: s,
                        end: e,
                        state: inside,
                        rule,
                    });
                }
            };
            match item {
                SpecItem::Always => push(span.start, span.end),
                SpecItem::Never => {}
                SpecItem::Absolute(range) => push(range.from.timestamp(), range.to.timestamp()),
                SpecItem::Weekly(window) => {
                    let zone = window.zone.unwrap_or(self.zone);
                    for (s, e) in window_instances(window, zone, span.from, span.to) {
                        push(s, e);
                    }
                }
            }
        }
        let mut pieces = flatten(matched, spec.items.len());
        fill_gaps(&mut pieces, span, outside, Rule::OutsideWindows);
        pieces
    }

    fn cron_pieces(&self, up_at: &CronExpr, down_at: &CronExpr, span: Span) -> Vec<Piece> {
        let (from, start, end) = (span.from, span.start, span.end);
        let zone = self.zone;
        let (mut state, mut rule) = initial_cron_state(zone, up_at, down_at, start);
        let window_start = local_time(zone, from) - DST_MARGIN;
        let window_end =
            local_time(zone, DateTime::from_timestamp(end, 0).unwrap_or(from)) + DST_MARGIN;
        let mut fires: Vec<(i64, State, Rule)> = Vec::new();
        for (expr, fire_state, fire_rule) in [
            (up_at, State::Up, Rule::CronUp),
            (down_at, State::Down, Rule::CronDown),
        ] {
            for local in expr.fires_between(window_start, window_end) {
                let at = resolve(zone, local).timestamp();
                if start < at && at < end {
                    fires.push((at, fire_state, fire_rule));
                }
            }
        }
        // At the same instant `up` wins: its entry sorts last and so holds.
        fires.sort_by_key(|(at, state, _)| (*at, *state == State::Up));
        let mut pieces = Vec::new();
        let mut piece_start = start;
        for (at, fire_state, fire_rule) in fires {
            if at > piece_start {
                pieces.push(Piece {
                    start: piece_start,
                    end: at,
                    state,
                    rule,
                });
                piece_start = at;
            }
            state = fire_state;
            rule = fire_rule;
        }
        pieces.push(Piece {
            start: piece_start,
            end,
            state,
            rule,
        });
        pieces
    }
}

/// The state at `at` from the latest cron fire at or before it; up (default) if none ever fired.
fn initial_cron_state(zone: Zone, up_at: &CronExpr, down_at: &CronExpr, at: i64) -> (State, Rule) {
    let Some(instant) = DateTime::from_timestamp(at, 0) else {
        return (State::Up, Rule::Default);
    };
    let local = local_time(zone, instant) + DST_MARGIN;
    let latest = |expr: &CronExpr| -> Option<i64> {
        // Fires just past `local` may still resolve to instants after `at`; walk back past them.
        let mut cursor = local + Duration::seconds(1);
        while let Some(fire) = expr.previous_before(cursor) {
            let fired_at = resolve(zone, fire).timestamp();
            if fired_at <= at {
                return Some(fired_at);
            }
            cursor = fire;
        }
        None
    };
    match (latest(up_at), latest(down_at)) {
        (Some(up), Some(down)) if down > up => (State::Down, Rule::CronDown),
        (Some(_), _) => (State::Up, Rule::CronUp),
        (None, Some(_)) => (State::Down, Rule::CronDown),
        (None, None) => (State::Up, Rule::Default),
    }
}

/// Every instance of a weekly window that may overlap `[from, to)`, as Unix-second intervals.
fn window_instances(
    window: &Window,
    zone: Zone,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> impl Iterator<Item = (i64, i64)> {
    let first = local_date(zone, from) - Duration::days(2);
    let last = local_date(zone, to) + Duration::days(1);
    let window = *window;
    first
        .iter_days()
        .take_while(move |day| *day <= last)
        .filter(move |day| {
            window
                .days
                .contains(day.weekday().num_days_from_monday() as u8)
        })
        .filter_map(move |day| {
            let start = resolve(zone, at_minutes(day, window.start.minutes())?).timestamp();
            let end_day = if window.is_overnight() {
                day.succ_opt()?
            } else {
                day
            };
            let end = resolve(zone, at_minutes(end_day, window.end.minutes())?).timestamp();
            (end > start).then_some((start, end))
        })
}

fn at_minutes(day: NaiveDate, minutes: u16) -> Option<NaiveDateTime> {
    day.and_hms_opt(0, 0, 0)
        .map(|midnight| midnight + Duration::minutes(minutes.into()))
}

/// Flattens possibly overlapping window pieces into disjoint ones; where several items
/// cover an instant, the first item written (lowest index) gives the rule.
fn flatten(pieces: Vec<Piece>, item_count: usize) -> Vec<Piece> {
    let Some(first) = pieces.first().copied() else {
        return pieces;
    };
    let item = |piece: &Piece| match piece.rule {
        Rule::Window(index) => index as usize,
        _ => 0,
    };
    let mut events: Vec<(i64, bool, usize)> = pieces
        .iter()
        .flat_map(|p| [(p.start, true, item(p)), (p.end, false, item(p))])
        .collect();
    events.sort_unstable_by_key(|(at, opens, _)| (*at, *opens));
    let mut active = vec![0u32; item_count.max(1)];
    let mut out: Vec<Piece> = Vec::new();
    let mut index = 0;
    while index < events.len() {
        let at = events[index].0;
        while index < events.len() && events[index].0 == at {
            let (_, opens, item) = events[index];
            if opens {
                active[item] += 1;
            } else {
                active[item] = active[item].saturating_sub(1);
            }
            index += 1;
        }
        let Some(next_at) = events.get(index).map(|e| e.0) else {
            break;
        };
        let Some(winner) = active.iter().position(|count| *count > 0) else {
            continue;
        };
        let rule = Rule::Window(winner as u16);
        match out.last_mut() {
            Some(last) if last.end == at && last.rule == rule => last.end = next_at,
            _ => out.push(Piece {
                start: at,
                end: next_at,
                state: first.state,
                rule,
            }),
        }
    }
    out
}

/// Adds pieces with `state`/`rule` wherever the sorted, disjoint `pieces` leave a gap.
fn fill_gaps(pieces: &mut Vec<Piece>, span: Span, state: State, rule: Rule) {
    let mut gaps = Vec::new();
    let mut cursor = span.start;
    for piece in pieces.iter() {
        if piece.start > cursor {
            gaps.push((cursor, piece.start));
        }
        cursor = cursor.max(piece.end);
    }
    if cursor < span.end {
        gaps.push((cursor, span.end));
    }
    pieces.extend(gaps.into_iter().map(|(s, e)| Piece {
        start: s,
        end: e,
        state,
        rule,
    }));
    pieces.sort_by_key(|p| p.start);
}

/// The state and rule of the piece covering `at`, if any (`pieces` sorted and disjoint).
fn covering(pieces: &[Piece], at: i64) -> Option<(State, Rule)> {
    let index = pieces.partition_point(|p| p.start <= at).checked_sub(1)?;
    let piece = pieces[index];
    (at < piece.end).then_some((piece.state, piece.rule))
}

/// The state and rule of the first listed piece covering `at` (pieces may overlap).
fn first_covering(pieces: &[Piece], at: i64) -> Option<(State, Rule)> {
    pieces
        .iter()
        .find(|p| p.start <= at && at < p.end)
        .map(|p| (p.state, p.rule))
}
