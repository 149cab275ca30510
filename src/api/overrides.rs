//! `POST /api/v1/overrides`, `GET /api/v1/overrides`, `GET` and `DELETE
//! /api/v1/overrides/{id}`, `POST /api/v1/overrides/{id}/extend`.
//!
//! Creating or cancelling an override triggers a reconcile pass at once, so it takes effect
//! within a pass's time. The newest active override of an environment decides it, so a new
//! one extends (or shortens) the one before.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::auth::{Authenticated, Caller, Role};
use super::{ApiError, AppState};
use crate::audit::{self, AuditEntry};
use crate::calendar::format::for_people;
use crate::calendar::{State, Zone};
use crate::config::{Environment, duration};
use crate::domain::Override;
use crate::notify::Notification;
use crate::overrides;
use crate::{planner, text};

/// The longest a reason may be, in characters.
pub const MAX_REASON: usize = 500;
/// No override may last longer than this, whatever the role.
pub const HARD_LIMIT: Duration = Duration::days(90);

/// A request to override an environment's schedule.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOverride {
    /// The environment.
    pub environment: String,
    /// The state to force.
    pub state: State,
    /// When it ends (RFC 3339); give this or `duration`.
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// How long it lasts from now, e.g. `3h` or `1h30m`; give this or `until`.
    pub duration: Option<String>,
    /// Why (required, at most 500 characters).
    pub reason: String,
}

/// Active overrides.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OverrideList {
    /// Every active override the caller may see, newest first.
    pub overrides: Vec<Override>,
}

/// Creates an override.
#[utoipa::path(
    post,
    path = "/api/v1/overrides",
    tag = "overrides",
    request_body = CreateOverride,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Override),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "No or unknown token", body = super::ErrorBody),
        (status = 403, description = "Outside the token's role or scope", body = super::ErrorBody),
        (status = 404, description = "Unknown environment", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "Not JSON", body = super::ErrorBody),
        (status = 422, description = "Invalid override, or too many active overrides", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn create(
    AxumState(state): AxumState<AppState>,
    Authenticated(caller): Authenticated,
    Json(request): Json<CreateOverride>,
) -> Result<Response, ApiError> {
    let created = create_override(&state, &caller, request).await?;
    let location = format!("/api/v1/overrides/{}", created.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

/// Lists the active overrides.
#[utoipa::path(
    get,
    path = "/api/v1/overrides",
    tag = "overrides",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active overrides in the caller's scope", body = OverrideList),
        (status = 401, description = "No or unknown token", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn list(
    AxumState(state): AxumState<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<OverrideList>, ApiError> {
    let now = state.clock.now();
    let mut overrides: Vec<Override> = state
        .overrides
        .list()
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?
        .into_iter()
        .filter(|o| o.until > now && caller.in_scope(&o.environment))
        .collect();
    overrides.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(Json(OverrideList { overrides }))
}

/// Cancels an override: the calendar decides again at once.
#[utoipa::path(
    delete,
    path = "/api/v1/overrides/{id}",
    tag = "overrides",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The override's id")),
    responses(
        (status = 200, description = "Cancelled; the override as it was", body = Override),
        (status = 401, description = "No or unknown token", body = super::ErrorBody),
        (status = 403, description = "Outside the token's role or scope", body = super::ErrorBody),
        (status = 404, description = "No such override", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn cancel(
    AxumState(state): AxumState<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Override>, ApiError> {
    cancel_override(&state, &caller, &id).await.map(Json)
}

/// Cancels the override `id` for `caller`: the calendar decides again at once.
pub async fn cancel_override(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Override, ApiError> {
    let store_error = |err: overrides::Error| ApiError::internal(err.to_string());
    let missing = || ApiError::not_found(format!("no override '{}'", text::escape(id)));
    let existing = find(state, id).await?;
    may_change(caller, &existing, "cancel")?;
    let removed = state
        .overrides
        .remove(id)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)?;
    record(
        state,
        AuditEntry {
            at: state.clock.now(),
            actor: caller.name.as_str().into(),
            event: "override_cancelled".into(),
            environment: removed.environment.as_str().into(),
            target: Some(audit::override_target(&removed.id)),
            before: Some(format!("override {}", removed.state).into()),
            after: Some("calendar".into()),
            reason: format!("cancelled: {}", removed.reason).into(),
            result: "ok".into(),
        },
    )
    .await;
    state.trigger.notify_one();
    tracing::info!(id = %removed.id, environment = %removed.environment, by = %caller.name, "override cancelled");
    Ok(removed)
}

/// The stored override `id`: 404 when there is none.
async fn find(state: &AppState, id: &str) -> Result<Override, ApiError> {
    state
        .overrides
        .list()
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?
        .into_iter()
        .find(|o| o.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no override '{}'", text::escape(id))))
}

/// Whether `caller` may `verb` (cancel, extend) `existing`: a viewer never, an operator only
/// their own, an admin any, each only within the token's environments.
fn may_change(caller: &Caller, existing: &Override, verb: &str) -> Result<(), ApiError> {
    if !caller.in_scope(&existing.environment) {
        return Err(ApiError::forbidden(format!(
            "token '{}' may not act on {}",
            caller.name, existing.environment
        )));
    }
    match caller.role {
        Role::Viewer => Err(ApiError::forbidden(format!(
            "viewers may not {verb} overrides"
        ))),
        Role::Operator if existing.created_by != caller.name => Err(ApiError::forbidden(format!(
            "operators {verb} only their own overrides; this one is {}'s",
            existing.created_by
        ))),
        _ => Ok(()),
    }
}

/// One override.
#[utoipa::path(
    get,
    path = "/api/v1/overrides/{id}",
    tag = "overrides",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The override's id")),
    responses(
        (status = 200, description = "The override, active or ended but not yet pruned", body = Override),
        (status = 401, description = "No or unknown token", body = super::ErrorBody),
        (status = 403, description = "Outside the token's scope", body = super::ErrorBody),
        (status = 404, description = "No such override", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn get_one(
    AxumState(state): AxumState<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Override>, ApiError> {
    let existing = find(&state, &id).await?;
    if !caller.in_scope(&existing.environment) {
        return Err(ApiError::forbidden(format!(
            "token '{}' may not see overrides of {}",
            caller.name, existing.environment
        )));
    }
    Ok(Json(existing))
}

/// A request to extend an override.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendOverride {
    /// How much longer it lasts, e.g. `2h` or `30m`.
    pub duration: String,
}

/// Extends an active override: it ends `duration` later, within the same limits as a new one.
#[utoipa::path(
    post,
    path = "/api/v1/overrides/{id}/extend",
    tag = "overrides",
    request_body = ExtendOverride,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The override's id")),
    responses(
        (status = 200, description = "Extended; the override as it is now", body = Override),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "No or unknown token", body = super::ErrorBody),
        (status = 403, description = "Outside the token's role or scope", body = super::ErrorBody),
        (status = 404, description = "No such override", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "Not JSON", body = super::ErrorBody),
        (status = 422, description = "Bad duration, an ended override, or beyond the limits", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn extend(
    AxumState(state): AxumState<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Json(request): Json<ExtendOverride>,
) -> Result<Json<Override>, ApiError> {
    extend_override(&state, &caller, &id, &request.duration)
        .await
        .map(Json)
}

/// Extends the override `id` by `duration` for `caller`, audits it and wakes the reconciler.
pub async fn extend_override(
    state: &AppState,
    caller: &Caller,
    id: &str,
    duration: &str,
) -> Result<Override, ApiError> {
    check_text("duration", duration)?;
    let length =
        duration::parse(duration).map_err(|err| ApiError::unprocessable(err.to_string()))?;
    if length <= Duration::zero() {
        return Err(ApiError::unprocessable("the duration must be positive"));
    }
    let _changing = state.creating.lock().await;
    let existing = find(state, id).await?;
    may_change(caller, &existing, "extend")?;
    let now = state.clock.now().trunc_subsecs(0);
    let environment = state
        .config
        .environments
        .get(&existing.environment)
        .ok_or_else(|| ApiError::not_found(format!("no environment '{}'", existing.environment)))?;
    let zone = state.config.schedule_of(environment).zone();
    if existing.until <= now {
        return Err(ApiError::unprocessable(format!(
            "override {} ended at {}; create a new one",
            existing.id,
            for_people(existing.until, zone)
        )));
    }
    let until = existing
        .until
        .checked_add_signed(length)
        .ok_or_else(|| ApiError::unprocessable("the duration is too long"))?;
    check_length(environment, caller, until - now)?;
    let extended = Override {
        until,
        ..existing.clone()
    };
    state
        .overrides
        .put(extended.clone())
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    record(
        state,
        AuditEntry {
            at: now,
            actor: caller.name.as_str().into(),
            event: "override_extended".into(),
            environment: extended.environment.as_str().into(),
            target: Some(audit::override_target(&extended.id)),
            before: Some(
                format!(
                    "{} until {}",
                    existing.state,
                    for_people(existing.until, zone)
                )
                .into(),
            ),
            after: Some(
                format!(
                    "{} until {}",
                    extended.state,
                    for_people(extended.until, zone)
                )
                .into(),
            ),
            reason: extended.reason.as_str().into(),
            result: "ok".into(),
        },
    )
    .await;
    state.trigger.notify_one();
    tracing::info!(id = %extended.id, environment = %extended.environment, until = %extended.until, by = %caller.name, "override extended");
    Ok(extended)
}

/// Refuses an override lasting `length` from now beyond the hard limit, or beyond the
/// environment's `max_duration` for anyone but an admin.
fn check_length(
    environment: &Environment,
    caller: &Caller,
    length: Duration,
) -> Result<(), ApiError> {
    if length > HARD_LIMIT {
        return Err(ApiError::unprocessable(
            "no override may last longer than 90 days",
        ));
    }
    if let Some(max) = environment.max_override
        && length > max
        && caller.role < Role::Admin
    {
        return Err(ApiError::unprocessable(format!(
            "{} allows overrides of at most {}; ask an admin for longer",
            environment.name,
            duration::format(max)
        )));
    }
    Ok(())
}

/// Checks `request` against the caller's role and scope and the environment's policy, then
/// stores the override, audits it, wakes the reconciler and queues a notification.
pub async fn create_override(
    state: &AppState,
    caller: &Arc<Caller>,
    request: CreateOverride,
) -> Result<Override, ApiError> {
    if caller.role == Role::Viewer {
        return Err(ApiError::forbidden("viewers may not create overrides"));
    }
    check_text("environment", &request.environment)?;
    check_text("reason", &request.reason)?;
    for (field, value) in [("until", &request.until), ("duration", &request.duration)] {
        if let Some(value) = value {
            check_text(field, value)?;
        }
    }
    let environment = state
        .config
        .environments
        .get(&request.environment)
        .ok_or_else(|| ApiError::not_found(format!("no environment '{}'", request.environment)))?;
    if !caller.in_scope(&environment.name) {
        return Err(ApiError::forbidden(format!(
            "token '{}' may not act on {}",
            caller.name, environment.name
        )));
    }
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::unprocessable("a reason is required"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::unprocessable(format!(
            "the reason is longer than {MAX_REASON} characters"
        )));
    }
    // Overrides are kept to the second, as they are shown.
    let now = state.clock.now().trunc_subsecs(0);
    let zone = state.config.schedule_of(environment).zone();
    let until = match (&request.until, &request.duration) {
        (Some(until), None) => DateTime::parse_from_rfc3339(until.trim())
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| ApiError::unprocessable(format!("'until' is not RFC 3339: {err}")))?,
        (None, Some(text)) => {
            let length =
                duration::parse(text).map_err(|err| ApiError::unprocessable(err.to_string()))?;
            now.checked_add_signed(length)
                .ok_or_else(|| ApiError::unprocessable("the duration is too long"))?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give exactly one of 'until' and 'duration'",
            ));
        }
    };
    let until = until.trunc_subsecs(0);
    if until <= now {
        return Err(ApiError::unprocessable(format!(
            "the override would end in the past ({}, now is {})",
            for_people(until, zone),
            for_people(now, zone)
        )));
    }
    check_length(environment, caller, until - now)?;
    // One create at a time in this process, so the limits below hold.
    let _creating = state.creating.lock().await;
    let existing = state
        .overrides
        .list()
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    check_limits(state, caller, &environment.name, &existing, now)?;
    let schedule = state.config.schedule_of(environment);
    let before = planner::decide_environment(schedule, &environment.name, &existing, now);
    let item = Override {
        id: new_id(),
        environment: environment.name.clone(),
        state: request.state,
        created_at: now,
        until,
        reason: reason.to_string(),
        created_by: caller.name.clone(),
    };
    state
        .overrides
        .put(item.clone())
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    record(
        state,
        AuditEntry {
            at: now,
            actor: caller.name.as_str().into(),
            event: "override_created".into(),
            environment: item.environment.as_str().into(),
            target: Some(audit::override_target(&item.id)),
            before: Some(before.state.to_string().into()),
            after: Some(format!("{} until {}", item.state, for_people(item.until, zone)).into()),
            reason: item.reason.as_str().into(),
            result: "ok".into(),
        },
    )
    .await;
    state.trigger.notify_one();
    if let Some(notifier) = &state.notifier {
        notifier.send(Notification::OverrideCreated {
            item: item.clone(),
            zone: schedule.zone(),
        });
    }
    tracing::info!(id = %item.id, environment = %item.environment, state = %item.state, until = %item.until, by = %caller.name, "override created");
    Ok(item)
}

/// Refuses an override beyond the limits on active overrides (per environment and per
/// token): 422 saying which limit, and when the first of the overrides counted ends.
fn check_limits(
    state: &AppState,
    caller: &Caller,
    environment: &str,
    existing: &[Override],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let limits = state.config.server.overrides;
    // Times for people in the environment's zone.
    let zone = state
        .config
        .environments
        .get(environment)
        .map_or(Zone::UTC, |env| state.config.schedule_of(env).zone());
    let active = || existing.iter().filter(|o| o.until > now);
    let in_environment: Vec<&Override> =
        active().filter(|o| o.environment == environment).collect();
    let by_caller: Vec<&Override> = active().filter(|o| o.created_by == caller.name).collect();
    for (counted, max, whose, key) in [
        (
            in_environment,
            limits.max_active_per_environment,
            environment.to_string(),
            "max_active_per_environment",
        ),
        (
            by_caller,
            limits.max_active_per_token,
            format!("token '{}'", caller.name),
            "max_active_per_token",
        ),
    ] {
        if counted.len() >= max {
            let first_end = counted.iter().map(|o| o.until).min().unwrap_or(now);
            return Err(ApiError::unprocessable(format!(
                "{whose} has {} active overrides, the most allowed \
                 (server.overrides.{key}); cancel one, or wait until the first ends at {}",
                counted.len(),
                for_people(first_end, zone)
            )));
        }
    }
    Ok(())
}

/// Refuses free text with characters that could forge log lines or drive a terminal: 422
/// naming the field, the character and its position.
pub fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    match text::first_refused(value) {
        None => Ok(()),
        Some(refused) => Err(ApiError::unprocessable(format!(
            "{field}: {refused}; control characters, line separators and bidirectional \
             formatting characters are not allowed"
        ))),
    }
}

async fn record(state: &AppState, entry: AuditEntry) {
    if let Err(err) = state.audit.record([entry]).await {
        tracing::error!(error = %err, "cannot write the audit log");
    }
}

/// A new random override id: 12 hex digits.
fn new_id() -> String {
    format!("{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}
