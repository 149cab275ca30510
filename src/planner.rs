//! Planning: what each environment's schedule does over a span of time.
//!
//! Pure: the instants are parameters and nothing here performs I/O.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::calendar::{Decision, Schedule, State};
use crate::config::{Config, Environment};

/// One environment's plan over a span.
#[derive(Debug, Clone, Serialize)]
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
}

/// A change of state in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTransition {
    /// The instant, UTC.
    pub at: DateTime<Utc>,
    /// The same instant in the schedule's zone, RFC 3339.
    pub local: String,
    /// The new state.
    pub direction: State,
    /// The rule that causes it.
    pub rule: String,
}

/// Plans every environment of `config` over `[from, to)`.
pub fn plan(config: &Config, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<EnvironmentPlan> {
    config
        .environments
        .values()
        .map(|environment| plan_environment(config, environment, from, to))
        .collect()
}

/// Plans one environment over `[from, to)`.
pub fn plan_environment(
    config: &Config,
    environment: &Environment,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> EnvironmentPlan {
    let schedule = config.schedule_of(environment);
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
            local: transition
                .at
                .with_timezone(&schedule.zone_of(transition.rule))
                .to_rfc3339(),
            direction: transition.state,
            rule: schedule.describe(transition.rule),
        })
        .collect();
    EnvironmentPlan {
        name: environment.name.clone(),
        schedule: environment.schedule.clone(),
        timezone: schedule.zone().name().to_string(),
        targets: environment
            .targets
            .iter()
            .map(|target| target.describe())
            .collect(),
        state,
        reason: schedule.describe(rule),
        transitions,
    }
}

/// An environment's decision at `now`, with the reason in words.
pub fn decide(schedule: &Schedule, now: DateTime<Utc>) -> (Decision, String) {
    let decision = schedule.decide(now);
    (decision, schedule.describe(decision.rule))
}
