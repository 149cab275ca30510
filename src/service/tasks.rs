//! The service's tasks besides the reconciler and the HTTP API: override expiry, status
//! notifications, metrics upkeep and the signal handler. Each runs until the shutdown token
//! is cancelled.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::supervisor::TaskResult;
use crate::audit::AuditLog;
use crate::calendar::{State, Zone};
use crate::clock::Clock;
use crate::config::{Config, NotificationsConfig};
use crate::notify::{Notification, Notifier};
use crate::overrides::{OverrideStore, expire};
use crate::reconciler::SharedStatus;

/// How often ended overrides are looked for (real time).
const EXPIRE_EVERY: StdDuration = StdDuration::from_millis(500);
/// How often the status is checked for warnings and failures (real time).
const WATCH_EVERY: StdDuration = StdDuration::from_millis(500);
/// How often the metrics recorder's upkeep runs (real time).
const UPKEEP_EVERY: StdDuration = StdDuration::from_secs(5);

/// Sleeps for `period` or until `shutdown`; whether the service goes on.
async fn pause(period: StdDuration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// Expires overrides every half second until `shutdown`, notifying about each one ended.
/// Only the acting replica runs it, so each expiry is audited once; it runs whether or not
/// the service serves HTTP.
///
/// The reconciler needs no help here: it decides by `until` and wakes then on its own.
pub async fn expire_overrides(
    store: Arc<dyn OverrideStore>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    notifier: Option<Notifier>,
    shutdown: CancellationToken,
) -> TaskResult {
    loop {
        match expire(&*store, &audit, clock.now()).await {
            Ok(removed) => {
                for item in removed {
                    tracing::info!(id = %item.id, environment = %item.environment, "override expired");
                    if let Some(notifier) = &notifier {
                        notifier.send(Notification::OverrideExpired { item });
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot expire overrides"),
        }
        if !pause(EXPIRE_EVERY, &shutdown).await {
            return Ok(());
        }
    }
}

/// What the status watch needs besides the status.
pub struct Watch {
    /// The configuration (for each environment's zone).
    pub config: Arc<Config>,
    /// The notification settings.
    pub settings: NotificationsConfig,
    /// The reconciler's clock.
    pub clock: Arc<dyn Clock>,
    /// Where notifications go.
    pub notifier: Notifier,
}

/// Watches the reconciler's status and queues a warning `minutes_before` each environment goes
/// down, and a message for each pass with failed actions. Runs until `shutdown`.
pub async fn watch_status(
    status: SharedStatus,
    watch: Watch,
    shutdown: CancellationToken,
) -> TaskResult {
    let Watch {
        config,
        settings,
        clock,
        notifier,
    } = watch;
    let mut warned: HashSet<(String, DateTime<Utc>)> = HashSet::new();
    let mut last_pass: Option<DateTime<Utc>> = None;
    let lead = Duration::minutes(i64::from(settings.minutes_before));
    loop {
        let snapshot = status.read().clone();
        let now = clock.now();
        for decision in &snapshot.environments {
            let Some(at) = decision.next_change else {
                continue;
            };
            if decision.state != State::Up || at <= now || at - now > lead {
                continue;
            }
            if warned.insert((decision.environment.clone(), at)) {
                let zone = config
                    .environments
                    .get(&decision.environment)
                    .map(|env| config.schedule_of(env).zone())
                    .unwrap_or(Zone::UTC);
                notifier.send(Notification::GoingDown {
                    environment: decision.environment.clone(),
                    at,
                    zone,
                });
            }
        }
        warned.retain(|(_, at)| *at > now);
        if snapshot.at.is_some() && snapshot.at != last_pass {
            last_pass = snapshot.at;
            if !snapshot.failures.is_empty() {
                notifier.send(Notification::ActionsFailed {
                    failures: snapshot.failures.clone(),
                });
            }
        }
        if !pause(WATCH_EVERY, &shutdown).await {
            return Ok(());
        }
    }
}

/// Runs the metrics recorder's upkeep every few seconds until `shutdown`.
pub async fn upkeep_metrics(handle: PrometheusHandle, shutdown: CancellationToken) -> TaskResult {
    loop {
        handle.run_upkeep();
        if !pause(UPKEEP_EVERY, &shutdown).await {
            return Ok(());
        }
    }
}

/// First SIGTERM/SIGINT: cancel `shutdown`. Second: exit at once.
pub fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: finishing the action in flight, then stopping");
        shutdown.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting at once");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
