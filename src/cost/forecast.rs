//! `curfew simulate`: a cost forecast per environment, with and without the schedule, from
//! the plan and the catalog.
//!
//! Capacity comes from the configuration's `simulation:` section (what each environment runs
//! when up, and at its down capacity when down). Node join times and partial wake-ups are not
//! modelled: the forecast switches capacity at each planned transition.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{CostModel, EnvironmentCost};
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
}

/// Forecasts every environment of `config` over `[from, to)`.
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
    let targets = estate.targets(from);
    let forecasts = config
        .plan(from, to)
        .into_iter()
        .map(|plan| {
            let mine: Vec<&Target> = targets
                .iter()
                .filter(|t| t.environment == plan.name)
                .collect();
            let up_rate = EnvironmentCost::sum(
                &mine
                    .iter()
                    .map(|t| model.target_cost(t))
                    .collect::<Vec<_>>(),
            )
            .always_on_per_hour;
            let down_rate = EnvironmentCost::sum(
                &mine
                    .iter()
                    .map(|t| model.target_cost(&t.at_capacity(t.down, None)))
                    .collect::<Vec<_>>(),
            )
            .per_hour;
            let hours_up = hours_in_state(plan.state, &plan.transitions, from, to, State::Up);
            let hours = (to - from).num_seconds() as f64 / 3600.0;
            let hours_down = hours - hours_up;
            let with = hours_up * up_rate + hours_down * down_rate;
            let without = hours * up_rate;
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
            }
        })
        .collect();
    Ok(forecasts)
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
