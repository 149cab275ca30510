//! Overrides: people beating the calendar, within policy, until a deadline.
//!
//! An override forces an environment `up` or `down` from its creation until its `until`; then
//! the calendar decides again. The newest active override of an environment wins, so a new
//! override extends (or shortens) the one before it. Overrides live in an [`OverrideStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::State;
use crate::calendar::format;

pub mod conformance;
mod dry_run;
pub mod expiry;
mod file_store;
mod kube_store;
pub mod resource;
mod until;

pub use self::dry_run::DryRunOverrides;
pub use self::expiry::expire;
pub use self::file_store::FileOverrideStore;
pub use self::kube_store::KubeOverrideStore;
pub use self::until::resolve_until;

/// What can go wrong storing overrides.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backing store failed.
    #[error("override store: {0}")]
    Store(#[from] crate::state::Error),
    /// The Kubernetes API refused or failed a request on an `Override` resource.
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
            Error::Kubernetes { .. } => "kubernetes",
            Error::Conflict { .. } => "conflict",
            Error::Sync { .. } => "sync",
        }
    }
}

/// Result type of override operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Override {
    /// Unique id.
    pub id: String,
    /// The environment it applies to.
    pub environment: String,
    /// The state it forces.
    pub state: State,
    /// When it was created (it applies from then on).
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    pub created_at: DateTime<Utc>,
    /// When it ends; the calendar decides again from this instant.
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who created it (a token name, or `curfew` for implicit ones).
    pub created_by: String,
}

impl Override {
    /// Whether it applies at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.created_at <= now && now < self.until
    }
}

/// The override that applies to `environment` at `now`: the newest active one.
pub fn active<'a>(
    overrides: &'a [Override],
    environment: &str,
    now: DateTime<Utc>,
) -> Option<&'a Override> {
    overrides
        .iter()
        .filter(|o| o.environment == environment && o.is_active(now))
        .max_by_key(|o| (o.created_at, o.id.as_str()))
}

/// How audit entries name an override: `override/<id>` in their `target`.
pub fn audit_target(id: &str) -> String {
    format!("override/{id}")
}

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn mk_override(id: &str, env: &str, state: State, created: i64, until: i64) -> Override {
        let base = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Override {
            id: id.into(),
            environment: env.into(),
            state,
            created_at: base + Duration::minutes(created),
            until: base + Duration::minutes(until),
            reason: "test".into(),
            created_by: "otto".into(),
        }
    }

    #[test]
    fn newest_active_override_wins_and_expired_ones_do_not_count() {
        let base = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let overrides = vec![
            mk_override("a", "staging", State::Up, 0, 60),
            mk_override("b", "staging", State::Down, 10, 30),
            mk_override("c", "other", State::Up, 0, 600),
        ];
        let at = |minutes| base + Duration::minutes(minutes);
        assert_eq!(active(&overrides, "staging", at(5)).unwrap().id, "a");
        assert_eq!(active(&overrides, "staging", at(20)).unwrap().id, "b");
        assert_eq!(active(&overrides, "staging", at(40)).unwrap().id, "a");
        assert!(active(&overrides, "staging", at(60)).is_none());
    }
}
