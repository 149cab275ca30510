//! Overrides: people beating the calendar, within policy, until a deadline.
//!
//! An override forces an environment `up` or `down` from its creation until its `until`; then
//! the calendar decides again. The newest active override of an environment wins, so a new
//! override extends (or shortens) the one before it. Overrides live in an [`OverrideStore`].

use async_trait::async_trait;

use crate::domain::Override;

pub mod conformance;
mod dry_run;
pub mod expiry;
mod file_store;
#[cfg(feature = "kubernetes")]
mod kube_store;
#[cfg(feature = "kubernetes")]
pub mod resource;
mod until;

pub use self::dry_run::DryRunOverrides;
pub use self::expiry::expire;
pub use self::file_store::FileOverrideStore;
#[cfg(feature = "kubernetes")]
pub use self::kube_store::KubeOverrideStore;
pub use self::until::resolve_until;

/// What can go wrong storing overrides.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backing store failed.
    #[error("override store: {0}")]
    Store(#[from] crate::state::Error),
    /// The Kubernetes API refused or failed a request on an `Override` resource.
    #[cfg(feature = "kubernetes")]
    #[error("override store: {operation} overrides.curfew.dev in {namespace}: {source}")]
    Kubernetes {
        /// What was attempted: `list`, `create`, `replace` or `delete`.
        operation: &'static str,
        /// The namespace of the resources.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A write kept meeting newer versions of the same override.
    #[error("override store: override {id} in {namespace} kept changing while being written")]
    Conflict {
        /// The override's id.
        id: String,
        /// The namespace of the resources.
        namespace: String,
    },
    /// The initial list of `Override` resources did not arrive in time.
    #[error(
        "override store: the overrides in {namespace} were not listed within {seconds}s; \
         check that the Override CRD is installed and curfew may list and watch it"
    )]
    Sync {
        /// The namespace of the resources.
        namespace: String,
        /// The time allowed.
        seconds: u64,
    },
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Store(_) => "state",
            #[cfg(feature = "kubernetes")]
            Error::Kubernetes { .. } => "kubernetes",
            Error::Conflict { .. } => "conflict",
            Error::Sync { .. } => "sync",
        }
    }
}

/// Result type of override operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where overrides are kept: a file ([`FileOverrideStore`]) or `Override` resources in a
/// cluster ([`KubeOverrideStore`]), shared by every replica.
#[async_trait]
pub trait OverrideStore: Send + Sync {
    /// Every stored override, expired ones included until they are pruned.
    async fn list(&self) -> Result<Vec<Override>>;

    /// Stores a new override or replaces the one with the same id.
    async fn put(&self, item: Override) -> Result<()>;

    /// Removes the override with `id`, returning it if it existed.
    async fn remove(&self, id: &str) -> Result<Option<Override>>;

    /// Removes the overrides with `ids`, returning those that existed. A store that can
    /// remove many in one write does so.
    async fn remove_all(&self, ids: &[String]) -> Result<Vec<Override>> {
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids {
            removed.extend(self.remove(id).await?);
        }
        Ok(removed)
    }
}
