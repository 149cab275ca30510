//! The wake gateway: a listener of its own that staging's ingress falls back to while an
//! environment is down (error-backend mode), or that sits in front of it (proxy mode,
//! `wake.upstream`).
//!
//! A request is mapped to an environment by its host (`X-Forwarded-Host`, else
//! `X-Original-Host`, else `Host`). While the environment is up and ready, a proxy forwards
//! it ([`proxy`]); otherwise the wake flow answers ([`flow`]): a page for browsers, 503 with
//! `Retry-After` and JSON for API clients, and a wake (an ordinary override) when the request
//! may wake it. Curfew's own pages live under `/.curfew/`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState, RateLimiter};
use crate::activity::Activity;
use crate::calendar::State;
use crate::config::{Environment, ServerConfig};
use crate::domain::EnvironmentDecision;
use crate::domain::Tier;
use crate::reconciler::{self, Status};

mod flow;
mod proxy;

/// Wakes each client may cause per minute, on average.
const WAKES_PER_MINUTE: u32 = 6;
/// Wakes a client may cause at once.
const WAKE_BURST: u32 = 3;
/// Websocket and other upgraded connections tunnelled at once.
const MAX_TUNNELS: usize = 1024;
/// The longest a forwarded request may take to be answered and delivered: long downloads
/// and slow uploads pass, a stuck one ends.
const PROXY_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// What the gateway's handlers share.
#[derive(Clone)]
pub struct Gateway {
    app: AppState,
    activity: Arc<Activity>,
    forwarder: proxy::Forwarder,
    wakes: Arc<RateLimiter>,
    /// Serialises wakes, so that requests arriving together make one override.
    waking: Arc<tokio::sync::Mutex<()>>,
}

/// Where an environment stands for someone at its door.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Up, with every target up: requests pass.
    Ready,
    /// Asked to be up, not every target is yet: per tier, targets up and in all.
    Waking(Vec<(Tier, usize, usize)>),
    /// Asked to be up, and this replica has not seen a pass over it (a follower, or before
    /// the first pass): the upstream's answer tells.
    Unobserved,
    /// Down, and why.
    Asleep {
        /// The decision's reason.
        reason: String,
        /// When it is next scheduled to change, if known.
        next_change: Option<chrono::DateTime<chrono::Utc>>,
        /// Its last request, when it sleeps because it was idle.
        idle_since: Option<chrono::DateTime<chrono::Utc>>,
    },
}

// === impl Gateway ===

impl Gateway {
    /// The gateway over a running service's API state (with its traffic record).
    pub fn new(app: AppState) -> Self {
        let activity = app
            .activity
            .clone()
            .unwrap_or_else(|| Arc::new(Activity::new(app.clock.now())));
        Gateway {
            app,
            activity,
            forwarder: proxy::Forwarder::new(Arc::new(Semaphore::new(MAX_TUNNELS))),
            wakes: Arc::new(RateLimiter::per_minute(WAKES_PER_MINUTE, WAKE_BURST)),
            waking: Arc::default(),
        }
    }

    /// Where `environment` stands now (see [`phase_of`]).
    async fn phase(&self, environment: &Environment) -> Phase {
        let now = self.app.clock.now();
        // Without the overrides the calendar and idleness decide: a wake shows once the
        // store answers again.
        let overrides = self.app.overrides.list().await.unwrap_or_default();
        let decision = reconciler::decide(
            &self.app.config,
            environment,
            &overrides,
            Some(&self.activity),
            now,
        );
        phase_of(&self.app.status.read(), &decision)
    }

    /// The environment of a request: the one whose `wake.hosts` holds its host (exactly, or
    /// by a `*.` wildcard), else the one whose `wake.namespaces` holds the `X-Namespace` an
    /// ingress-nginx error backend request carries.
    fn environment_of(&self, headers: &HeaderMap) -> Option<&Environment> {
        let by_host = request_host(headers).and_then(|host| self.environment_for(&host));
        by_host.or_else(|| {
            let namespace = headers.get("x-namespace")?.to_str().ok()?.trim();
            self.app.config.environments.values().find(|env| {
                env.wake
                    .as_ref()
                    .is_some_and(|wake| wake.namespaces.iter().any(|n| n == namespace))
            })
        })
    }

    /// The environment whose `wake.hosts` holds `host` (exactly, or by a `*.` wildcard).
    fn environment_for(&self, host: &str) -> Option<&Environment> {
        self.app.config.environments.values().find(|env| {
            env.wake.as_ref().is_some_and(|wake| {
                wake.hosts
                    .iter()
                    .any(|pattern| match pattern.strip_prefix("*.") {
                        Some(suffix) => host
                            .strip_suffix(suffix)
                            .is_some_and(|head| head.ends_with('.') && head.len() > 1),
                        None => pattern == host,
                    })
            })
        })
    }
}

/// The gateway's routes: curfew's own pages under `/.curfew/`, everything else by host.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/.curfew/wake", post(flow::wake_form))
        .fallback(handle)
        .with_state(gateway)
}

/// Serves the gateway on `listener` within the server's connection limits (a forwarded
/// request may take up to five minutes) until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    server: &ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = ServerConfig {
        request_timeout: PROXY_REQUEST_TIMEOUT,
        ..server.clone()
    };
    super::listener::serve(listener, router(gateway), &limits, shutdown).await
}

/// Any request not for curfew's own pages: forwarded while the environment is ready, else
/// the wake flow.
async fn handle(AxumState(gateway): AxumState<Gateway>, request: Request) -> Response {
    let Some(environment) = gateway.environment_of(request.headers()).cloned() else {
        let host = request_host(request.headers()).unwrap_or_default();
        return ApiError::not_found(format!(
            "no environment wakes for host '{}'",
            crate::text::escape(&host)
        ))
        .into_response();
    };
    let Some(wake) = environment.wake.clone() else {
        return ApiError::not_found("no wake settings").into_response();
    };
    let phase = gateway.phase(&environment).await;
    let original = flow::original_uri(&request);
    let original_path = original.split('?').next().unwrap_or("/");
    let ignored = wake.ignore.refuses(
        request.method().as_str(),
        original_path,
        request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    );
    let browser = flow::is_browser(request.headers());
    let return_to = flow::return_to_of(&request);
    if ignored.is_none() {
        gateway
            .activity
            .seen(&environment.name, gateway.app.clock.now());
    }
    if phase == Phase::Ready {
        // The traffic alone can end an idle sleep, so a pass may bring the environment up
        // before the wake this request caused was noted: the first forward then counts.
        gateway
            .activity
            .ready(&environment.name, gateway.app.clock.now());
    }
    match (&phase, &wake.upstream) {
        (Phase::Ready | Phase::Unobserved, Some(upstream)) => {
            match gateway
                .forwarder
                .forward(upstream, request, &environment.name)
                .await
            {
                // Unobserved, an upstream's gateway error means it is not up yet either.
                Ok(response)
                    if phase == Phase::Unobserved
                        && matches!(response.status().as_u16(), 502..=504) =>
                {
                    flow::waiting(&environment, &phase, &return_to, browser)
                }
                Ok(response) => response,
                // The upstream is not answering yet: the environment is still waking.
                Err(err) => {
                    tracing::debug!(environment = %environment.name, error = %err, "upstream not ready");
                    flow::waiting(
                        &environment,
                        &Phase::Waking(Vec::new()),
                        &return_to,
                        browser,
                    )
                }
            }
        }
        _ => flow::answer(&gateway, &environment, phase, request, ignored).await,
    }
}

/// Where `environment` stands now: its decision at this instant (overrides and idleness
/// included, so a wake counts at once), and its targets as the latest pass in `status` saw
/// them.
pub fn phase_of(status: &Status, decision: &EnvironmentDecision) -> Phase {
    if decision.state == State::Down {
        return Phase::Asleep {
            reason: decision.reason.clone(),
            next_change: decision.next_change,
            idle_since: decision.idle_since,
        };
    }
    let environment = decision.environment.as_str();
    let Some(passed) = status
        .environments
        .iter()
        .find(|d| d.environment == environment)
    else {
        return Phase::Unobserved;
    };
    let passed_up = passed.state == State::Up;
    let mut tiers: Vec<(Tier, usize, usize)> = Vec::new();
    for target in status
        .target_states
        .iter()
        .filter(|t| t.environment == environment)
    {
        let up = usize::from(target.actual == State::Up);
        match tiers.iter_mut().find(|(tier, _, _)| *tier == target.tier) {
            Some(entry) => {
                entry.1 += up;
                entry.2 += 1;
            }
            None => tiers.push((target.tier, up, 1)),
        }
    }
    tiers.sort_by_key(|(tier, _, _)| *tier);
    if passed_up && tiers.iter().all(|(_, up, all)| up == all) {
        Phase::Ready
    } else {
        Phase::Waking(tiers)
    }
}

/// The host a request was sent to, lower case and without port: from the headers an ingress
/// or proxy sets, else `Host`.
fn request_host(headers: &HeaderMap) -> Option<String> {
    ["x-forwarded-host", "x-original-host", "host"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .and_then(|value| value.split(',').next())
        .map(|value| {
            let value = value.trim();
            let host = match value.rsplit_once(':') {
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
                _ => value,
            };
            host.trim_end_matches('.').to_ascii_lowercase()
        })
        .filter(|host| !host.is_empty())
}

/// The client a request comes from: the `X-Real-IP` an ingress sets, else the last address
/// of `X-Forwarded-For` (the one the nearest proxy added; earlier ones are the client's own
/// claim), else the connection's peer.
fn client_of(request: &Request) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let forwarded = header("x-real-ip")
        .or_else(|| {
            header("x-forwarded-for").and_then(|v| v.rsplit(',').next().map(str::to_string))
        })
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    forwarded
        .or_else(|| super::auth::client_address(request.extensions()))
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Capacity;
    use crate::domain::testing::mk_decision;
    use crate::planner::TargetState;

    fn target(name: &str, tier: Tier, actual: State) -> TargetState {
        TargetState {
            target: name.into(),
            environment: "staging".into(),
            desired: State::Up,
            actual,
            capacity: Capacity::Replicas(1),
            tier,
        }
    }

    #[test]
    fn an_environment_is_ready_once_a_pass_saw_every_target_up_and_unobserved_without_one() {
        let up = mk_decision(State::Up);
        assert_eq!(phase_of(&Status::default(), &up), Phase::Unobserved);
        let mut status = Status {
            environments: vec![up.clone()],
            target_states: vec![
                target("statefulset/shop/db", Tier::Stateful, State::Up),
                target("deployment/shop/web", Tier::Workloads, State::Down),
                target("deployment/shop/api", Tier::Workloads, State::Up),
            ],
            ..Status::default()
        };
        assert_eq!(
            phase_of(&status, &up),
            Phase::Waking(vec![(Tier::Stateful, 1, 1), (Tier::Workloads, 1, 2)])
        );
        status.target_states[1].actual = State::Up;
        assert_eq!(phase_of(&status, &up), Phase::Ready);
        // A wake not yet seen by a pass: the pass still has the environment down.
        status.environments = vec![mk_decision(State::Down)];
        assert!(matches!(phase_of(&status, &up), Phase::Waking(_)));
        assert!(matches!(
            phase_of(&status, &mk_decision(State::Down)),
            Phase::Asleep { .. }
        ));
    }

    #[test]
    fn the_host_comes_from_the_forwarding_headers_first_and_loses_its_port() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "gateway:8081".parse().expect("valid"));
        assert_eq!(request_host(&headers).as_deref(), Some("gateway"));
        headers.insert(
            "x-original-host",
            "Shop.Staging.example.com".parse().expect("valid"),
        );
        assert_eq!(
            request_host(&headers).as_deref(),
            Some("shop.staging.example.com")
        );
        headers.insert(
            "x-forwarded-host",
            "a.example.com:443, b".parse().expect("valid"),
        );
        assert_eq!(request_host(&headers).as_deref(), Some("a.example.com"));
    }
}
