//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several curfew replicas
//! exactly one acts. The holder renews the Lease; another replica takes it over once it has
//! not been renewed for its duration. Every change carries the resourceVersion it was based
//! on, so two replicas racing for the Lease cannot both win.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

use crate::telemetry;

/// Why a Lease operation failed.
#[derive(Debug, thiserror::Error)]
#[error("lease {namespace}/{name}: {source}")]
pub struct Error {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        "lease"
    }
}

/// Where the Lease is and how it is held.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (unique per process).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub duration: Duration,
    /// How often the holder renews (and a follower retries).
    pub renew_every: Duration,
}

/// The Lease's name.
pub const LEASE_NAME: &str = "curfew";
/// How long the Lease holds without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews it (and a follower tries to take it).
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

impl LeaseSettings {
    /// The Lease [`LEASE_NAME`] in `namespace`, held for [`LEASE_DURATION`] and renewed every
    /// [`RENEW_EVERY`], by `identity`.
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaseSettings {
            namespace: namespace.to_string(),
            name: LEASE_NAME.to_string(),
            identity: identity.to_string(),
            duration: LEASE_DURATION,
            renew_every: RENEW_EVERY,
        }
    }
}

/// Acquires, renews and releases the Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

fn micro_time(at: DateTime<Utc>) -> Option<MicroTime> {
    let nanos = i32::try_from(at.timestamp_subsec_nanos()).ok()?;
    Timestamp::new(at.timestamp(), nanos).ok().map(MicroTime)
}

fn chrono_of(time: &MicroTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(
        time.0.as_second(),
        u32::try_from(time.0.subsec_nanosecond()).ok()?,
    )
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

// === impl LeaderElector ===

impl LeaderElector {
    /// An elector for the Lease in `settings`.
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    fn error(&self, source: kube::Error) -> Error {
        Error {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            source,
        }
    }

    fn spec(&self, now: DateTime<Utc>, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: i32::try_from(self.settings.duration.as_secs()).ok(),
            acquire_time: acquired.or_else(|| micro_time(now)),
            renew_time: micro_time(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt at `now` to acquire or renew the Lease; whether this replica holds it.
    /// Losing a race (409) is an answer (`false`), not an error.
    pub async fn try_acquire(&self, now: DateTime<Utc>) -> Result<bool, Error> {
        let name = &self.settings.name;
        let current = self.api.get_opt(name).await.map_err(|e| self.error(e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(error) if is_conflict(&error) => Ok(false),
                Err(error) => Err(self.error(error)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let mine = holder == Some(self.settings.identity.as_str());
        let duration = spec
            .lease_duration_seconds
            .map_or(self.settings.duration.as_secs() as i64, i64::from);
        let expired = spec
            .renew_time
            .as_ref()
            .and_then(chrono_of)
            .is_none_or(|renewed| now >= renewed + chrono::Duration::seconds(duration));
        if !mine && holder.is_some() && !expired {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine { spec.acquire_time } else { None };
        lease.spec = Some(self.spec(now, acquired, transitions));
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(self.error(error)),
        }
    }

    /// Gives the Lease up if this replica holds it, so a follower takes over at once.
    pub async fn release(&self) -> Result<(), Error> {
        let name = &self.settings.name;
        let Some(mut lease) = self.api.get_opt(name).await.map_err(|e| self.error(e))? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(error) if is_conflict(&error) => Ok(()),
            Err(error) => Err(self.error(error)),
        }
    }

    /// Waits until this replica holds the Lease (`true`) or `shutdown` is cancelled (`false`).
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        loop {
            match self.try_acquire(Utc::now()).await {
                Ok(true) => {
                    metrics::gauge!(telemetry::LEADER).set(1.0);
                    tracing::info!(identity = %self.settings.identity, "leading");
                    return true;
                }
                Ok(false) => metrics::gauge!(telemetry::LEADER).set(0.0),
                Err(error) => tracing::warn!(%error, "cannot acquire the lease"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.renew_every) => {}
                _ = shutdown.cancelled() => return false,
            }
        }
    }

    /// Renews the Lease until `shutdown` is cancelled, then releases it. If the Lease is lost
    /// (taken over, or not renewed within its duration) it cancels `lost`.
    pub async fn hold(&self, shutdown: CancellationToken, lost: CancellationToken) {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.renew_every) => {}
                _ = shutdown.cancelled() => break,
            }
            match self.try_acquire(Utc::now()).await {
                Ok(true) => renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!("the lease was taken over: stopping");
                    metrics::gauge!(telemetry::LEADER).set(0.0);
                    lost.cancel();
                    return;
                }
                Err(error) if renewed.elapsed() >= self.settings.duration => {
                    tracing::error!(%error, "cannot renew the lease within its duration: stopping");
                    metrics::gauge!(telemetry::LEADER).set(0.0);
                    lost.cancel();
                    return;
                }
                Err(error) => tracing::warn!(%error, "cannot renew the lease; retrying"),
            }
        }
        if let Err(error) = self.release().await {
            tracing::warn!(%error, "cannot release the lease");
        }
        metrics::gauge!(telemetry::LEADER).set(0.0);
    }
}
