//! What stands in for a provider this build leaves out (`--no-default-features`): its
//! configuration is refused by `check` already, so reaching it here is an error that says
//! which feature to build with.

/// Stands in for the Kubernetes parts.
#[cfg(not(feature = "kubernetes"))]
pub mod kubernetes {
    use std::sync::Arc;

    use tokio::sync::Notify;
    use tokio_util::sync::CancellationToken;

    use crate::clock::Clock;
    use crate::config::Config;
    use crate::domain::Override;
    use crate::overrides::OverrideStore;
    use crate::providers::Provider;
    use crate::service::{Error, Result};
    use crate::state::DocumentStore;

    /// No Lease can be held without Kubernetes: no elector exists, so this replica acts.
    #[derive(Debug)]
    pub enum LeaderElector {}

    impl LeaderElector {
        /// Never called: no elector exists.
        pub async fn acquire(&self, _shutdown: &CancellationToken) -> bool {
            match *self {}
        }

        /// Never called: no elector exists.
        pub async fn hold(&self, _shutdown: CancellationToken, _lost: CancellationToken) {
            match *self {}
        }
    }

    /// Refuses `state: { kubernetes }`.
    pub(in crate::service) async fn state(
        _namespace: &str,
        _trigger: &Arc<Notify>,
    ) -> Result<(Arc<dyn DocumentStore>, Arc<dyn OverrideStore>)> {
        Err(Error::LeftOut("kubernetes"))
    }

    /// Refuses to read `Override` resources.
    pub(in crate::service) async fn stored_overrides(_namespace: &str) -> Result<Vec<Override>> {
        Err(Error::LeftOut("kubernetes"))
    }

    /// Refuses Kubernetes targets.
    pub(in crate::service) async fn provider(
        _config: &Config,
        _clock: Arc<dyn Clock>,
        _dry_run: bool,
    ) -> Result<Arc<dyn Provider>> {
        Err(Error::LeftOut("kubernetes"))
    }

    /// Refuses to elect over a Lease.
    pub(in crate::service) async fn elector(
        _namespace: &str,
        _identity: &str,
    ) -> Result<LeaderElector> {
        Err(Error::LeftOut("kubernetes"))
    }
}

/// Stands in for the AWS provider.
#[cfg(not(feature = "aws"))]
pub mod aws {
    use std::sync::Arc;

    use crate::clock::Clock;
    use crate::config::{Config, TargetConfig};
    use crate::providers::Provider;
    use crate::service::{Error, Result};

    /// None without AWS targets; AWS targets are refused.
    pub(in crate::service) async fn provider(
        config: &Config,
        _clock: Arc<dyn Clock>,
    ) -> Result<Option<Arc<dyn Provider>>> {
        let has_aws = config
            .environments
            .values()
            .flat_map(|env| &env.targets)
            .any(|target| !matches!(target, TargetConfig::Kubernetes(_)));
        if has_aws {
            Err(Error::LeftOut("aws"))
        } else {
            Ok(None)
        }
    }
}
