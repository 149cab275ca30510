//! Planning: what each environment's schedule does over a span of time, and which actions
//! bring the observed targets to the desired state now.
//!
//! Pure: the instants are parameters and nothing here performs I/O.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::calendar::format::{self, for_people};
use crate::calendar::{Decision, Schedule, State, Zone};
pub mod idle;

use crate::domain::{
    Action, Capacity, EnvironmentDecision, Override, Target, TargetCalendar, Tier, active_override,
};

/// One environment's plan over a span.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EnvironmentPlan {
    /// The environment.
    pub name: String,
    /// Its schedule's name.
    pub schedule: String,
    /// The schedule's zone.
    pub timezone: String,
    /// Human descriptions of its target groups.
    pub targets: Vec<String>,
    /// The state at the start of the span.
    pub state: State,
    /// Why, at the start of the span.
    pub reason: String,
    /// Every change in the span, in order.
    pub transitions: Vec<PlannedTransition>,
    /// The override deciding the start of the span, if one does (see [`with_overrides`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_id: Option<String>,
}

/// A change of state in a plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedTransition {
    /// The instant, UTC.
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    pub at: DateTime<Utc>,
    /// The same instant in the schedule's zone, RFC 3339.
    pub local: String,
    /// The new state.
    pub direction: State,
    /// The rule that causes it.
    pub rule: String,
    /// The override that causes it, by starting or by ending, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_id: Option<String>,
}

/// The span a plan covers when only its start is given.
pub const DEFAULT_SPAN: chrono::Duration = chrono::Duration::days(7);

/// Plans the environment `name`, decided by its schedule `schedule_name` compiled as
/// `schedule`, with target groups described as `targets`, over `[from, to)`.
pub fn plan_environment(
    name: &str,
    schedule_name: &str,
    schedule: &Schedule,
    targets: Vec<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> EnvironmentPlan {
    let timeline = schedule.timeline(from, to);
    let (state, rule) = timeline
        .initial()
        .map(|segment| (segment.state, segment.rule))
        .unwrap_or_else(|| schedule.state_at(from));
    let transitions = timeline
        .transitions()
        .into_iter()
        .map(|transition| PlannedTransition {
            at: transition.at,
            local: format::local_seconds(transition.at, schedule.zone_of(transition.rule)),
            direction: transition.state,
            rule: schedule.describe(transition.rule),
            override_id: None,
        })
        .collect();
    EnvironmentPlan {
        name: name.to_string(),
        schedule: schedule_name.to_string(),
        timezone: schedule.zone().name().to_string(),
        targets,
        state,
        reason: schedule.describe(rule),
        transitions,
        override_id: None,
    }
}

/// The calendar's `plan` over `[from, to)` with `overrides` applied: the newest active
/// override decides while it lasts, as [`decide_environment`] does. Each transition an
/// override causes, by starting or by ending, names it; calendar transitions an override
/// holds off are dropped. Times for people are in `zone`.
pub fn with_overrides(
    mut plan: EnvironmentPlan,
    overrides: &[Override],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone: Zone,
) -> EnvironmentPlan {
    let relevant: Vec<Override> = overrides
        .iter()
        .filter(|o| o.environment == plan.name && o.until > from && o.created_at < to)
        .cloned()
        .collect();
    if relevant.is_empty() {
        return plan;
    }
    let calendar = std::mem::take(&mut plan.transitions);
    let initial = (plan.state, plan.reason.clone());
    // The calendar's state and rule at `at`: its latest transition up to then.
    let calendar_at = |at: DateTime<Utc>| {
        calendar
            .iter()
            .rev()
            .find(|t| t.at <= at)
            .map_or_else(|| initial.clone(), |t| (t.direction, t.rule.clone()))
    };
    let name = plan.name.clone();
    let deciding = |at: DateTime<Utc>| active_override(&relevant, &name, at);
    let mut instants: Vec<DateTime<Utc>> = calendar
        .iter()
        .map(|t| t.at)
        .chain(relevant.iter().flat_map(|o| [o.created_at, o.until]))
        .filter(|at| *at > from && *at < to)
        .collect();
    instants.sort();
    instants.dedup();
    let override_rule =
        |item: &Override| format!("override until {}", for_people(item.until, zone));
    let start = deciding(from);
    if let Some(item) = start {
        plan.state = item.state;
        plan.reason = override_rule(item);
        plan.override_id = Some(item.id.clone());
    }
    let mut current = (plan.state, start.map(|o| o.id.clone()));
    let mut transitions = Vec::new();
    for at in instants {
        let (state, rule, cause) = match deciding(at) {
            Some(item) => (item.state, override_rule(item), Some(item.id.clone())),
            None => {
                let (state, rule) = calendar_at(at);
                match &current.1 {
                    Some(ended) => (
                        state,
                        format!("override ended; {rule}"),
                        Some(ended.clone()),
                    ),
                    None => (state, rule, None),
                }
            }
        };
        if state != current.0 {
            let local = calendar
                .iter()
                .find(|t| t.at == at && cause.is_none())
                .map_or_else(|| format::local_seconds(at, zone), |t| t.local.clone());
            transitions.push(PlannedTransition {
                at,
                local,
                direction: state,
                rule,
                override_id: cause.clone(),
            });
        }
        current = (state, deciding(at).map(|o| o.id.clone()));
    }
    plan.transitions = transitions;
    plan
}

/// One target as a pass saw it: the state it should be in and the state it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetState {
    /// The target's id.
    pub target: String,
    /// Its environment.
    pub environment: String,
    /// The state its environment (or its own calendar) asks for.
    pub desired: State,
    /// `down` when it runs at its down capacity, else `up`.
    pub actual: State,
    /// Its capacity.
    pub capacity: Capacity,
    /// Its tier: the order in which it wakes.
    pub tier: Tier,
}

/// The desired and actual state of each of `targets` at `now`, given the environments'
/// `decisions`: a target with its own calendar follows it unless an override decides.
pub fn target_states(
    now: DateTime<Utc>,
    decisions: &HashMap<String, EnvironmentDecision>,
    targets: &[Target],
) -> Vec<TargetState> {
    let mut calendars = TargetCalendars::new(decisions);
    targets
        .iter()
        .filter_map(|target| {
            let decision = decisions.get(&target.environment)?;
            Some(TargetState {
                target: target.id.clone(),
                environment: target.environment.clone(),
                desired: calendars.decide(target, decision, now).state,
                actual: if target.capacity == target.down {
                    State::Down
                } else {
                    State::Up
                },
                capacity: target.capacity,
                tier: target.kind.tier(),
            })
        })
        .collect()
}

/// An environment's decision at `now`, with the reason in words.
pub fn decide(schedule: &Schedule, now: DateTime<Utc>) -> (Decision, String) {
    let decision = schedule.decide(now);
    (decision, schedule.describe(decision.rule))
}

/// Decides `environment` at `now`: an active override beats the calendar.
pub fn decide_environment(
    schedule: &Schedule,
    environment: &str,
    overrides: &[Override],
    now: DateTime<Utc>,
) -> EnvironmentDecision {
    let calendar = schedule.decide(now);
    // An override that starts later decides from then on: one created by a replica whose
    // clock runs a little ahead of this one's starts in this replica's future.
    let starting = overrides
        .iter()
        .filter(|o| o.environment == environment && o.created_at > now && o.until > o.created_at)
        .map(|o| o.created_at)
        .min();
    let mut decision = match active_override(overrides, environment, now) {
        Some(item) => {
            // When the override ends the calendar decides again: the state changes then if
            // the calendar disagrees, otherwise at the calendar's next change after that.
            let after = schedule.decide(item.until);
            let next_change = if after.state != item.state {
                Some(item.until)
            } else {
                after.next_change
            };
            EnvironmentDecision {
                environment: environment.to_string(),
                state: item.state,
                reason: format!(
                    "override by {} until {}: {}",
                    item.created_by,
                    for_people(item.until, schedule.zone()),
                    item.reason
                ),
                next_change,
                override_id: Some(item.id.clone()),
                idle_since: None,
            }
        }
        None => EnvironmentDecision {
            environment: environment.to_string(),
            state: calendar.state,
            reason: schedule.describe(calendar.rule),
            next_change: calendar.next_change,
            override_id: None,
            idle_since: None,
        },
    };
    decision.next_change = decision.next_change.into_iter().chain(starting).min();
    decision
}

/// Knobs of action planning.
#[derive(Debug, Clone, Copy)]
pub struct PlanSettings {
    /// Workloads younger than this are not scaled down.
    pub grace_period: chrono::Duration,
    /// Scale down manually scaled-up targets again instead of treating them as overrides.
    pub enforce: bool,
}

/// Workloads younger than this are not scaled down, unless their target says otherwise.
pub const DEFAULT_GRACE_PERIOD: chrono::Duration = chrono::Duration::minutes(15);

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            grace_period: DEFAULT_GRACE_PERIOD,
            enforce: false,
        }
    }
}

/// One action with the tier it belongs to and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    /// The change.
    pub action: Action,
    /// Its tier.
    pub tier: Tier,
    /// The environment of the target (shared by the environment's actions).
    pub environment: Arc<str>,
    /// The target's capacity as observed when the action was planned.
    pub before: Capacity,
    /// Why, in words (shared by the actions of one decision).
    pub reason: Arc<str>,
}

/// A target deliberately left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The target's id.
    pub target: String,
    /// The environment of the target.
    pub environment: String,
    /// Why it is left alone.
    pub reason: String,
    /// Whether this is a manual scale-up during downtime (an implicit override).
    pub implicit_override: bool,
    /// Whether curfew cannot scale the target at all ([`crate::domain::TargetRules::unusable`]).
    pub unusable: bool,
}

/// What to do now: actions in execution order, and what is left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActionPlan {
    /// Sleeping actions, workloads first and databases last, then waking actions, databases
    /// first. Shared with the outcomes of a pass, which name the action they applied.
    pub actions: Vec<Arc<PlannedAction>>,
    /// Targets left alone on purpose.
    pub skipped: Vec<Skipped>,
    /// The earliest next change of a target's own calendar, if any target has one; a loop
    /// that wakes at it catches per-target transitions on time.
    #[serde(serialize_with = "format::serialize_optional_utc_seconds")]
    pub next_change: Option<DateTime<Utc>>,
}

/// A target's desired state: its environment's, or its own calendar's when it has one and no
/// override decides the environment.
#[derive(Debug, Clone)]
struct TargetDecision {
    state: State,
    reason: Arc<str>,
    next_change: Option<DateTime<Utc>>,
}

/// Decides targets with their own calendars, each distinct calendar once per plan.
///
/// Calendars are told apart by value: first by their source (cheap to hash), then by content,
/// so two calendars from the same place that differ are still decided apart.
struct TargetCalendars<'a> {
    decided: HashMap<&'a str, Vec<(&'a TargetCalendar, TargetDecision)>>,
    /// Each environment's name and reason once, shared by the actions planned for it.
    environments: HashMap<&'a str, (Arc<str>, Arc<str>)>,
}

// === impl TargetCalendars ===

impl<'a> TargetCalendars<'a> {
    /// Decides targets of the environments of `decisions`.
    fn new(decisions: &'a HashMap<String, EnvironmentDecision>) -> Self {
        let environments = decisions
            .iter()
            .map(|(name, decision)| {
                let shared = (name.as_str().into(), decision.reason.as_str().into());
                (name.as_str(), shared)
            })
            .collect();
        TargetCalendars {
            decided: HashMap::new(),
            environments,
        }
    }

    /// The name of environment `name`, shared.
    fn environment(&self, name: &str) -> Arc<str> {
        self.environments
            .get(name)
            .map_or_else(|| name.into(), |(name, _)| Arc::clone(name))
    }

    /// The decision for `target` at `now`, given its environment's `decision`.
    fn decide(
        &mut self,
        target: &'a Target,
        decision: &EnvironmentDecision,
        now: DateTime<Utc>,
    ) -> TargetDecision {
        let reason = self
            .environments
            .get(target.environment.as_str())
            .map_or_else(
                || decision.reason.as_str().into(),
                |(_, reason)| Arc::clone(reason),
            );
        let environment = || TargetDecision {
            state: decision.state,
            reason: Arc::clone(&reason),
            next_change: None,
        };
        let Some(calendar) = target.rules.calendar.as_deref() else {
            return environment();
        };
        if decision.override_id.is_some() {
            return environment();
        }
        let same_source = self.decided.entry(calendar.source.as_str()).or_default();
        if let Some((_, decided)) = same_source
            .iter()
            .find(|(known, _)| std::ptr::eq(*known, calendar) || *known == calendar)
        {
            return decided.clone();
        }
        let own = calendar.schedule.decide(now);
        let decided = TargetDecision {
            state: own.state,
            reason: format!(
                "{}: {}",
                calendar.source,
                calendar.schedule.describe(own.rule)
            )
            .into(),
            next_change: own.next_change,
        };
        same_source.push((calendar, decided.clone()));
        decided
    }

    /// The earliest next change among the calendars decided.
    fn next_change(&self) -> Option<DateTime<Utc>> {
        self.decided
            .values()
            .flatten()
            .filter_map(|(_, decided)| decided.next_change)
            .min()
    }
}

/// Plans the actions that bring `targets` to the environments' `decisions`.
///
/// A target with its own calendar follows it unless an override decides its environment.
/// Writes only where state differs: a converged estate plans no action.
pub fn plan_actions(
    now: DateTime<Utc>,
    decisions: &HashMap<String, EnvironmentDecision>,
    targets: &[Target],
    settings: PlanSettings,
) -> ActionPlan {
    let mut plan = ActionPlan::default();
    let mut calendars = TargetCalendars::new(decisions);
    for target in targets {
        let Some(environment) = decisions.get(&target.environment) else {
            continue;
        };
        let decision = calendars.decide(target, environment, now);
        let name = calendars.environment(&target.environment);
        let planned = |action: Action| PlannedAction {
            action,
            tier: target.kind.tier(),
            environment: Arc::clone(&name),
            before: target.capacity,
            reason: Arc::clone(&decision.reason),
        };
        let skip = |reason: String, implicit_override: bool| Skipped {
            target: target.id.clone(),
            environment: target.environment.clone(),
            reason,
            implicit_override,
            unusable: false,
        };
        if let Some(unusable) = &target.rules.unusable {
            plan.skipped.push(Skipped {
                unusable: true,
                ..skip(format!("cannot be scaled: {unusable}"), false)
            });
            continue;
        }
        let grace_period = target.rules.grace_period.unwrap_or(settings.grace_period);
        match (decision.state, target.original) {
            (State::Down, None) if target.capacity == target.down => {}
            (State::Down, None) => match target.created_at {
                Some(created) if now - created < grace_period => plan.skipped.push(skip(
                    format!("younger than the grace period (created {created})"),
                    false,
                )),
                _ => plan.actions.push(Arc::new(planned(Action::ScaleDown {
                    target: target.id.clone(),
                    original: target.capacity,
                    to: target.down,
                }))),
            },
            (State::Down, Some(original)) if target.capacity == original => {
                let stop_again = planned(Action::ScaleDown {
                    target: target.id.clone(),
                    original,
                    to: target.down,
                });
                match running_again(target, now) {
                    // The original was stored but the scale-down never happened (a crash
                    // between a provider's tag write and its resize): finish it.
                    RunningAgain::Interrupted => plan.actions.push(Arc::new(stop_again)),
                    RunningAgain::ByTheCloud => {
                        let days = target.kind.max_stopped().map_or(0, |d| d.num_days());
                        plan.actions.push(Arc::new(PlannedAction {
                            reason: format!(
                                "started again by the cloud after {days} days stopped; {}",
                                decision.reason
                            )
                            .into(),
                            ..stop_again
                        }));
                    }
                    RunningAgain::ByHand if settings.enforce => {
                        plan.actions.push(Arc::new(stop_again))
                    }
                    RunningAgain::ByHand => plan.skipped.push(skip(
                        "started by hand during downtime: left alone until the next scheduled change"
                            .to_string(),
                        true,
                    )),
                }
            }
            (State::Down, Some(original)) if target.capacity != target.down => {
                if settings.enforce {
                    // Scale down again; the stored original is kept, never overwritten.
                    plan.actions.push(Arc::new(planned(Action::ScaleDown {
                        target: target.id.clone(),
                        original,
                        to: target.down,
                    })));
                } else {
                    plan.skipped.push(skip(
                        format!(
                            "scaled to {} by hand during downtime: left alone until the next scheduled change",
                            target.capacity
                        ),
                        true,
                    ));
                }
            }
            (State::Down, Some(_)) => {}
            (State::Up, Some(original)) => plan.actions.push(Arc::new(planned(Action::ScaleUp {
                target: target.id.clone(),
                to: restored(original, target.capacity),
            }))),
            (State::Up, None) => {}
        }
    }
    plan.actions.sort_by(|a, b| {
        execution_rank(a)
            .cmp(&execution_rank(b))
            .then_with(|| a.action.target().cmp(b.action.target()))
    });
    // The pass holds its plan to its end: not the room a list grown by doubling has spare.
    plan.actions.shrink_to_fit();
    plan.next_change = calendars.next_change();
    plan
}

/// Why a target runs at the original curfew stored when it put it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunningAgain {
    /// The scale-down never happened: a crash between storing the original and the stop.
    Interrupted,
    /// The cloud started it by itself ([`Kind::max_stopped`]): stop it again.
    ByTheCloud,
    /// A person started it: an implicit override, like a manual scale-up.
    ByHand,
}

/// Tells apart the ways a target that curfew stopped can run again. Only kinds the cloud
/// starts by itself keep a record of the stop; without one the stop never happened. With
/// one, the target runs again because the cloud said it started it, or because the cloud's
/// limit has passed since the stop, or else because a person started it.
fn running_again(target: &Target, now: DateTime<Utc>) -> RunningAgain {
    let (Some(limit), Some(stopped)) = (target.kind.max_stopped(), target.rules.stopped) else {
        return RunningAgain::Interrupted;
    };
    if stopped.restarted_by_cloud || now - stopped.at >= limit {
        RunningAgain::ByTheCloud
    } else {
        RunningAgain::ByHand
    }
}

/// The capacity to restore on waking: the stored original, except that a group's maximum
/// raised while it slept (say by Terraform) is kept.
fn restored(original: Capacity, current: Capacity) -> Capacity {
    match (original, current) {
        (
            Capacity::Group { min, max, desired },
            Capacity::Group {
                max: current_max, ..
            },
        ) => Capacity::Group {
            min,
            max: max.max(current_max),
            desired,
        },
        _ => original,
    }
}

/// Sleeping first (workloads, then StatefulSets, then nodes, then databases), then waking
/// (databases first).
fn execution_rank(planned: &PlannedAction) -> (u8, usize) {
    let tier = Tier::WAKE_ORDER
        .iter()
        .position(|tier| *tier == planned.tier)
        .unwrap_or(0);
    match planned.action {
        Action::ScaleDown { .. } => (0, Tier::WAKE_ORDER.len() - tier),
        Action::ScaleUp { .. } => (1, tier),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::testing::{at, mk_database_target, mk_decision, mk_target};
    use crate::domain::{Capacity, Kind, StopRecord};
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        at(0)
    }

    fn decisions(state: State) -> HashMap<String, EnvironmentDecision> {
        HashMap::from([("staging".to_string(), mk_decision(state))])
    }

    /// The first action planned for the web Deployment at `replicas`, `original` stored.
    fn first_action_for_web(state: State, replicas: u32, original: Option<u32>) -> Option<Action> {
        let targets = [mk_target(
            "deployment/shop/web",
            Kind::Deployment,
            replicas,
            original,
        )];
        let plan = plan_actions(now(), &decisions(state), &targets, PlanSettings::default());
        plan.actions.first().map(|planned| planned.action.clone())
    }

    /// Scaling the web Deployment to zero, remembering `original` replicas.
    fn scale_down_web(original: u32) -> Action {
        Action::ScaleDown {
            target: "deployment/shop/web".into(),
            original: Capacity::Replicas(original),
            to: Capacity::Replicas(0),
        }
    }

    fn ids(plan: &ActionPlan) -> Vec<&str> {
        plan.actions.iter().map(|a| a.action.target()).collect()
    }

    #[test]
    fn going_down_stores_the_current_capacity_as_original() {
        assert_eq!(
            first_action_for_web(State::Down, 3, None),
            Some(scale_down_web(3))
        );
    }

    #[test]
    fn converged_estate_plans_no_action() {
        let targets = [
            mk_target("deployment/shop/web", Kind::Deployment, 0, Some(3)),
            mk_target("deployment/shop/idle", Kind::Deployment, 0, None),
        ];
        let plan = plan_actions(
            now(),
            &decisions(State::Down),
            &targets,
            PlanSettings::default(),
        );
        assert!(plan.actions.is_empty(), "{plan:?}");
        let up = [mk_target("deployment/shop/web", Kind::Deployment, 3, None)];
        let plan = plan_actions(now(), &decisions(State::Up), &up, PlanSettings::default());
        assert!(plan.actions.is_empty(), "{plan:?}");
    }

    #[test]
    fn manual_scale_up_during_downtime_keeps_original() {
        let targets = [mk_target(
            "deployment/shop/web",
            Kind::Deployment,
            2,
            Some(5),
        )];
        let plan = plan_actions(
            now(),
            &decisions(State::Down),
            &targets,
            PlanSettings::default(),
        );
        assert!(plan.actions.is_empty());
        assert!(plan.skipped[0].implicit_override);
        let enforce = PlanSettings {
            enforce: true,
            ..PlanSettings::default()
        };
        let plan = plan_actions(now(), &decisions(State::Down), &targets, enforce);
        assert_eq!(
            plan.actions[0].action,
            Action::ScaleDown {
                target: "deployment/shop/web".into(),
                original: Capacity::Replicas(5),
                to: Capacity::Replicas(0),
            }
        );
    }

    #[test]
    fn waking_restores_the_original() {
        let action = first_action_for_web(State::Up, 0, Some(4));
        assert_eq!(
            action,
            Some(Action::ScaleUp {
                target: "deployment/shop/web".into(),
                to: Capacity::Replicas(4),
            })
        );
    }

    #[test]
    fn an_interrupted_scale_down_is_finished_not_taken_for_a_manual_scale_up() {
        // The original was written but the replicas never changed.
        assert_eq!(
            first_action_for_web(State::Down, 3, Some(3)),
            Some(scale_down_web(3))
        );
    }

    #[test]
    fn waking_keeps_a_maximum_raised_during_downtime() {
        let group = |min, max, desired| Capacity::Group { min, max, desired };
        let mut target = mk_target("auto_scaling_group/nodes", Kind::AutoScalingGroup, 0, None);
        target.capacity = group(0, 10, 0);
        target.original = Some(group(2, 6, 3));
        target.down = group(0, 0, 0);
        let plan = plan_actions(
            now(),
            &decisions(State::Up),
            &[target],
            PlanSettings::default(),
        );
        assert_eq!(
            plan.actions[0].action,
            Action::ScaleUp {
                target: "auto_scaling_group/nodes".into(),
                to: group(2, 10, 3),
            }
        );
    }

    /// A target calendar that is always `state`.
    fn own_calendar(state: State) -> Arc<TargetCalendar> {
        let spec = "always".parse().unwrap();
        let base = match state {
            State::Up => crate::calendar::Base::Uptime(spec),
            State::Down => crate::calendar::Base::Downtime(spec),
        };
        Arc::new(TargetCalendar {
            source: "curfew.dev/uptime on deployment shop/web".into(),
            schedule: Schedule::new(chrono_tz::UTC, base),
        })
    }

    #[test]
    fn a_target_calendar_beats_the_environment_calendar() {
        let mut kept_up = mk_target("deployment/shop/web", Kind::Deployment, 3, None);
        kept_up.rules.calendar = Some(own_calendar(State::Up));
        let follower = mk_target("deployment/shop/api", Kind::Deployment, 2, None);
        let plan = plan_actions(
            now(),
            &decisions(State::Down),
            &[kept_up.clone(), follower],
            PlanSettings::default(),
        );
        assert_eq!(ids(&plan), ["deployment/shop/api"]);
        let mut sleeper = kept_up;
        sleeper.rules.calendar = Some(own_calendar(State::Down));
        let plan = plan_actions(
            now(),
            &decisions(State::Up),
            &[sleeper],
            PlanSettings::default(),
        );
        assert_eq!(plan.actions[0].action, scale_down_web(3));
        assert_first_reason_starts_with(&plan, "curfew.dev/uptime on deployment shop/web: ");
    }

    fn assert_first_reason_starts_with(plan: &ActionPlan, prefix: &str) {
        let reason = &plan.actions[0].reason;
        assert!(reason.starts_with(prefix), "{reason}");
    }

    #[test]
    fn an_environment_override_beats_a_target_calendar() {
        let mut sleeper = mk_target("deployment/shop/web", Kind::Deployment, 3, None);
        sleeper.rules.calendar = Some(own_calendar(State::Down));
        let mut overridden = decisions(State::Up);
        overridden.get_mut("staging").unwrap().override_id = Some("o1".into());
        let plan = plan_actions(now(), &overridden, &[sleeper], PlanSettings::default());
        assert!(plan.actions.is_empty(), "{plan:?}");
    }

    #[test]
    fn the_plan_reports_the_next_change_of_target_calendars() {
        let schedule = Schedule::new(
            chrono_tz::UTC,
            crate::calendar::Base::Uptime("Mon-Sun 00:00-12:00".parse().unwrap()),
        );
        let mut target = mk_target("deployment/shop/web", Kind::Deployment, 3, None);
        target.rules.calendar = Some(Arc::new(TargetCalendar {
            source: "test".into(),
            schedule: schedule.clone(),
        }));
        let plan = plan_actions(
            now(),
            &decisions(State::Up),
            &[target],
            PlanSettings::default(),
        );
        assert_eq!(plan.next_change, schedule.decide(now()).next_change);
        assert!(plan.next_change.is_some());
    }

    #[test]
    fn young_workloads_are_not_scaled_down_within_their_grace_period() {
        let plan_for = |age: Duration, grace_period: Option<Duration>| {
            let mut young = mk_target("deployment/shop/new", Kind::Deployment, 2, None);
            young.created_at = Some(now() - age);
            young.rules.grace_period = grace_period;
            plan_actions(
                now(),
                &decisions(State::Down),
                &[young],
                PlanSettings::default(),
            )
        };
        let five_minutes = plan_for(Duration::minutes(5), None);
        assert!(five_minutes.actions.is_empty(), "the default is 15 minutes");
        assert!(five_minutes.skipped[0].reason.contains("grace period"));
        assert_eq!(plan_for(Duration::minutes(30), None).actions.len(), 1);
        let own = plan_for(Duration::minutes(30), Some(Duration::hours(1)));
        assert!(own.actions.is_empty(), "the target's own grace period");
    }

    #[test]
    fn waking_goes_databases_then_nodes_then_statefulsets_then_the_rest_and_sleeping_reverses() {
        let waking = [
            mk_target("deployment/a", Kind::Deployment, 0, Some(1)),
            mk_target("stateful_set/b", Kind::StatefulSet, 0, Some(1)),
            mk_target("auto_scaling_group/c", Kind::AutoScalingGroup, 0, Some(1)),
            mk_database_target(false, Some(true)),
        ];
        let plan = plan_actions(
            now(),
            &decisions(State::Up),
            &waking,
            PlanSettings::default(),
        );
        assert_eq!(
            ids(&plan),
            [
                "db_cluster/eu-central-1/orders",
                "auto_scaling_group/c",
                "stateful_set/b",
                "deployment/a"
            ]
        );
        let sleeping = [
            mk_database_target(true, None),
            mk_target("auto_scaling_group/c", Kind::AutoScalingGroup, 1, None),
            mk_target("deployment/a", Kind::Deployment, 1, None),
            mk_target("stateful_set/b", Kind::StatefulSet, 1, None),
        ];
        let plan = plan_actions(
            now(),
            &decisions(State::Down),
            &sleeping,
            PlanSettings::default(),
        );
        assert_eq!(
            ids(&plan),
            [
                "deployment/a",
                "stateful_set/b",
                "auto_scaling_group/c",
                "db_cluster/eu-central-1/orders"
            ]
        );
    }

    /// The Aurora cluster running again at night, curfew having stopped it `days_ago` (none:
    /// no stop recorded), the cloud reporting its own start or not.
    fn database_running_again(days_ago: Option<i64>, restarted_by_cloud: bool) -> Target {
        let mut database = mk_database_target(true, Some(true));
        database.rules.stopped = days_ago.map(|days| StopRecord {
            at: now() - Duration::days(days),
            restarted_by_cloud,
        });
        database
    }

    fn night_plan(target: Target, settings: PlanSettings) -> ActionPlan {
        plan_actions(now(), &decisions(State::Down), &[target], settings)
    }

    fn stop_database() -> Action {
        Action::ScaleDown {
            target: "db_cluster/eu-central-1/orders".into(),
            original: Capacity::Running(true),
            to: Capacity::Running(false),
        }
    }

    #[test]
    fn a_database_running_seven_days_after_curfew_stopped_it_was_started_by_the_cloud_and_stops_again()
     {
        for days in [7, 9] {
            let plan = night_plan(
                database_running_again(Some(days), false),
                PlanSettings::default(),
            );
            assert_eq!(plan.actions[0].action, stop_database(), "{days} days");
            assert_first_reason_starts_with(
                &plan,
                "started again by the cloud after 7 days stopped",
            );
        }
        let reported = night_plan(
            database_running_again(Some(2), true),
            PlanSettings::default(),
        );
        assert_eq!(
            reported.actions[0].action,
            stop_database(),
            "the cloud said so"
        );
    }

    #[test]
    fn a_database_started_sooner_was_started_by_hand_and_is_an_implicit_override() {
        let plan = night_plan(
            database_running_again(Some(6), false),
            PlanSettings::default(),
        );
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(plan.skipped[0].implicit_override);
        assert!(
            plan.skipped[0]
                .reason
                .contains("started by hand during downtime")
        );
        let enforce = PlanSettings {
            enforce: true,
            ..PlanSettings::default()
        };
        let plan = night_plan(database_running_again(Some(6), false), enforce);
        assert_eq!(plan.actions[0].action, stop_database());
    }

    #[test]
    fn a_database_running_without_a_recorded_stop_finishes_the_interrupted_stop() {
        let plan = night_plan(database_running_again(None, false), PlanSettings::default());
        assert_eq!(plan.actions[0].action, stop_database());
        assert_eq!(&*plan.actions[0].reason, "test");
    }

    #[test]
    fn a_database_stopped_before_curfew_is_left_stopped_on_wake() {
        let stopped = mk_database_target(false, None);
        let plan = plan_actions(
            now(),
            &decisions(State::Up),
            &[stopped],
            PlanSettings::default(),
        );
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(plan.skipped.is_empty());
    }

    #[test]
    fn an_unusable_target_is_reported_and_left_alone_whatever_the_schedule() {
        let mut replica = mk_database_target(true, None);
        replica.rules.unusable = Some("a read replica of orders, which RDS cannot stop".into());
        for state in [State::Down, State::Up] {
            let plan = plan_actions(
                now(),
                &decisions(state),
                std::slice::from_ref(&replica),
                PlanSettings::default(),
            );
            assert!(plan.actions.is_empty(), "{plan:?}");
            assert_eq!(
                plan.skipped[0].reason,
                "cannot be scaled: a read replica of orders, which RDS cannot stop"
            );
            assert!(!plan.skipped[0].implicit_override);
            assert!(plan.skipped[0].unusable);
        }
    }

    /// 2027-01-18 (a Monday) at `hh:mm` UTC.
    fn monday(hh: u32, mm: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2027, 1, 18)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
            .and_utc()
    }

    fn office_plan(overrides: &[Override]) -> EnvironmentPlan {
        let schedule = Schedule::new(
            chrono_tz::UTC,
            crate::calendar::Base::Uptime("Mon-Fri 07:00-20:00".parse().unwrap()),
        );
        let (from, to) = (monday(4, 0), monday(23, 0));
        let calendar = plan_environment("staging", "office", &schedule, Vec::new(), from, to);
        with_overrides(calendar, overrides, from, to, Zone::UTC)
    }

    fn mk_override(id: &str, state: State, from: DateTime<Utc>, until: DateTime<Utc>) -> Override {
        Override {
            id: id.into(),
            environment: "staging".into(),
            state,
            created_at: from,
            until,
            reason: "test".into(),
            created_by: "otto".into(),
        }
    }

    /// Each transition's instant, direction and cause.
    fn transitions_of(plan: &EnvironmentPlan) -> Vec<(DateTime<Utc>, State, Option<&str>)> {
        plan.transitions
            .iter()
            .map(|t| (t.at, t.direction, t.override_id.as_deref()))
            .collect()
    }

    #[test]
    fn a_down_override_holds_the_wake_up_back_and_its_end_causes_the_transition() {
        let held = mk_override("o1", State::Down, monday(3, 0), monday(8, 30));
        let plan = office_plan(&[held]);
        assert_eq!(
            transitions_of(&plan),
            [
                (monday(8, 30), State::Up, Some("o1")),
                (monday(20, 0), State::Down, None),
            ]
        );
        assert!(
            plan.transitions[0].rule.starts_with("override ended; "),
            "{plan:?}"
        );
        assert_eq!(plan.override_id.as_deref(), Some("o1"));
    }

    #[test]
    fn a_newer_override_decides_while_it_lasts_then_the_older_one_again() {
        let evening = mk_override("long", State::Up, monday(6, 0), monday(22, 0));
        let lunch = mk_override("lunch", State::Down, monday(12, 0), monday(13, 0));
        let plan = office_plan(&[evening, lunch]);
        assert_eq!(
            transitions_of(&plan),
            [
                (monday(6, 0), State::Up, Some("long")),
                (monday(12, 0), State::Down, Some("lunch")),
                (monday(13, 0), State::Up, Some("long")),
                (monday(22, 0), State::Down, Some("long")),
            ]
        );
        let without = office_plan(&[]);
        assert_eq!(without.transitions.len(), 2);
        assert!(without.transitions.iter().all(|t| t.override_id.is_none()));
    }

    #[test]
    fn target_states_follow_the_environment_or_the_target_calendar() {
        let mut own = mk_target("deployment/shop/own", Kind::Deployment, 3, None);
        own.rules.calendar = Some(own_calendar(State::Up));
        let targets = [
            mk_target("deployment/shop/web", Kind::Deployment, 3, None),
            mk_target("deployment/shop/idle", Kind::Deployment, 0, Some(2)),
            own,
        ];
        let states = target_states(now(), &decisions(State::Down), &targets);
        let summary: Vec<(&str, State, State)> = states
            .iter()
            .map(|s| (s.target.as_str(), s.desired, s.actual))
            .collect();
        assert_eq!(
            summary,
            [
                ("deployment/shop/web", State::Down, State::Up),
                ("deployment/shop/idle", State::Down, State::Down),
                ("deployment/shop/own", State::Up, State::Up),
            ]
        );
    }

    #[test]
    fn override_beats_the_calendar_until_it_ends() {
        let schedule = Schedule::new(
            chrono_tz::UTC,
            crate::calendar::Base::Uptime("Mon-Fri 07:00-20:00".parse().unwrap()),
        );
        // 2027-01-15T21:20:00Z is a Friday night: the calendar says down.
        let friday_night = DateTime::parse_from_rfc3339("2027-01-15T21:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let item = Override {
            id: "o1".into(),
            environment: "staging".into(),
            state: State::Up,
            created_at: friday_night - Duration::minutes(1),
            until: friday_night + Duration::hours(2),
            reason: "release rehearsal".into(),
            created_by: "otto".into(),
        };
        let decision = decide_environment(
            &schedule,
            "staging",
            std::slice::from_ref(&item),
            friday_night,
        );
        assert_eq!(decision.state, State::Up);
        assert_eq!(decision.next_change, Some(item.until));
        assert_eq!(decision.override_id.as_deref(), Some("o1"));
        let after = decide_environment(
            &schedule,
            "staging",
            std::slice::from_ref(&item),
            item.until,
        );
        assert_eq!(after.state, State::Down);
        assert!(after.override_id.is_none());
    }

    #[test]
    fn an_override_starting_later_is_the_next_change() {
        let schedule = Schedule::new(
            chrono_tz::UTC,
            crate::calendar::Base::Uptime("never".parse().unwrap()),
        );
        let now = crate::domain::testing::at(0);
        // Created by a replica whose clock is 800 ms ahead of this one's.
        let item = crate::domain::testing::mk_override(
            "o1",
            "staging",
            State::Up,
            now + Duration::milliseconds(800),
            now + Duration::hours(2),
        );
        let before = decide_environment(&schedule, "staging", std::slice::from_ref(&item), now);
        assert_eq!(before.state, State::Down);
        assert_eq!(before.next_change, Some(item.created_at));
        let elsewhere = decide_environment(&schedule, "prod", std::slice::from_ref(&item), now);
        assert_eq!(elsewhere.next_change, None);
        let then = decide_environment(
            &schedule,
            "staging",
            std::slice::from_ref(&item),
            item.created_at,
        );
        assert_eq!(then.state, State::Up);
        assert_eq!(then.next_change, Some(item.until));
    }
}
