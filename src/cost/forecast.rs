//! `curfew simulate`: a cost forecast per environment, with and without the schedule, from
//! the plan and the catalog.
//!
//! Capacity comes from the configuration's `simulation:` section (what each environment runs
//! when up, and at its down capacity when down). Node join times and partial wake-ups are not
//! modelled: the forecast switches capacity at each planned transition.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{Billing, CostModel, TargetCost};
use crate::calendar::State;
use crate::config::Config;
use crate::domain::Target;
use crate::planner;
use crate::providers::sim::estate::{self, Estate};

/// Why a forecast cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration does not say what the environments run.
    #[error(
        "simulate needs to know each environment's capacity: add a 'simulation:' section \
         describing its node groups and workloads"
    )]
    NoCapacity,
    /// The simulated estate could not be built.
    #[error("simulation: {0}")]
    Estate(#[from] estate::Error),
}

/// One environment's forecast.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentForecast {
    /// The environment.
    pub name: String,
    /// Hours with the desired state up.
    pub hours_up: f64,
    /// Hours with the desired state down.
    pub hours_down: f64,
    /// Dollars with the schedule.
    pub cost_with_schedule: f64,
    /// Dollars if always on.
    pub cost_without_schedule: f64,
    /// The difference.
    pub savings: f64,
    /// The difference as a percentage of always-on.
    pub savings_percent: f64,
    /// The same per kind of target that is charged (pods on managed nodes are part of the
    /// nodes' cost, so they are not listed then).
    pub by_kind: Vec<KindForecast>,
}

/// The forecast of one kind of target in one environment.
#[derive(Debug, Clone, Serialize)]
pub struct KindForecast {
    /// The kind, e.g. `auto_scaling_group`.
    pub kind: &'static str,
    /// Targets of the kind.
    pub targets: usize,
    /// Dollars with the schedule.
    pub cost_with_schedule: f64,
    /// Dollars if always on.
    pub cost_without_schedule: f64,
    /// The difference.
    pub savings: f64,
}

/// Forecasts every environment of `config` over `[from, to)` on its simulated estate.
pub fn forecast(
    config: &Config,
    model: &CostModel,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<EnvironmentForecast>, Error> {
    let simulation = config.simulation.as_ref().ok_or(Error::NoCapacity)?;
    let estate = Estate::from_config(simulation, config.environments.values(), from)?;
    let mut model = model.clone();
    model.set_spot_prices(estate.spot_prices());
    Ok(forecast_targets(
        config,
        &model,
        &estate.targets(from),
        from,
        to,
    ))
}

/// Forecasts every environment of `config` over `[from, to)` for `targets` (discovered or
/// simulated): each at its up capacity while the schedule says up and at its down capacity
/// while it says down; targets curfew leaves alone cost the same either way.
pub fn forecast_targets(
    config: &Config,
    model: &CostModel,
    targets: &[Target],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<EnvironmentForecast> {
    let hours = (to - from).num_seconds() as f64 / 3600.0;
    config
        .plan(from, to)
        .into_iter()
        .map(|plan| {
            let hours_up = hours_in_state(plan.state, &plan.transitions, from, to, State::Up);
            let hours_down = hours - hours_up;
            let mine: Vec<&Target> = targets
                .iter()
                .filter(|t| t.environment == plan.name)
                .collect();
            let costs: Vec<TargetCost> = mine.iter().map(|t| model.target_cost(t)).collect();
            let has_nodes = costs.iter().any(|c| c.billing == Billing::Nodes);
            let mut by_kind: Vec<KindForecast> = Vec::new();
            for (target, cost) in mine.iter().zip(&costs) {
                let charged = match cost.billing {
                    Billing::Standalone => true,
                    Billing::Nodes => has_nodes,
                    Billing::Pods => !has_nodes,
                };
                if !charged {
                    continue;
                }
                let up_rate = cost.always_on_per_hour;
                let without = hours * up_rate;
                let with = if target.rules.unusable.is_some() {
                    without
                } else {
                    let down_rate = model
                        .target_cost(&target.at_capacity(target.down, None))
                        .per_hour;
                    hours_up * up_rate + hours_down * down_rate
                };
                let kind = target.kind.as_str();
                let entry = match by_kind.iter().position(|k| k.kind == kind) {
                    Some(index) => &mut by_kind[index],
                    None => {
                        by_kind.push(KindForecast {
                            kind,
                            targets: 0,
                            cost_with_schedule: 0.0,
                            cost_without_schedule: 0.0,
                            savings: 0.0,
                        });
                        by_kind.last_mut().expect("just pushed")
                    }
                };
                entry.targets += 1;
                entry.cost_with_schedule += with;
                entry.cost_without_schedule += without;
                entry.savings += without - with;
            }
            let with: f64 = by_kind.iter().map(|k| k.cost_with_schedule).sum();
            let without: f64 = by_kind.iter().map(|k| k.cost_without_schedule).sum();
            EnvironmentForecast {
                name: plan.name,
                hours_up,
                hours_down,
                cost_with_schedule: with,
                cost_without_schedule: without,
                savings: without - with,
                savings_percent: if without > 0.0 {
                    100.0 * (without - with) / without
                } else {
                    0.0
                },
                by_kind,
            }
        })
        .collect()
}

/// Hours in `[from, to)` spent in `wanted`, given the state at `from` and the transitions.
fn hours_in_state(
    initial: State,
    transitions: &[planner::PlannedTransition],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    wanted: State,
) -> f64 {
    let mut seconds = 0i64;
    let mut state = initial;
    let mut since = from;
    for transition in transitions {
        if state == wanted {
            seconds += (transition.at - since).num_seconds();
        }
        state = transition.direction;
        since = transition.at;
    }
    if state == wanted {
        seconds += (to - since).num_seconds();
    }
    seconds as f64 / 3600.0
}
