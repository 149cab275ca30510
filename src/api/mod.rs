//! The HTTP API: health, readiness, Prometheus metrics and the environments view.
//!
//! Handlers only read the reconciler's shared [`Status`](crate::reconciler::Status); nothing
//! here blocks the reconciler.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::cost::CostTracker;
use crate::reconciler::SharedStatus;
use crate::telemetry;

mod environments;
mod error;

pub use self::environments::EnvironmentView;
pub use self::error::ApiError;

/// Everything a handler may read.
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
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/environments", get(environments::list))
        .fallback(not_found)
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
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

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds `addr`, with a clear error when it is taken.
pub async fn bind(addr: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(AxumState(state): AxumState<AppState>) -> Response {
    let ready = state.status.read().map(|s| s.ready).unwrap_or(false);
    if ready {
        (StatusCode::OK, "ready").into_response()
    } else {
        ApiError::unavailable("the first reconcile pass has not completed yet").into_response()
    }
}

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

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
