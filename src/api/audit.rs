//! `GET /api/v1/audit`: the audit log, newest first, in pages.

use axum::Json;
use axum::extract::{Query, State as AxumState};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::{ApiError, AppState};
use crate::audit::AuditEntry;

/// Entries per page when the request does not say.
const DEFAULT_LIMIT: usize = 50;
/// The most entries one page may hold.
const MAX_LIMIT: usize = 500;

/// Which page.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Entries to skip (newest first); default 0.
    pub offset: Option<usize>,
    /// Entries to return, 1 to 500; default 50.
    pub limit: Option<usize>,
}

/// One page of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Entries in the caller's scope, in all.
    pub total: usize,
    /// Entries skipped.
    pub offset: usize,
    /// The page size asked for.
    pub limit: usize,
    /// The entries, newest first.
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
        (status = 400, description = "Bad paging parameters", body = super::ErrorBody),
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
    let visible = |entry: &AuditEntry| caller.in_scope(&entry.environment);
    Ok(Json(AuditPage {
        total: state.audit.count(visible),
        offset,
        limit,
        entries: state.audit.page(offset, limit, visible),
    }))
}
