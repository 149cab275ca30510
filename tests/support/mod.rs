//! Helpers shared by the integration tests. Each subject uses only some of them.
#![allow(dead_code)]

pub mod demo;
/// A fake Kubernetes API server.
pub mod fake_apiserver;
/// Kubernetes objects for tests.
pub mod fixtures;
pub mod http;
/// A reconciler over the Kubernetes provider and the fake.
pub mod kube;
pub mod moto;
/// Ports for the servers tests start as child processes.
pub mod port;
/// CPU time and peak memory of running processes, from `/proc`.
pub mod proc_stat;
pub mod process;
/// A counting, fault-injecting proxy in front of a test server.
pub mod proxy;
/// A CA of our own and TLS listeners.
pub mod tls;

/// Compares a generated artifact with its committed copy.
pub mod committed;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use curfew::api::{AppState, RateLimiter, Tokens};
use curfew::audit::AuditLog;
use curfew::clock::{Clock, ManualClock};
use curfew::config::Config;
use curfew::overrides::OverrideStore;
use curfew::providers::sim::{Estate, Faults, SimProvider};
use curfew::reconciler::{RetryPolicy, Settings, SharedStatus};
use tokio::sync::Notify;

/// The API's state in process: `config` with its rate limits, the reconciler's `status`, and
/// no metrics, cost books or notifications.
pub fn api_state(
    config: Arc<Config>,
    status: SharedStatus,
    clock: Arc<dyn Clock>,
    overrides: Arc<dyn OverrideStore>,
    audit: Arc<AuditLog>,
    trigger: Arc<Notify>,
    tokens: Tokens,
) -> AppState {
    AppState {
        limiter: Arc::new(RateLimiter::new(config.server.rate_limit)),
        failed_auth: Arc::new(RateLimiter::failed_auth(config.server.failed_auth)),
        creating: Arc::default(),
        config,
        status,
        metrics: None,
        cost: None,
        clock,
        overrides,
        audit,
        trigger,
        tokens: Arc::new(tokens),
        notifier: None,
        environments_cache: Arc::default(),
        gateway: None,
        activity: None,
    }
}

/// The value of `series` (name and labels, as rendered) in what `metrics` renders now.
pub fn rendered_value(
    metrics: &metrics_exporter_prometheus::PrometheusHandle,
    series: &str,
) -> Option<f64> {
    let prefix = format!("{series} ");
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
}

/// The simulated estate of `config` as it stands at `start`, driven by a manual clock.
pub fn sim_provider(config: &Config, start: DateTime<Utc>) -> (Arc<ManualClock>, Arc<SimProvider>) {
    let clock = Arc::new(ManualClock::new(start));
    let simulation = config.simulation.clone().expect("a simulation section");
    let estate = Estate::from_config(&simulation, config.environments.values(), start)
        .expect("the estate builds");
    let provider = Arc::new(SimProvider::new(
        estate,
        clock.clone(),
        Faults::new(&simulation.faults),
    ));
    (clock, provider)
}

/// Reconciler settings for tests: retries without real waiting, no minimum tick.
pub fn fast_settings() -> Settings {
    Settings {
        retry: RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        min_real_tick: Duration::ZERO,
        ..Settings::default()
    }
}
