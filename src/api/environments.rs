//! `GET /api/v1/environments`: each environment's state, reason, next transition and active
//! overrides. Needs no token.

use std::sync::RwLock;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::calendar::{State, format};
use crate::overrides::Override;
use crate::planner;

/// One environment as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentView {
    /// Its name.
    pub name: String,
    /// `up` or `down`: the desired state now.
    pub state: State,
    /// Why.
    pub reason: String,
    /// The next scheduled change, if known.
    #[serde(serialize_with = "format::serialize_optional_utc_seconds")]
    pub next_transition: Option<DateTime<Utc>>,
    /// The same instant in the schedule's zone.
    pub next_transition_local: Option<String>,
    /// The schedule's zone.
    pub timezone: String,
    /// The override deciding it, if any.
    pub override_id: Option<String>,
    /// Every active override of the environment, newest first.
    pub overrides: Vec<Override>,
    /// Targets left alone because they were scaled up by hand during downtime.
    pub implicit_overrides: Vec<String>,
    /// What the environment costs per hour now, in dollars; `null` when costs are not tracked.
    pub cost_per_hour: Option<f64>,
    /// Dollars saved this month (UTC) so far; `null` when costs are not tracked.
    pub month_to_date_savings: Option<f64>,
}

/// The answer of the list endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentList {
    /// When the view was decided (the service's clock); it holds until the next transition.
    #[serde(serialize_with = "format::serialize_optional_utc_seconds")]
    pub at: Option<DateTime<Utc>>,
    /// Every environment, in configuration order.
    pub environments: Vec<EnvironmentView>,
}

/// Lists every environment, decided now.
#[utoipa::path(
    get,
    path = "/api/v1/environments",
    tag = "environments",
    responses((status = 200, description = "Every environment", body = EnvironmentList))
)]
pub async fn list(AxumState(state): AxumState<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.environments_cache.body(&state).await,
    )
        .into_response()
}

/// The serialised list, reused until something it depends on changes: the overrides, the
/// reconciler's latest pass, or the clock reaching the next transition or override end.
#[derive(Debug, Default)]
pub struct ViewCache {
    cached: RwLock<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    overrides: Vec<Override>,
    pass: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    body: Bytes,
}

// === impl ViewCache ===

impl ViewCache {
    /// The JSON body of the list as of now.
    pub async fn body(&self, state: &AppState) -> Bytes {
        let now = state.clock.now();
        let overrides = state.overrides.list().await.unwrap_or_default();
        let pass = state.status.read().map(|s| s.at).unwrap_or_default();
        if let Ok(cached) = self.cached.read()
            && let Some(cached) = cached.as_ref()
            && cached.pass == pass
            && cached.valid_until.is_none_or(|until| now < until)
            && cached.overrides == overrides
        {
            return cached.body.clone();
        }
        let list = views_of(state, &overrides);
        let body = Bytes::from(serde_json::to_vec(&list).unwrap_or_default());
        let valid_until = list
            .environments
            .iter()
            .filter_map(|e| e.next_transition)
            .chain(
                overrides
                    .iter()
                    .flat_map(|o| [o.created_at, o.until])
                    .filter(|at| *at > now),
            )
            .min();
        if let Ok(mut slot) = self.cached.write() {
            *slot = Some(Cached {
                overrides,
                pass,
                valid_until,
                body: body.clone(),
            });
        }
        body
    }
}

/// The environments as the API and the status page show them, decided at the clock's now
/// (so an override shows at once, before the reconcile pass it triggered has finished).
pub async fn views(state: &AppState) -> EnvironmentList {
    let stored = state.overrides.list().await.unwrap_or_default();
    views_of(state, &stored)
}

/// The environments decided at the clock's now with the `stored` overrides.
fn views_of(state: &AppState, stored: &[Override]) -> EnvironmentList {
    let now = state.clock.now();
    let skipped = state
        .status
        .read()
        .map(|s| s.skipped.clone())
        .unwrap_or_default();
    let costs = state
        .cost
        .as_ref()
        .map(|cost| cost.view())
        .unwrap_or_default();
    let environments = state
        .config
        .environments
        .values()
        .map(|environment| {
            let schedule = state.config.schedule_of(environment);
            let zone = schedule.zone();
            let decision = planner::decide_environment(schedule, &environment.name, stored, now);
            let mut overrides: Vec<Override> = stored
                .iter()
                .filter(|o| o.environment == environment.name && o.is_active(now))
                .cloned()
                .collect();
            overrides.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            EnvironmentView {
                name: environment.name.clone(),
                state: decision.state,
                reason: decision.reason,
                next_transition: decision.next_change,
                next_transition_local: decision
                    .next_change
                    .map(|at| format::local_seconds(at, zone)),
                timezone: zone.name().to_string(),
                override_id: decision.override_id,
                overrides,
                implicit_overrides: skipped
                    .iter()
                    .filter(|s| s.implicit_override && s.environment == environment.name)
                    .map(|s| s.target.clone())
                    .collect(),
                cost_per_hour: costs.get(&environment.name).map(|c| c.per_hour),
                month_to_date_savings: costs
                    .get(&environment.name)
                    .map(|c| c.month_to_date.savings()),
            }
        })
        .collect();
    EnvironmentList {
        at: Some(now),
        environments,
    }
}
