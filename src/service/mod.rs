//! Running the service: the parts a configuration needs (`assemble`), and its tasks under a
//! [`Supervisor`] with one shutdown token: the HTTP API, notifications, metrics upkeep,
//! leadership, override expiry and the reconciler.
//!
//! With several replicas (leader election) only the leader reconciles and expires overrides;
//! every replica serves the API. With the Kubernetes state backend the replicas share the
//! overrides, the audit log and the cost ledger, so an override created through any replica
//! reaches the leader through its watch, and a new leader continues the books and the log.
//!
//! The HTTP API sits above this layer: the caller hands [`run`] what serves it
//! ([`ServeApi`]), built over the [`Handles`] of the running service.
//!
//! Shutdown: the first SIGTERM or SIGINT stops ticking, lets the action in flight finish,
//! drains HTTP and returns; a second signal exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::activity::Activity;
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::config::wake::IdleSource;
use crate::cost::tracker::CostTracker;
use crate::notify::{Notifier, Webhook};
use crate::overrides::OverrideStore;
use crate::providers::sim;
use crate::reconciler::{PassReport, Settings, SharedStatus};
use crate::{overrides, reconciler, state, telemetry};

mod assemble;
#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "kubernetes")]
mod kubernetes;
#[cfg(any(not(feature = "aws"), not(feature = "kubernetes")))]
mod left_out;
mod supervisor;
mod tasks;

use self::kubernetes::LeaderElector;
#[cfg(not(feature = "aws"))]
use self::left_out::aws;
#[cfg(not(feature = "kubernetes"))]
use self::left_out::kubernetes;

pub use self::assemble::{build_provider, stored_overrides};
pub use self::supervisor::{Supervisor, TaskResult};

use self::assemble::Parts;

/// How long the reconciler may take to finish the action in flight once the shutdown begins.
const RECONCILER_STOP_BUDGET: StdDuration = StdDuration::from_secs(9);
/// How long the HTTP server may take to drain its connections.
const API_STOP_BUDGET: StdDuration = StdDuration::from_secs(1);
/// How long releasing the Lease may take.
const LEADERSHIP_STOP_BUDGET: StdDuration = StdDuration::from_secs(2);
/// How long the other tasks may take to stop.
const TASK_STOP_BUDGET: StdDuration = StdDuration::from_secs(1);
/// The delay before a webhook notification's first retry; it doubles after each.
const NOTIFY_RETRY_BASE: StdDuration = StdDuration::from_millis(500);

/// Why the service could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory or one of its files is unusable.
    #[error("state: {0}")]
    State(#[from] state::Error),
    /// The override store could not be opened.
    #[error("{0}")]
    Overrides(#[from] overrides::Error),
    /// The Kubernetes client or provider could not start.
    #[cfg(feature = "kubernetes")]
    #[error("{0}")]
    Kubernetes(#[from] crate::providers::kube::Error),
    /// The configuration needs a provider this build leaves out.
    #[error(
        "this build of curfew leaves out the {0} provider; build it with the default features \
         or with --features {0}"
    )]
    LeftOut(&'static str),
    /// The simulated estate could not be built or kept.
    #[error("simulation: {0}")]
    Estate(#[from] sim::estate::Error),
    /// The configuration names nothing to scale.
    #[error("the configuration has no targets to scale; try `curfew demo`")]
    NoTargets,
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    /// A reconcile pass could not run.
    #[error("{0}")]
    Reconcile(#[from] reconciler::Error),
    /// Another replica took the Lease over (or it could not be renewed): this one stopped.
    #[error("lost the leader lease; stopped so that only one replica acts")]
    LeadershipLost,
    /// A task ended before the shutdown without saying why.
    #[error("the {task} task ended unexpectedly")]
    Ended {
        /// The task.
        task: &'static str,
    },
    /// A task panicked.
    #[error("the {task} task panicked")]
    Panicked {
        /// The task.
        task: &'static str,
    },
}

/// Result type of the service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to run and how.
pub struct Options {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// The state directory (with `state: { dir }`, and for the simulated estate's file).
    pub state_dir: PathBuf,
    /// Reconciler knobs.
    pub settings: Settings,
    /// Address for the HTTP server; `None` serves nothing.
    pub listen: Option<SocketAddr>,
    /// Address for the wake gateway; `None` serves none (the HTTP server must be served too).
    pub wake_listen: Option<SocketAddr>,
}

/// The sockets the HTTP server listens on.
pub struct Listeners {
    /// The API, the status page and `/metrics`.
    pub api: tokio::net::TcpListener,
    /// The wake gateway, when served.
    pub gateway: Option<tokio::net::TcpListener>,
}

/// What the HTTP API reads and writes of a running service.
#[derive(Clone)]
pub struct Handles {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The reconciler's latest status.
    pub status: SharedStatus,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The cost books.
    pub cost: Arc<CostTracker>,
    /// The reconciler's clock.
    pub clock: Arc<dyn Clock>,
    /// Where overrides are kept.
    pub overrides: Arc<dyn OverrideStore>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Wakes the reconciler after an override changed.
    pub trigger: Arc<Notify>,
    /// Webhook notifications, when configured.
    pub notifier: Option<Notifier>,
    /// Traffic per environment: the wake gateway records it, idleness reads it.
    pub activity: Arc<Activity>,
    /// Where the wake gateway listens, when it does.
    pub gateway: Option<SocketAddr>,
}

/// Serves the HTTP API (and the wake gateway, when it has a listener) over a running
/// service's handles until the shutdown token is cancelled.
pub type ServeApi = Box<
    dyn FnOnce(Handles, Listeners, CancellationToken) -> BoxFuture<'static, std::io::Result<()>>
        + Send,
>;

/// How long `run --once` lets queued Events be written before it exits.
pub const ONCE_SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// One reconcile pass, then return its report (`run --once`).
pub async fn run_once(options: Options) -> Result<PassReport> {
    let parts = assemble::assemble(&options, CancellationToken::new()).await?;
    let report = parts.reconciler.reconcile().await;
    // Events are best effort: what is not written in this time is dropped and counted.
    parts.reconciler.settle(ONCE_SETTLE_TIMEOUT).await;
    let report = report?;
    parts.cost.flush().await;
    Ok(report)
}

/// Runs the service until a signal or a task's failure: the HTTP API (served by
/// `serve_api` when `options.listen` is set), notifications, metrics upkeep and, on the
/// acting replica, override expiry and the reconciler.
///
/// `on_listening` is called with the bound addresses (the API's, the wake gateway's) once
/// the server accepts connections.
pub async fn run(
    options: Options,
    serve_api: ServeApi,
    on_listening: impl FnOnce(SocketAddr, Option<SocketAddr>),
) -> Result<()> {
    let metrics = install_metrics();
    let mut supervisor = Supervisor::new();
    let shutdown = supervisor.shutdown().clone();
    let parts = assemble::assemble(&options, shutdown.clone()).await?;
    telemetry::register_zeroes(parts.provider.name());
    for environment in options.config.environments.values() {
        if environment.wake.is_some() {
            telemetry::register_wake_zeroes(&environment.name);
        }
    }
    // A dry run writes no Lease: it acts on its own, and acting changes nothing.
    let elector = if options.settings.dry_run {
        None
    } else {
        assemble::leader_elector(&options.config).await?
    };
    tasks::spawn_signal_handler(shutdown.clone());
    let notifier = start_notifier(&options, &mut supervisor);
    let handles = Handles {
        config: options.config.clone(),
        status: parts.reconciler.status(),
        metrics: metrics.clone(),
        cost: parts.cost.clone(),
        clock: options.clock.clone(),
        overrides: parts.overrides.clone(),
        audit: parts.audit.clone(),
        trigger: parts.reconciler.trigger(),
        notifier: notifier.clone(),
        activity: parts.activity.clone(),
        gateway: None,
    };
    if let Some(addr) = options.listen {
        let gateway = match options.wake_listen {
            Some(at) => Some(bind(at).await?),
            None => None,
        };
        let gateway_at = gateway.as_ref().map(|(_, at)| *at);
        let local = start_api(addr, gateway, serve_api, handles, &mut supervisor).await?;
        on_listening(local, gateway_at);
    }
    watch_idleness(&options, &parts, &mut supervisor);
    if let Some(notifier) = &notifier {
        watch_status(&options, &parts, notifier.clone(), &mut supervisor);
    }
    if let Some(handle) = metrics {
        let upkeep = tasks::upkeep_metrics(handle, shutdown.clone());
        supervisor.spawn("metrics upkeep", TASK_STOP_BUDGET, upkeep);
    }
    match elector {
        Some(elector) => {
            if !lead(elector, &parts, &options, &mut supervisor).await {
                return supervisor.run().await;
            }
        }
        None => metrics::gauge!(telemetry::LEADER).set(1.0),
    }
    act(&options, &parts, notifier, &mut supervisor);
    let outcome = supervisor.run().await;
    parts.cost.flush().await;
    tracing::info!("stopped");
    outcome
}

/// The Prometheus recorder, when one can be installed.
fn install_metrics() -> Option<PrometheusHandle> {
    match telemetry::install_prometheus() {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed");
            None
        }
    }
}

/// The webhook notifier when notifications are configured (and this is not a dry run, which
/// tells nobody anything), its delivery supervised.
fn start_notifier(options: &Options, supervisor: &mut Supervisor) -> Option<Notifier> {
    if options.settings.dry_run {
        return None;
    }
    let settings = options.config.server.notifications.as_ref()?;
    let webhook = Webhook {
        url: settings.webhook_url.clone(),
        format: settings.format,
        public_url: options.config.server.public_url.clone(),
    };
    let (notifier, delivery) = Notifier::new(webhook, NOTIFY_RETRY_BASE);
    let shutdown = supervisor.shutdown().clone();
    supervisor.spawn("notification delivery", TASK_STOP_BUDGET, async move {
        delivery.run(shutdown).await;
        Ok(())
    });
    Some(notifier)
}

/// A listener bound to `addr`, with the address it got.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    Ok((listener, local))
}

/// Binds `addr` and serves the API there, and the wake gateway on `gateway`; returns the
/// API's bound address.
async fn start_api(
    addr: SocketAddr,
    gateway: Option<(tokio::net::TcpListener, SocketAddr)>,
    serve_api: ServeApi,
    mut handles: Handles,
    supervisor: &mut Supervisor,
) -> Result<SocketAddr> {
    let (listener, local) = bind(addr).await?;
    if let Some((_, at)) = &gateway {
        tracing::info!(address = %at, "wake gateway listening");
        handles.gateway = Some(*at);
    }
    let listeners = Listeners {
        api: listener,
        gateway: gateway.map(|(listener, _)| listener),
    };
    let serving = serve_api(handles, listeners, supervisor.shutdown().clone());
    supervisor.spawn("http api", API_STOP_BUDGET, async move {
        serving.await.map_err(Error::Serve)
    });
    Ok(local)
}

/// Polls the Prometheus query of each environment that measures idleness there.
fn watch_idleness(options: &Options, parts: &Parts, supervisor: &mut Supervisor) {
    for environment in options.config.environments.values() {
        let Some(idle) = environment.wake.as_ref().and_then(|w| w.idle.as_ref()) else {
            continue;
        };
        let IdleSource::Prometheus(query) = &idle.source else {
            continue;
        };
        let task = crate::activity::poll_prometheus(
            environment.name.clone(),
            query.clone(),
            parts.activity.clone(),
            options.clock.clone(),
            supervisor.shutdown().clone(),
        );
        supervisor.spawn("idleness query", TASK_STOP_BUDGET, async move {
            task.await;
            Ok(())
        });
    }
}

/// Warns before environments go down and tells about failed actions, through `notifier`.
fn watch_status(options: &Options, parts: &Parts, notifier: Notifier, supervisor: &mut Supervisor) {
    let Some(settings) = options.config.server.notifications.clone() else {
        return;
    };
    let watch = tasks::Watch {
        config: options.config.clone(),
        settings,
        clock: options.clock.clone(),
        notifier,
    };
    let task = tasks::watch_status(
        parts.reconciler.status(),
        watch,
        supervisor.shutdown().clone(),
    );
    supervisor.spawn("status notifications", TASK_STOP_BUDGET, task);
}

/// Waits to hold the Lease, serving as a follower meanwhile, then keeps it as a task; whether
/// this replica leads (`false`: the shutdown came first).
async fn lead(
    elector: LeaderElector,
    parts: &Parts,
    options: &Options,
    supervisor: &mut Supervisor,
) -> bool {
    let shared = assemble::shared_state(&options.config);
    if shared {
        // A follower serves the shared overrides and audit log: ready for traffic.
        parts.reconciler.stand_by();
    }
    let shutdown = supervisor.shutdown().clone();
    if !elector.acquire(&shutdown).await {
        return false;
    }
    if shared {
        assemble::take_over(parts).await;
    }
    supervisor.spawn("leadership", LEADERSHIP_STOP_BUDGET, async move {
        let lost = CancellationToken::new();
        elector.hold(shutdown, lost.clone()).await;
        if lost.is_cancelled() {
            Err(Error::LeadershipLost)
        } else {
            Ok(())
        }
    });
    true
}

/// The acting replica's tasks: override expiry and the reconciler.
fn act(options: &Options, parts: &Parts, notifier: Option<Notifier>, supervisor: &mut Supervisor) {
    let expiry = tasks::expire_overrides(
        parts.overrides.clone(),
        parts.audit.clone(),
        options.clock.clone(),
        notifier,
        supervisor.shutdown().clone(),
    );
    supervisor.spawn("override expiry", TASK_STOP_BUDGET, expiry);
    let reconciler = parts.reconciler.clone();
    supervisor.spawn("reconciler", RECONCILER_STOP_BUDGET, async move {
        reconciler.run().await;
        Ok(())
    });
}
