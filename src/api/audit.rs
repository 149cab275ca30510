//! `GET /api/v1/audit`: the audit log, newest first, in pages, filtered by environment,
//! time, actor and event.

use axum::Json;
use axum::extract::{Query, State as AxumState};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::{ApiError, AppState};
use crate::audit::AuditEntry;

/// Entries per page when the request does not say.
const DEFAULT_LIMIT: usize = 50;
/// The most entries one page may hold.
const MAX_LIMIT: usize = 500;

/// The longest an `actor` or `event` filter may be, in characters.
const MAX_FILTER: usize = 128;

/// Which entries, and which page of them. Unknown parameters are refused (400), so a
/// misspelt filter never passes as no filter.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Entries to skip (newest first); default 0.
    pub offset: Option<usize>,
    /// Entries to return, 1 to 500; default 50.
    pub limit: Option<usize>,
    /// Only entries of this environment (a configured one).
    pub environment: Option<String>,
    /// Only entries at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<DateTime<FixedOffset>>,
    /// Only entries before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<DateTime<FixedOffset>>,
    /// Only entries by this actor (a token name, or `curfew`).
    pub actor: Option<String>,
    /// Only entries of this event, e.g. `override_created` or `scale_down`.
    pub event: Option<String>,
}

/// The checked filters of a [`PageQuery`].
struct Filter {
    environment: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    actor: Option<String>,
    event: Option<String>,
}

// === impl Filter ===

impl Filter {
    /// The filters of `query`: 400 for an unknown environment, an empty, overlong or
    /// unprintable actor or event, or `until` not after `since`.
    fn of(query: &PageQuery, state: &AppState) -> Result<Self, ApiError> {
        if let Some(environment) = &query.environment
            && !state.config.environments.contains_key(environment)
        {
            return Err(ApiError::bad_request(format!(
                "environment: no environment '{}'",
                crate::text::escape(environment)
            )));
        }
        for (field, value) in [("actor", &query.actor), ("event", &query.event)] {
            if let Some(value) = value
                && (value.is_empty()
                    || value.chars().count() > MAX_FILTER
                    || crate::text::first_refused(value).is_some())
            {
                return Err(ApiError::bad_request(format!(
                    "{field}: give 1 to {MAX_FILTER} printable characters"
                )));
            }
        }
        let since = query.since.map(|at| at.to_utc());
        let until = query.until.map(|at| at.to_utc());
        if let (Some(since), Some(until)) = (since, until)
            && until <= since
        {
            return Err(ApiError::bad_request("until: must be after 'since'"));
        }
        Ok(Filter {
            environment: query.environment.clone(),
            since,
            until,
            actor: query.actor.clone(),
            event: query.event.clone(),
        })
    }

    fn keeps(&self, entry: &AuditEntry) -> bool {
        self.environment
            .as_ref()
            .is_none_or(|e| *e == entry.environment)
            && self.since.is_none_or(|since| entry.at >= since)
            && self.until.is_none_or(|until| entry.at < until)
            && self.actor.as_ref().is_none_or(|a| *a == entry.actor)
            && self.event.as_ref().is_none_or(|e| *e == entry.event)
    }
}

/// One page of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Entries in the caller's scope that match the filters, in all.
    pub total: usize,
    /// Entries skipped.
    pub offset: usize,
    /// The page size asked for.
    pub limit: usize,
    /// The entries, newest first by time.
    pub entries: Vec<AuditEntry>,
}

/// Pages through the audit log.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditPage),
        (status = 400, description = "Bad paging or filter parameters, or an unknown parameter", body = super::ErrorBody),
        (status = 401, description = "No or unknown token", body = super::ErrorBody),
        (status = 422, description = "Limit out of range", body = super::ErrorBody),
        (status = 429, description = "Rate limited", body = super::ErrorBody),
    )
)]
pub async fn page(
    AxumState(state): AxumState<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<PageQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = Filter::of(&query, &state)?;
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    // Other replicas write a shared log too: read it afresh.
    state
        .audit
        .refresh()
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    let visible = |entry: &AuditEntry| caller.in_scope(&entry.environment) && filter.keeps(entry);
    Ok(Json(AuditPage {
        total: state.audit.count(visible),
        offset,
        limit,
        entries: state.audit.page(offset, limit, visible),
    }))
}
