//! The HTTP API: the REST API under `/api/v1`, the status page, health, readiness,
//! Prometheus metrics and the OpenAPI document.
//!
//! Handlers read the reconciler's shared [`Status`](crate::reconciler::Status) and the override
//! store; nothing here blocks the reconciler. Writes wake it through its trigger. Every error
//! answer is JSON `{"error", "detail"}`; request bodies are limited and requests time out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{Config, ServerConfig};
use crate::cost::tracker::CostTracker;
use crate::notify::Notifier;
use crate::overrides::OverrideStore;
use crate::reconciler::SharedStatus;
use crate::{service, telemetry};

mod audit;
pub mod auth;
mod environments;
mod error;
pub mod headers;
pub mod listener;
pub mod openapi;
mod overrides;
mod plan;
mod rate_limit;
pub mod sso;
mod status_forms;
mod status_page;
pub mod wake;

pub use self::audit::AuditPage;
pub use self::auth::{Caller, Role, Tokens};
pub use self::environments::{
    EnvironmentDetail, EnvironmentList, EnvironmentView, TargetView, UnusableTarget, ViewCache,
};
pub use self::error::{ApiError, ErrorBody};
pub use self::overrides::{CreateOverride, ExtendOverride, OverrideList};
pub use self::rate_limit::RateLimiter;

/// Everything a handler may read or use.
#[derive(Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The reconciler's latest status.
    pub status: SharedStatus,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The cost books, when kept.
    pub cost: Option<Arc<CostTracker>>,
    /// The reconciler's clock: "now" for overrides and plans.
    pub clock: Arc<dyn Clock>,
    /// Where overrides are kept.
    pub overrides: Arc<dyn OverrideStore>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Wakes the reconciler after an override changed.
    pub trigger: Arc<Notify>,
    /// The accepted tokens.
    pub tokens: Arc<Tokens>,
    /// Per-token rate limits.
    pub limiter: Arc<RateLimiter>,
    /// Failed authentication attempts per client address.
    pub failed_auth: Arc<RateLimiter>,
    /// Serialises creating overrides in this process, so the limits on active overrides
    /// hold.
    pub creating: Arc<tokio::sync::Mutex<()>>,
    /// Webhook notifications, when configured.
    pub notifier: Option<Notifier>,
    /// The environments list, serialised once per change.
    pub environments_cache: Arc<environments::ViewCache>,
    /// Where the wake gateway listens, when it does.
    pub gateway: Option<std::net::SocketAddr>,
    /// Traffic per environment, for idleness; `None` counts nothing.
    pub activity: Option<Arc<crate::activity::Activity>>,
}

// === impl AppState ===

impl AppState {
    /// The state of the API of a running service, accepting `tokens`.
    pub fn serving(handles: service::Handles, tokens: Tokens) -> Self {
        AppState {
            limiter: Arc::new(RateLimiter::new(handles.config.server.rate_limit)),
            failed_auth: Arc::new(RateLimiter::failed_auth(handles.config.server.failed_auth)),
            creating: Arc::default(),
            config: handles.config,
            status: handles.status,
            metrics: handles.metrics,
            cost: Some(handles.cost),
            clock: handles.clock,
            overrides: handles.overrides,
            audit: handles.audit,
            trigger: handles.trigger,
            tokens: Arc::new(tokens),
            notifier: handles.notifier,
            environments_cache: Arc::default(),
            gateway: handles.gateway,
            activity: Some(handles.activity),
        }
    }
}

/// What serves the API of a running service accepting `tokens`, for [`service::run`].
pub fn serve_service(tokens: Tokens) -> service::ServeApi {
    Box::new(move |handles, listeners, shutdown| {
        Box::pin(async move {
            let config = handles.config.clone();
            let state = AppState::serving(handles, tokens);
            let api = serve(
                listeners.api,
                router(state.clone()),
                &config.server,
                shutdown.clone(),
            );
            match listeners.gateway {
                Some(listener) => {
                    let gateway = wake::Gateway::new(state);
                    let gateway = wake::serve(listener, gateway, &config.server, shutdown);
                    let (api, gateway) = tokio::join!(api, gateway);
                    api.and(gateway)
                }
                None => api.await,
            }
        })
    })
}

/// The tokens the API accepts, checked against the environments of `config`: `tokens_file`
/// when given, else the configuration's `server.tokens_file`, else none.
pub fn load_tokens(config: &Config, tokens_file: Option<&Path>) -> auth::Result<Tokens> {
    match tokens_file.or(config.server.tokens_file.as_deref()) {
        Some(path) => Tokens::load(path, config),
        None => Ok(Tokens::none()),
    }
}

/// The router with every route, the body limit, the request timeout and JSON errors.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    let timeout = state.config.server.request_timeout;
    Router::new()
        .route("/", get(status_page::page))
        .route("/status.css", get(status_page::stylesheet))
        .route(
            "/keep-up",
            get(status_forms::keep_up_page).post(status_forms::keep_up),
        )
        .route("/overrides/{id}", get(status_forms::override_page))
        .route("/overrides/{id}/extend", post(status_forms::extend))
        .route("/overrides/{id}/cancel", post(status_forms::cancel))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/api/v1/environments", get(environments::list))
        .route("/api/v1/environments/{name}", get(environments::detail))
        .route("/api/v1/environments/{name}/plan", get(plan::plan))
        .route(
            "/api/v1/overrides",
            post(overrides::create).get(overrides::list),
        )
        .route(
            "/api/v1/overrides/{id}",
            get(overrides::get_one).delete(overrides::cancel),
        )
        .route("/api/v1/overrides/{id}/extend", post(overrides::extend))
        .route("/api/v1/audit", get(audit::page))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(count_requests))
        .layer(middleware::map_response(error::json_errors))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(middleware::map_response(headers::secure))
        .with_state(state)
}

/// Middleware: a request that takes longer than the limit gets 503.
async fn request_timeout(
    AxumState(limit): AxumState<StdDuration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(format!(
            "the request took longer than {} s",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// Counts every request by matched route and status.
async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    metrics::counter!(
        telemetry::HTTP_REQUESTS,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// Serves `router` on `listener` within the server's limits until `shutdown` is cancelled,
/// then drains connections (see [`listener`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    server: &ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    listener::serve(listener, router, server, shutdown).await
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the first reconcile pass has completed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Not ready yet", body = ErrorBody),
    )
)]
async fn readyz(AxumState(state): AxumState<AppState>) -> Response {
    let ready = state.status.read().ready;
    if ready {
        (StatusCode::OK, "ready").into_response()
    } else {
        ApiError::unavailable("the first reconcile pass has not completed yet").into_response()
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain"),
        (status = 503, description = "No recorder installed", body = ErrorBody),
    )
)]
async fn metrics(AxumState(state): AxumState<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            let mut body = handle.render();
            if let Some(cost) = &state.cost {
                body.push_str(&cost.render_prometheus());
            }
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
        }
        None => ApiError::unavailable("metrics are not enabled").into_response(),
    }
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_request_slower_than_the_timeout_gets_503_with_a_json_body() {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(StdDuration::from_secs(5)).await;
                    "late"
                }),
            )
            .layer(middleware::from_fn_with_state(
                StdDuration::from_millis(50),
                request_timeout,
            ));
        let request = axum::http::Request::get("/slow")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "unavailable");
        assert!(body["detail"].as_str().unwrap().contains("longer than"));
    }
}
