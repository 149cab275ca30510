//! The service's parts that live in a Kubernetes cluster: the state as `Override` resources
//! and ConfigMaps, the workload provider, and the Lease that elects the acting replica.

use std::sync::Arc;

use tokio::sync::Notify;

use super::Result;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::Override;
pub use crate::leadership::LeaderElector;
use crate::leadership::LeaseSettings;
use crate::overrides::{KubeOverrideStore, OverrideStore};
use crate::providers::Provider;
use crate::providers::kube::{self as kube_provider, ClientRetries, KubeProvider};
use crate::state::{ConfigMapStore, DocumentStore};

/// The state in `namespace`: the audit log and the ledger as ConfigMaps, the overrides as
/// resources whose watch wakes `trigger`.
pub(super) async fn state(
    namespace: &str,
    trigger: &Arc<Notify>,
) -> Result<(Arc<dyn DocumentStore>, Arc<dyn OverrideStore>)> {
    let client = kube_provider::client_from_environment(ClientRetries::On).await?;
    Ok((
        Arc::new(ConfigMapStore::new(client.clone(), namespace)),
        Arc::new(KubeOverrideStore::start(client, namespace, trigger.clone())),
    ))
}

/// The `Override` resources in `namespace`, listed once.
pub(super) async fn stored_overrides(namespace: &str) -> Result<Vec<Override>> {
    let client = kube_provider::client_from_environment(ClientRetries::On).await?;
    Ok(KubeOverrideStore::read(client, namespace).await?)
}

/// The workload provider; a dry run writes no Events.
pub(super) async fn provider(
    config: &Config,
    clock: Arc<dyn Clock>,
    dry_run: bool,
) -> Result<Arc<dyn Provider>> {
    // The reconciler retries the provider's calls; the client does not retry them again.
    let client = kube_provider::client_from_environment(ClientRetries::Off).await?;
    let mut settings = kube_provider::Settings::from_config(&config.kubernetes);
    settings.events &= !dry_run;
    Ok(Arc::new(
        KubeProvider::start(client, config, clock, settings).await?,
    ))
}

/// The elector of the Lease `curfew` in `namespace`, competing as `identity`.
pub(super) async fn elector(namespace: &str, identity: &str) -> Result<LeaderElector> {
    let client = kube_provider::client_from_environment(ClientRetries::On).await?;
    Ok(LeaderElector::new(
        client,
        LeaseSettings::new(namespace, identity),
    ))
}
