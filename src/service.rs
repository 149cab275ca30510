//! Assembling and running the service: state (a directory, or the cluster), overrides,
//! audit log, provider, reconciler and HTTP server, with one shutdown token.
//!
//! With several replicas (leader election) only the leader reconciles and expires overrides;
//! every replica serves the API. With the Kubernetes state backend the replicas share the
//! overrides, the audit log and the cost ledger, so an override created through any replica
//! reaches the leader through its watch, and a new leader continues the books and the log.
//!
//! Shutdown: the first SIGTERM or SIGINT stops ticking, lets the action in flight finish,
//! drains HTTP and returns; a second signal exits at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{Config, StateConfig, TargetConfig};
use crate::cost::CostTracker;
use crate::notify::{self, Notifier};
use crate::overrides::{
    self, DryRunOverrides, FileOverrideStore, KubeOverrideStore, OverrideStore,
};
use crate::providers::Provider;
use crate::providers::aws::AwsProvider;
use crate::providers::composite::CompositeProvider;
use crate::providers::kube::leader::{LeaderElector, LeaseSettings};
use crate::providers::kube::{self as kube_provider, KubeProvider};
use crate::providers::sim::{self, SimProvider};
use crate::reconciler::{PassReport, Reconciler, Settings};
use crate::{state, telemetry};

/// How long shutdown may take before the process gives up waiting.
const SHUTDOWN_BUDGET: StdDuration = StdDuration::from_secs(9);

/// Why the service could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory or one of its files is unusable.
    #[error("state: {0}")]
    State(#[from] state::Error),
    /// The override store could not be opened.
    #[error("{0}")]
    Overrides(#[from] crate::overrides::Error),
    /// No provider can serve this configuration.
    #[error("{0}")]
    Provider(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A reconcile pass could not run.
    #[error("{0}")]
    Reconcile(#[from] crate::reconciler::Error),
    /// The tokens file is unusable.
    #[error("tokens: {0}")]
    Tokens(#[from] api::auth::Error),
    /// Another replica took the Lease over (or it could not be renewed): this one stopped.
    #[error("lost the leader lease; stopped so that only one replica acts")]
    LeadershipLost,
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
    pub listen: Option<String>,
    /// Tokens file instead of the configuration's `server.tokens_file`.
    pub tokens_file: Option<PathBuf>,
}

/// The parts of a running service.
struct Parts {
    reconciler: Arc<Reconciler>,
    cost: Arc<CostTracker>,
    provider: Arc<dyn Provider>,
    overrides: Arc<dyn OverrideStore>,
    audit: Arc<AuditLog>,
}

/// The overrides, the audit log and the cost books, where the configuration keeps state.
struct StateParts {
    overrides: Arc<dyn OverrideStore>,
    audit: Arc<AuditLog>,
    cost: Arc<CostTracker>,
}

/// Opens the state: files in the state directory, or (`state.kubernetes`) `Override`
/// resources and the ConfigMaps `curfew-audit` and `curfew-ledger` in the namespace, whose
/// override watch wakes `trigger`. A dry run reads the state and keeps its own changes in
/// memory: it neither creates the directory nor writes anything.
async fn open_state(options: &Options, trigger: &Arc<Notify>) -> Result<StateParts> {
    let model = options.config.cost.clone();
    let dry_run = options.settings.dry_run;
    let (documents, overrides): (Arc<dyn state::DocumentStore>, Arc<dyn OverrideStore>) =
        match &options.config.state {
            StateConfig::Kubernetes(kubernetes) => {
                let client = kube_provider::client_from_environment()
                    .await
                    .map_err(|err| Error::Provider(err.to_string()))?;
                let namespace = kubernetes.namespace.as_str();
                (
                    Arc::new(state::ConfigMapStore::new(client.clone(), namespace)),
                    Arc::new(KubeOverrideStore::start(client, namespace, trigger.clone())),
                )
            }
            StateConfig::Dir(_) => {
                let dir = if dry_run {
                    state::StateDir::existing(&options.state_dir)
                } else {
                    state::StateDir::open(&options.state_dir)?
                };
                (
                    Arc::new(dir.clone()),
                    Arc::new(FileOverrideStore::open(dir)?),
                )
            }
        };
    let (documents, overrides) = if dry_run {
        (
            Arc::new(state::DryRunStore::new(documents)) as Arc<dyn state::DocumentStore>,
            Arc::new(DryRunOverrides::new(overrides)) as Arc<dyn OverrideStore>,
        )
    } else {
        (documents, overrides)
    };
    Ok(StateParts {
        overrides,
        audit: Arc::new(AuditLog::load(documents.clone()).await?),
        cost: Arc::new(CostTracker::load(model, documents).await?),
    })
}

async fn assemble(options: &Options, shutdown: CancellationToken) -> Result<Parts> {
    let trigger = Arc::new(Notify::new());
    let StateParts {
        overrides,
        audit,
        cost,
    } = open_state(options, &trigger).await?;
    let provider = build_provider(
        &options.config,
        options.clock.clone(),
        &options.state_dir,
        options.settings.dry_run,
    )
    .await?;
    let reconciler = Reconciler::new(
        options.config.clone(),
        provider.clone(),
        options.clock.clone(),
        overrides.clone(),
        options.settings,
    )
    .with_trigger(trigger)
    .with_audit(audit.clone())
    .with_cost(cost.clone())
    .with_shutdown(shutdown);
    Ok(Parts {
        reconciler: Arc::new(reconciler),
        cost,
        provider,
        overrides,
        audit,
    })
}

/// The provider for this configuration: the simulated estate (kept in `state_dir`) when it
/// has a `simulation:` section; otherwise the real systems its targets name: Kubernetes (a
/// client from `KUBECONFIG` or the in-cluster service account) and AWS (the standard
/// credential chain), combined when both are present. A dry run reads the simulated estate's
/// file but never writes it, and writes no Kubernetes Events.
pub async fn build_provider(
    config: &Config,
    clock: Arc<dyn Clock>,
    state_dir: &std::path::Path,
    dry_run: bool,
) -> Result<Arc<dyn Provider>> {
    if let Some(simulation) = &config.simulation {
        let estate =
            sim::Estate::from_config(simulation, config.environments.values(), clock.now())
                .map_err(|err| Error::Provider(err.to_string()))?;
        let provider = SimProvider::new(estate, clock, sim::Faults::new(&simulation.faults));
        let provider = if dry_run {
            provider.with_stored(&state::StateDir::existing(state_dir).file(sim::ESTATE_FILE))
        } else {
            provider.with_persistence(state::StateDir::open(state_dir)?.file(sim::ESTATE_FILE))
        }
        .map_err(|err| Error::Provider(err.to_string()))?;
        return Ok(Arc::new(provider));
    }
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let has_kubernetes = config
        .environments
        .values()
        .flat_map(|env| &env.targets)
        .any(|target| matches!(target, TargetConfig::Kubernetes(_)));
    if has_kubernetes {
        let client = kube_provider::client_from_environment()
            .await
            .map_err(|err| Error::Provider(err.to_string()))?;
        let settings = kube_provider::Settings {
            events: !dry_run,
            ..kube_provider::Settings::default()
        };
        let kube = KubeProvider::start(client, config, clock, settings)
            .await
            .map_err(|err| Error::Provider(err.to_string()))?;
        providers.push(Arc::new(kube));
    }
    if let Some(aws) = AwsProvider::from_config(config).await {
        providers.push(Arc::new(aws));
    }
    match providers.len() {
        0 => Err(Error::Provider(
            "the configuration has no targets to scale; try `curfew demo`".to_string(),
        )),
        1 => Ok(providers.remove(0)),
        _ => Ok(Arc::new(CompositeProvider::new(providers))),
    }
}

/// One reconcile pass, then return its report (`run --once`).
pub async fn run_once(options: Options) -> Result<PassReport> {
    let parts = assemble(&options, CancellationToken::new()).await?;
    let report = parts.reconciler.reconcile().await?;
    parts.cost.flush().await;
    Ok(report)
}

/// Runs the service until a signal: the reconciler loop and, when asked, the HTTP server.
///
/// `on_listening` is called with the bound address once the server accepts connections.
pub async fn run(options: Options, on_listening: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    let shutdown = CancellationToken::new();
    let metrics = match telemetry::install_prometheus() {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(error = %err, "metrics recorder not installed");
            None
        }
    };
    let parts = assemble(&options, shutdown.clone()).await?;
    telemetry::register_zeroes(parts.provider.name());
    let tokens = Arc::new(load_tokens(&options)?);
    // A dry run writes no Lease: it acts on its own, and acting changes nothing.
    let elector = if options.settings.dry_run {
        None
    } else {
        leader_elector(&options.config).await?
    };
    spawn_signal_handler(shutdown.clone());
    let server = match &options.listen {
        Some(addr) => {
            let (listener, local) = api::bind(addr).await.map_err(|source| Error::Listen {
                addr: addr.clone(),
                source,
            })?;
            let notifier = spawn_notifications(&options, &parts, local, &shutdown);
            let router = api::router(AppState {
                config: options.config.clone(),
                status: parts.reconciler.status(),
                metrics: metrics.clone(),
                cost: Some(parts.cost.clone()),
                clock: options.clock.clone(),
                overrides: parts.overrides.clone(),
                audit: parts.audit.clone(),
                trigger: parts.reconciler.trigger(),
                tokens,
                limiter: Arc::new(api::RateLimiter::new(options.config.server.rate_limit)),
                notifier: notifier.clone(),
                environments_cache: Arc::default(),
            });
            on_listening(local);
            Some((
                tokio::spawn(api::serve(listener, router, shutdown.clone())),
                notifier,
            ))
        }
        None => None,
    };
    let (server, notifier) = match server {
        Some((server, notifier)) => (Some(server), notifier),
        None => (None, None),
    };
    if let Some(handle) = metrics {
        let upkeep_shutdown = shutdown.clone();
        tokio::spawn(async move {
            while !upkeep_shutdown.is_cancelled() {
                handle.run_upkeep();
                tokio::select! {
                    _ = tokio::time::sleep(StdDuration::from_secs(5)) => {}
                    _ = upkeep_shutdown.cancelled() => {}
                }
            }
        });
    }
    let lost = CancellationToken::new();
    let holding = match elector {
        Some(elector) => {
            let shared = shared_state(&options.config);
            if shared {
                // A follower serves the shared overrides and audit log: ready for traffic.
                mark_serving(&parts);
            }
            if !elector.acquire(&shutdown).await {
                return Ok(());
            }
            if shared {
                take_over(&parts).await;
            }
            let (shutdown, lost) = (shutdown.clone(), lost.clone());
            Some(tokio::spawn(
                async move { elector.hold(shutdown, lost).await },
            ))
        }
        None => {
            metrics::gauge!(telemetry::LEADER).set(1.0);
            None
        }
    };
    {
        let (lost, shutdown) = (lost.clone(), shutdown.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            shutdown.cancel();
        });
    }
    if server.is_some() {
        // Only the acting replica ends overrides, so each expiry is audited once.
        tokio::spawn(overrides::expiry::run(
            parts.overrides.clone(),
            parts.audit.clone(),
            options.clock.clone(),
            notifier,
            shutdown.clone(),
        ));
    }
    let reconciler = parts.reconciler.clone();
    let mut loop_task = tokio::spawn(async move { reconciler.run().await });
    tokio::select! {
        _ = &mut loop_task => {}
        _ = shutdown.cancelled() => {
            if tokio::time::timeout(SHUTDOWN_BUDGET, &mut loop_task).await.is_err() {
                tracing::warn!("the action in flight did not finish in time; exiting anyway");
            }
        }
    }
    shutdown.cancel();
    parts.cost.flush().await;
    if let Some(server) = server {
        let _ = tokio::time::timeout(StdDuration::from_secs(1), server).await;
    }
    if let Some(holding) = holding {
        // Releases the Lease so that a follower takes over at once.
        let _ = tokio::time::timeout(StdDuration::from_secs(2), holding).await;
    }
    tracing::info!("stopped");
    if lost.is_cancelled() {
        return Err(Error::LeadershipLost);
    }
    Ok(())
}

/// Whether the replicas share their state (the Kubernetes state backend).
fn shared_state(config: &Config) -> bool {
    matches!(config.state, StateConfig::Kubernetes(_))
}

/// Marks a follower ready: it has no pass of its own, but serves the shared state.
fn mark_serving(parts: &Parts) {
    let status = parts.reconciler.status();
    let mut status = status.write().unwrap_or_else(|e| e.into_inner());
    status.ready = true;
}

/// On becoming the leader with shared state: continue the books and the log where the
/// previous leader left them.
async fn take_over(parts: &Parts) {
    if let Err(err) = parts.cost.reload().await {
        tracing::error!(error = %err, "cannot read the cost ledger; continuing with this replica's");
    }
    if let Err(err) = parts.audit.refresh().await {
        tracing::error!(error = %err, "cannot read the audit log");
    }
}

/// The tokens the API accepts: `--tokens`, else `server.tokens_file`, else none.
fn load_tokens(options: &Options) -> Result<api::Tokens> {
    let configured = options
        .config
        .server
        .tokens_file
        .as_ref()
        .map(PathBuf::from);
    Ok(match options.tokens_file.clone().or(configured) {
        Some(path) => api::Tokens::load(&path)?,
        None => api::Tokens::none(),
    })
}

/// Starts the webhook sender and the status watcher when notifications are configured (and
/// this is not a dry run, which tells nobody anything).
fn spawn_notifications(
    options: &Options,
    parts: &Parts,
    local: std::net::SocketAddr,
    shutdown: &CancellationToken,
) -> Option<Notifier> {
    if options.settings.dry_run {
        return None;
    }
    let settings = options.config.server.notifications.clone()?;
    let notifier = Notifier::spawn(
        settings.webhook_url.clone(),
        StdDuration::from_millis(500),
        shutdown.clone(),
    );
    let link_base = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    tokio::spawn(notify::watch_status(
        parts.reconciler.status(),
        options.config.clone(),
        settings,
        link_base,
        options.clock.clone(),
        notifier.clone(),
        shutdown.clone(),
    ));
    Some(notifier)
}

/// The leader elector, when curfew drives Kubernetes from inside a cluster: the Lease
/// `curfew` lives in the namespace of `state.kubernetes`, or else in the pod's own namespace
/// (`POD_NAMESPACE`, set through the downward API). Outside a cluster, and for the simulated
/// estate, there is no election and this replica acts.
async fn leader_elector(config: &Config) -> Result<Option<LeaderElector>> {
    if config.simulation.is_some() {
        return Ok(None);
    }
    let namespace = match &config.state {
        StateConfig::Kubernetes(state) => Some(state.namespace.clone()),
        StateConfig::Dir(_) => std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|ns| !ns.is_empty()),
    };
    let Some(namespace) = namespace else {
        return Ok(None);
    };
    let identity = match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => format!("{host}-{}", std::process::id()),
        _ => format!(
            "curfew-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ),
    };
    let client = kube_provider::client_from_environment()
        .await
        .map_err(|err| Error::Provider(err.to_string()))?;
    Ok(Some(LeaderElector::new(
        client,
        LeaseSettings::new(&namespace, &identity),
    )))
}

/// First SIGTERM/SIGINT: cancel `shutdown`. Second: exit at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
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
