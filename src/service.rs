//! Assembling and running the service: state directory, overrides, audit log, provider,
//! reconciler and HTTP server, with one shutdown token.
//!
//! Shutdown: the first SIGTERM or SIGINT stops ticking, lets the action in flight finish,
//! drains HTTP, releases the leader Lease (when there is one) and returns; a second signal
//! exits at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::config::TargetConfig;
use crate::overrides::FileOverrideStore;
use crate::providers::Provider;
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
    /// The state directory.
    pub state_dir: PathBuf,
    /// Reconciler knobs.
    pub settings: Settings,
    /// Address for the HTTP server; `None` serves nothing.
    pub listen: Option<String>,
}

/// The parts of a running service.
struct Parts {
    reconciler: Arc<Reconciler>,
}

async fn assemble(options: &Options, shutdown: CancellationToken) -> Result<Parts> {
    let dir = state::StateDir::open(&options.state_dir)?;
    let overrides = Arc::new(FileOverrideStore::open(dir.clone())?);
    let audit = Arc::new(AuditLog::open(dir.clone())?);
    let provider = build_provider(&options.config, options.clock.clone(), &dir).await?;
    let reconciler = Reconciler::new(
        options.config.clone(),
        provider,
        options.clock.clone(),
        overrides,
        options.settings,
    )
    .with_audit(audit)
    .with_shutdown(shutdown);
    Ok(Parts {
        reconciler: Arc::new(reconciler),
    })
}

/// The provider for this configuration: the simulated estate when the configuration has a
/// `simulation:` section; otherwise the Kubernetes provider when an environment has
/// `kubernetes` targets, with a client from the standard environment (`KUBECONFIG`, or the
/// in-cluster service account). One provider per configuration: AWS targets are not driven by
/// this build and are ignored with a warning when Kubernetes targets are present.
pub async fn build_provider(
    config: &Config,
    clock: Arc<dyn Clock>,
    dir: &state::StateDir,
) -> Result<Arc<dyn Provider>> {
    if let Some(simulation) = &config.simulation {
        let estate =
            sim::Estate::from_config(simulation, config.environments.values(), clock.now())
                .map_err(|err| Error::Provider(err.to_string()))?;
        let provider = SimProvider::new(estate, clock, sim::Faults::new(&simulation.faults))
            .with_persistence(dir.file("sim-estate.json"))
            .map_err(|err| Error::Provider(err.to_string()))?;
        return Ok(Arc::new(provider));
    }
    let targets = || {
        config
            .environments
            .values()
            .flat_map(|env| env.targets.iter())
    };
    if !targets().any(|t| matches!(t, TargetConfig::Kubernetes(_))) {
        return Err(Error::Provider(
            "this build drives Kubernetes targets and the simulated estate: add a 'kubernetes' \
             target or a 'simulation:' section, or try `curfew demo`"
                .to_string(),
        ));
    }
    for other in targets().filter(|t| !matches!(t, TargetConfig::Kubernetes(_))) {
        tracing::warn!(target = %other.describe(), "not driven by this build: ignored");
    }
    let client = kube_provider::client_from_environment()
        .await
        .map_err(|err| Error::Provider(err.to_string()))?;
    let provider = KubeProvider::start(client, config, clock, kube_provider::Settings::default())
        .await
        .map_err(|err| Error::Provider(err.to_string()))?;
    Ok(Arc::new(provider))
}

/// One reconcile pass, then return its report (`run --once`).
pub async fn run_once(options: Options) -> Result<PassReport> {
    let parts = assemble(&options, CancellationToken::new()).await?;
    Ok(parts.reconciler.reconcile().await?)
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
    let elector = leader_elector(&options.config).await?;
    spawn_signal_handler(shutdown.clone());
    let server = match &options.listen {
        Some(addr) => {
            let (listener, local) = api::bind(addr).await.map_err(|source| Error::Listen {
                addr: addr.clone(),
                source,
            })?;
            let router = api::router(AppState {
                config: options.config.clone(),
                status: parts.reconciler.status(),
                metrics: metrics.clone(),
            });
            on_listening(local);
            Some(tokio::spawn(api::serve(listener, router, shutdown.clone())))
        }
        None => None,
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
            if !elector.acquire(&shutdown).await {
                return Ok(());
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

/// The leader elector, when curfew drives Kubernetes from inside a cluster: the Lease
/// `curfew` lives in the namespace of `state.kubernetes`, or else in the pod's own namespace
/// (`POD_NAMESPACE`, set through the downward API). Outside a cluster, and for the simulated
/// estate, there is no election and this replica acts.
async fn leader_elector(config: &Config) -> Result<Option<LeaderElector>> {
    if config.simulation.is_some() {
        return Ok(None);
    }
    let namespace = match &config.state {
        crate::config::StateConfig::Kubernetes(state) => Some(state.namespace.clone()),
        crate::config::StateConfig::Dir(_) => std::env::var("POD_NAMESPACE")
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
