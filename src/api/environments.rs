//! `GET /api/v1/environments`: each environment's state, reason, next transition and active
//! overrides.
//!
//! Needs no token. Without one it shows what anyone may know: each environment's state, why
//! (the calendar's rule, or `override until T` without who and why), the next change, costs
//! and how many overrides are active. A token adds the overrides of the environments in its
//! scope (ids, who, why), as `GET /api/v1/overrides` shows them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, MaybeAuthenticated};
use super::{ApiError, AppState};
use crate::calendar::{State, format};
use crate::domain::{Override, active_override};
use crate::reconciler::{self, Status, Unseen};

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
    /// The override deciding it, if any and the caller's token covers the environment.
    pub override_id: Option<String>,
    /// How many overrides of the environment are active (all of them, seen or not).
    pub override_count: usize,
    /// The environment's active overrides, newest first, when the caller's token covers the
    /// environment; empty otherwise.
    pub overrides: Vec<Override>,
    /// Targets left alone because they were scaled up by hand during downtime.
    pub implicit_overrides: Vec<String>,
    /// Targets curfew cannot scale (read replicas, cluster members, databases that cannot
    /// stop), left alone whatever the schedule says, with the reason.
    pub unusable_targets: Vec<UnusableTarget>,
    /// What the environment costs per hour now, in dollars; `null` when costs are not tracked.
    pub cost_per_hour: Option<f64>,
    /// Dollars saved this month (UTC) so far; `null` when costs are not tracked.
    pub month_to_date_savings: Option<f64>,
    /// Part of the environment's targets that the latest pass could not see; `null` while
    /// every target selection was read.
    pub degraded: Option<Degraded>,
}

/// What of an environment is unseen, and since when.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Degraded {
    /// Since when part of the environment has been unseen (the earliest of `unseen`).
    pub since: DateTime<Utc>,
    /// Each target selection that could not be read.
    pub unseen: Vec<UnseenSelection>,
}

/// A target selection that could not be read.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnseenSelection {
    /// The selection as the configuration writes it.
    pub selection: String,
    /// The call that failed.
    pub operation: String,
    /// Why it failed: the whole error for a token holder in scope; for anyone else only its
    /// kind (`throttled`, `server`, `permanent` ...), since AWS messages name accounts and roles.
    pub error: String,
    /// Since when it has not been seen.
    pub since: DateTime<Utc>,
}

/// The degraded part of `environment` among `unseen`, if any; with each error whole when
/// `detailed`, else only its kind.
pub fn degraded(environment: &str, unseen: &[Unseen], detailed: bool) -> Option<Degraded> {
    let unseen: Vec<UnseenSelection> = unseen
        .iter()
        .filter(|u| u.environment == environment)
        .map(|u| UnseenSelection {
            selection: u.selection.clone(),
            operation: u.operation.clone(),
            error: if detailed {
                u.error.to_string()
            } else {
                format!("{} (details with a token)", u.error.metric_label())
            },
            since: u.since,
        })
        .collect();
    Some(Degraded {
        since: unseen.iter().map(|u| u.since).min()?,
        unseen,
    })
}

/// A target curfew cannot scale, and why.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnusableTarget {
    /// The target's id.
    pub target: String,
    /// Why it is left alone.
    pub reason: String,
}

/// One target as the latest pass saw it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetView {
    /// The target's id, e.g. `deployment/shop/web`.
    pub target: String,
    /// The state its environment (or its own calendar) asks for.
    pub desired: State,
    /// `down` when it runs at its down capacity, else `up`.
    pub actual: State,
    /// Its capacity, in words (`3 replicas`, `1/4/2 (min/max/desired)`).
    pub capacity: String,
    /// Why the latest pass could not bring it to the desired state: the whole error for a
    /// caller in scope, else only that it failed.
    pub error: Option<String>,
    /// Why curfew leaves it alone (a manual scale-up during downtime, a young workload, a
    /// target it cannot scale), if it does.
    pub left_alone: Option<String>,
    /// Whether it was scaled up by hand during downtime (an implicit override).
    pub manual_scale_up: bool,
}

/// One environment with its targets.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentDetail {
    /// The environment as the list shows it.
    #[serde(flatten)]
    pub environment: EnvironmentView,
    /// Its targets as the latest pass saw them, failing ones first, then by id.
    pub targets: Vec<TargetView>,
}

/// The targets of `environment` in `status`, failing ones first, then by id; errors whole
/// when `detailed`.
pub fn target_views(status: &Status, environment: &str, detailed: bool) -> Vec<TargetView> {
    let mut views: Vec<TargetView> = status
        .target_states
        .iter()
        .filter(|t| t.environment == environment)
        .map(|t| {
            let skipped = status.skipped.iter().find(|s| s.target == t.target);
            let error = status
                .failures
                .iter()
                .find(|(target, _)| *target == t.target)
                .map(|(_, error)| {
                    if detailed {
                        error.clone()
                    } else {
                        "failed (details with a token)".to_string()
                    }
                });
            TargetView {
                target: t.target.clone(),
                desired: t.desired,
                actual: t.actual,
                capacity: t.capacity.to_string(),
                error,
                left_alone: skipped.map(|s| s.reason.clone()),
                manual_scale_up: skipped.is_some_and(|s| s.implicit_override),
            }
        })
        .collect();
    views.sort_by(|a, b| (a.error.is_none(), &a.target).cmp(&(b.error.is_none(), &b.target)));
    views
}

/// One environment with the state of each of its targets; a token in scope adds its
/// overrides and the targets' errors.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{name}",
    tag = "environments",
    security((), ("bearer" = [])),
    params(("name" = String, Path, description = "The environment")),
    responses(
        (status = 200, description = "The environment and its targets", body = EnvironmentDetail),
        (status = 401, description = "An unknown token", body = super::ErrorBody),
        (status = 404, description = "Unknown environment", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn detail(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
    Path(name): Path<String>,
) -> Result<Json<EnvironmentDetail>, ApiError> {
    if !state.config.environments.contains_key(&name) {
        return Err(ApiError::not_found(format!(
            "no environment '{}'",
            crate::text::escape(&name)
        )));
    }
    let stored = state.overrides.list().await.unwrap_or_default();
    let list = views_of(&state, &stored, caller.as_deref());
    let environment = list
        .environments
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no environment '{name}'")))?;
    let detailed = caller.is_some_and(|c| c.in_scope(&name));
    let targets = target_views(&state.status.read(), &name, detailed);
    Ok(Json(EnvironmentDetail {
        environment,
        targets,
    }))
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

/// Lists every environment, decided now; a token adds the overrides in its scope.
#[utoipa::path(
    get,
    path = "/api/v1/environments",
    tag = "environments",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Every environment", body = EnvironmentList),
        (status = 401, description = "An unknown token", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn list(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
) -> Response {
    let body = match caller {
        None => state.environments_cache.body(&state).await,
        Some(caller) => {
            let stored = state.overrides.list().await.unwrap_or_default();
            let list = views_of(&state, &stored, Some(&caller));
            Bytes::from(serde_json::to_vec(&list).unwrap_or_default())
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The serialised list as anyone may see it, reused until something it depends on changes:
/// the overrides, the reconciler's latest pass, or the clock reaching the next transition or
/// override end.
#[derive(Debug, Default)]
pub struct ViewCache {
    cached: RwLock<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    overrides: Vec<Override>,
    pass: Option<DateTime<Utc>>,
    degraded: Vec<Unseen>,
    valid_until: Option<DateTime<Utc>>,
    body: Bytes,
}

// === impl ViewCache ===

impl ViewCache {
    /// The JSON body of the list as of now.
    pub async fn body(&self, state: &AppState) -> Bytes {
        let now = state.clock.now();
        let overrides = state.overrides.list().await.unwrap_or_default();
        let (pass, degraded) = {
            let status = state.status.read();
            (status.at, status.degraded.clone())
        };
        if let Some(cached) = self.cached.read().as_ref()
            && cached.pass == pass
            && cached.degraded == degraded
            && cached.valid_until.is_none_or(|until| now < until)
            && cached.overrides == overrides
        {
            return cached.body.clone();
        }
        let list = views_of(state, &overrides, None);
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
        *self.cached.write() = Some(Cached {
            overrides,
            pass,
            degraded,
            valid_until,
            body: body.clone(),
        });
        body
    }
}

/// The environments as anyone may see them (the status page), decided at the clock's now (so
/// an override shows at once, before the reconcile pass it triggered has finished), and the
/// stored overrides they were decided with.
pub async fn public_views(state: &AppState) -> (EnvironmentList, Vec<Override>) {
    let stored = state.overrides.list().await.unwrap_or_default();
    (views_of(state, &stored, None), stored)
}

/// The environments decided at the clock's now with the `stored` overrides, as `caller` (none:
/// anyone) may see them.
pub fn views_of(state: &AppState, stored: &[Override], caller: Option<&Caller>) -> EnvironmentList {
    let now = state.clock.now();
    let (skipped, unseen) = {
        let status = state.status.read();
        (status.skipped.clone(), status.degraded.clone())
    };
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
            let decision = reconciler::decide(
                &state.config,
                environment,
                stored,
                state.activity.as_deref(),
                now,
            );
            let mut overrides: Vec<Override> = stored
                .iter()
                .filter(|o| o.environment == environment.name && o.is_active(now))
                .cloned()
                .collect();
            overrides.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            let override_count = overrides.len();
            let visible = caller.is_some_and(|c| c.in_scope(&environment.name));
            let (reason, override_id) = match (visible, &decision.override_id) {
                (false, Some(_)) => {
                    let until = active_override(stored, &environment.name, now)
                        .map(|o| format::for_people(o.until, zone))
                        .unwrap_or_default();
                    (format!("override until {until}"), None)
                }
                _ => (decision.reason, decision.override_id),
            };
            if !visible {
                overrides.clear();
            }
            EnvironmentView {
                name: environment.name.clone(),
                state: decision.state,
                reason,
                next_transition: decision.next_change,
                next_transition_local: decision
                    .next_change
                    .map(|at| format::local_seconds(at, zone)),
                timezone: zone.name().to_string(),
                override_id,
                override_count,
                overrides,
                implicit_overrides: skipped
                    .iter()
                    .filter(|s| s.implicit_override && s.environment == environment.name)
                    .map(|s| s.target.clone())
                    .collect(),
                unusable_targets: skipped
                    .iter()
                    .filter(|s| s.unusable && s.environment == environment.name)
                    .map(|s| UnusableTarget {
                        target: s.target.clone(),
                        reason: s.reason.clone(),
                    })
                    .collect(),
                cost_per_hour: costs.get(&environment.name).map(|c| c.per_hour),
                month_to_date_savings: costs
                    .get(&environment.name)
                    .map(|c| c.month_to_date.savings()),
                degraded: degraded(&environment.name, &unseen, visible),
            }
        })
        .collect();
    EnvironmentList {
        at: Some(now),
        environments,
    }
}
