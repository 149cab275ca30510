//! Assembling a service from its configuration: state (a directory, or the cluster),
//! overrides, audit log, cost books, provider, reconciler, and the leader elector.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Error, LeaderElector, Options, Result, aws, kubernetes};
use crate::activity::Activity;
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{Config, StateConfig, TargetConfig};
use crate::cost::tracker::CostTracker;
use crate::domain::Override;
use crate::overrides::{DryRunOverrides, FileOverrideStore, OverrideStore};
use crate::providers::Provider;
use crate::providers::composite::CompositeProvider;
use crate::providers::sim::{self, SimProvider};
use crate::reconciler::Reconciler;
use crate::state;

/// The parts of a running service.
pub(super) struct Parts {
    pub(super) reconciler: Arc<Reconciler>,
    pub(super) cost: Arc<CostTracker>,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) overrides: Arc<dyn OverrideStore>,
    pub(super) audit: Arc<AuditLog>,
    pub(super) activity: Arc<Activity>,
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
            StateConfig::Kubernetes(in_cluster) => {
                kubernetes::state(&in_cluster.namespace, trigger).await?
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
    let (documents, overrides): (Arc<dyn state::DocumentStore>, Arc<dyn OverrideStore>) = if dry_run
    {
        (
            Arc::new(state::DryRunStore::new(documents)),
            Arc::new(DryRunOverrides::new(overrides)),
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

/// The overrides the service keeps for `config`, read without opening the state or changing
/// anything: the file in `state_dir`, or the `Override` resources listed once.
pub async fn stored_overrides(config: &Config, state_dir: &Path) -> Result<Vec<Override>> {
    match &config.state {
        StateConfig::Dir(_) => Ok(FileOverrideStore::read(&state::StateDir::existing(
            state_dir,
        ))?),
        StateConfig::Kubernetes(in_cluster) => {
            kubernetes::stored_overrides(&in_cluster.namespace).await
        }
    }
}

/// The parts of a service for `options`, its reconciler stopping on `shutdown`.
pub(super) async fn assemble(options: &Options, shutdown: CancellationToken) -> Result<Parts> {
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
    let activity = Arc::new(Activity::new(options.clock.now()));
    let reconciler = reconciler.with_activity(activity.clone());
    Ok(Parts {
        reconciler: Arc::new(reconciler),
        cost,
        provider,
        overrides,
        audit,
        activity,
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
            sim::Estate::from_config(simulation, config.environments.values(), clock.now())?;
        let provider = SimProvider::new(estate, clock, sim::Faults::new(&simulation.faults));
        let provider = if dry_run {
            provider.with_stored(&state::StateDir::existing(state_dir).file(sim::ESTATE_FILE))?
        } else {
            provider.with_persistence(state::StateDir::open(state_dir)?.file(sim::ESTATE_FILE))?
        };
        return Ok(Arc::new(provider));
    }
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let has_kubernetes = config
        .environments
        .values()
        .flat_map(|env| &env.targets)
        .any(|target| matches!(target, TargetConfig::Kubernetes(_)));
    if has_kubernetes {
        providers.push(kubernetes::provider(config, clock.clone(), dry_run).await?);
    }
    if let Some(aws) = aws::provider(config, clock).await? {
        providers.push(aws);
    }
    match providers.len() {
        0 => Err(Error::NoTargets),
        1 => Ok(providers.remove(0)),
        _ => Ok(Arc::new(CompositeProvider::new(providers))),
    }
}

/// Whether the replicas share their state (the Kubernetes state backend).
pub(super) fn shared_state(config: &Config) -> bool {
    matches!(config.state, StateConfig::Kubernetes(_))
}

/// On becoming the leader with shared state: continue the books and the log where the
/// previous leader left them.
pub(super) async fn take_over(parts: &Parts) {
    if let Err(err) = parts.cost.reload().await {
        tracing::error!(error = %err, "cannot read the cost ledger; continuing with this replica's");
    }
    if let Err(err) = parts.audit.refresh().await {
        tracing::error!(error = %err, "cannot read the audit log");
    }
}

/// The leader elector, when curfew drives Kubernetes from inside a cluster: the Lease
/// `curfew` lives in the namespace of `state.kubernetes`, or else in the pod's own namespace
/// (`POD_NAMESPACE`, set through the downward API). Outside a cluster, and for the simulated
/// estate, there is no election and this replica acts.
pub(super) async fn leader_elector(config: &Config) -> Result<Option<LeaderElector>> {
    if config.simulation.is_some() {
        return Ok(None);
    }
    let namespace = match &config.state {
        StateConfig::Kubernetes(state) => Some(state.namespace.clone()),
        StateConfig::Dir(_) if cfg!(feature = "kubernetes") => std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|ns| !ns.is_empty()),
        // A build without Kubernetes has no Lease to elect over: this replica acts.
        StateConfig::Dir(_) => None,
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
    Ok(Some(kubernetes::elector(&namespace, &identity).await?))
}
