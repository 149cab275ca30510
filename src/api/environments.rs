//! `GET /api/v1/environments`: each environment's state, reason and next transition.

use axum::Json;
use axum::extract::State as AxumState;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use crate::calendar::State;

/// One environment as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentView {
    /// Its name.
    pub name: String,
    /// `up` or `down`: the desired state now.
    pub state: State,
    /// Why.
    pub reason: String,
    /// The next scheduled change, if known.
    pub next_transition: Option<DateTime<Utc>>,
    /// The same instant in the schedule's zone.
    pub next_transition_local: Option<String>,
    /// The schedule's zone.
    pub timezone: String,
    /// The override deciding it, if any.
    pub override_id: Option<String>,
    /// Targets left alone because they were scaled up by hand during downtime.
    pub implicit_overrides: Vec<String>,
    /// Dollars per hour now, when cost is tracked.
    pub cost_per_hour: Option<f64>,
    /// Dollars saved this month (UTC) so far, when cost is tracked.
    pub month_to_date_savings: Option<f64>,
}

/// The answer of the list endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentList {
    /// When the view was decided (the reconciler's clock).
    pub at: Option<DateTime<Utc>>,
    /// Every environment, in configuration order.
    pub environments: Vec<EnvironmentView>,
}

/// Lists every environment from the latest reconcile pass.
pub async fn list(AxumState(state): AxumState<AppState>) -> Json<EnvironmentList> {
    let status = state.status.read().map(|s| s.clone()).unwrap_or_default();
    let costs = state
        .cost
        .as_ref()
        .map(|cost| cost.view())
        .unwrap_or_default();
    let environments = status
        .environments
        .iter()
        .map(|decision| {
            let zone = state
                .config
                .environments
                .get(&decision.environment)
                .map(|env| state.config.schedule_of(env).zone())
                .unwrap_or(chrono_tz::UTC);
            EnvironmentView {
                name: decision.environment.clone(),
                state: decision.state,
                reason: decision.reason.clone(),
                next_transition: decision.next_change,
                next_transition_local: decision
                    .next_change
                    .map(|at| at.with_timezone(&zone).to_rfc3339()),
                timezone: zone.name().to_string(),
                override_id: decision.override_id.clone(),
                implicit_overrides: status
                    .skipped
                    .iter()
                    .filter(|s| s.implicit_override && s.environment == decision.environment)
                    .map(|s| s.target.clone())
                    .collect(),
                cost_per_hour: costs.get(&decision.environment).map(|c| c.per_hour),
                month_to_date_savings: costs
                    .get(&decision.environment)
                    .map(|c| c.month_to_date.savings()),
            }
        })
        .collect();
    Json(EnvironmentList {
        at: status.at,
        environments,
    })
}
