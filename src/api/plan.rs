//! `GET /api/v1/environments/{name}/plan?from=&to=`: an environment's transitions in a span,
//! with the overrides stored now applied: each transition an override causes names it (for a
//! caller whose token covers the environment; for anyone else it says `override until T`).

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::Deserialize;

use super::auth::MaybeAuthenticated;
use super::{ApiError, AppState};
use crate::planner::{self, DEFAULT_SPAN, EnvironmentPlan};

/// The longest span one request may plan.
const MAX_SPAN: Duration = Duration::days(400);

/// The span to plan.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Start (RFC 3339); default now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<FixedOffset>>,
    /// End (RFC 3339); default seven days after the start; at most 400 days after it.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<FixedOffset>>,
}

/// Plans one environment.
#[utoipa::path(
    get,
    path = "/api/v1/environments/{name}/plan",
    tag = "environments",
    security((), ("bearer" = [])),
    params(("name" = String, Path, description = "The environment"), PlanQuery),
    responses(
        (status = 200, description = "The plan, overrides applied", body = EnvironmentPlan),
        (status = 400, description = "Bad query", body = super::ErrorBody),
        (status = 401, description = "An unknown token", body = super::ErrorBody),
        (status = 404, description = "Unknown environment", body = super::ErrorBody),
        (status = 422, description = "Bad span", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn plan(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
    Path(name): Path<String>,
    Query(query): Query<PlanQuery>,
) -> Result<Json<EnvironmentPlan>, ApiError> {
    let environment = state.config.environments.get(&name).ok_or_else(|| {
        ApiError::not_found(format!("no environment '{}'", crate::text::escape(&name)))
    })?;
    let from = query
        .from
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|| state.clock.now());
    let to = match query.to {
        Some(at) => at.with_timezone(&Utc),
        None => from
            .checked_add_signed(DEFAULT_SPAN)
            .ok_or_else(|| ApiError::unprocessable("'from' is too far in the future"))?,
    };
    for at in [from, to] {
        if !(2000..=2200).contains(&chrono::Datelike::year(&at)) {
            return Err(ApiError::unprocessable(
                "'from' and 'to' must lie between the years 2000 and 2200",
            ));
        }
    }
    if to <= from {
        return Err(ApiError::unprocessable("'to' must be after 'from'"));
    }
    if to - from > MAX_SPAN {
        return Err(ApiError::unprocessable("a plan spans at most 400 days"));
    }
    let stored = state
        .overrides
        .list()
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    let zone = state.config.schedule_of(environment).zone();
    let calendar = state.config.plan_environment(environment, from, to);
    let mut plan = planner::with_overrides(calendar, &stored, from, to, zone);
    if !caller.is_some_and(|c| c.in_scope(&name)) {
        plan.override_id = None;
        for transition in &mut plan.transitions {
            transition.override_id = None;
        }
    }
    Ok(Json(plan))
}
