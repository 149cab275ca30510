//! The Kubernetes provider: Deployments, StatefulSets and CronJobs selected by namespace and
//! labels, observed through watches, scaled with merge patches that carry the original.
//!
//! Start-up lists each kind once and then only watches (watch caches), so `discover`
//! costs no API call and a converged cluster costs no write. Scaling down writes
//! `curfew.dev/original-replicas` in the same merge patch that sets the replicas (or
//! suspends a CronJob); scaling up restores it and removes it. A `downscaler/original-replicas`
//! annotation left by kube-downscaler is read as the original when curfew's own is absent,
//! and removed by curfew's next write. Writes carry the watched resourceVersion, so a 409
//! means "re-read and decide again". A bounded number of writes is in flight at once (a
//! client-side token bucket is optional), and every action leaves an Event on the workload
//! through a queue of its own, so that a write never waits for an Event.
//!
//! * `selection` — which namespaces and workloads an environment selects.
//! * `annotations` — the annotations read and written, and their precedence.
//! * `calendars` — per-object calendars from schedule and force annotations.
//! * `autoscalers` — HPAs and KEDA ScaledObjects in front of workloads.
//! * `quantity` — CPU and memory quantities.
//! * `projection` — the fields of a workload the watch caches keep.
//! * `watch_cache` — the objects of a watched kind, by namespace and name.
//! * `workloads` — objects as targets, actions as merge patches.
//! * `limiter` — the optional client-side token bucket for writes.
//! * `retry_after` — keeps the API server's `Retry-After` for the retry layer.
//! * `event_queue` — Events written apart from scale writes, coalesced, at their own rate.
//! * `events` — `ScaledDown`, `ScaledUp` and `ScaleFailed` Events.
//! * `provider` — [`KubeProvider`].

pub mod annotations;
pub mod autoscalers;
pub mod calendars;
pub mod event_queue;
pub mod events;
pub mod limiter;
pub mod projection;
pub mod provider;
pub mod quantity;
pub mod retry_after;
pub mod selection;
pub mod watch_cache;
pub mod workloads;

pub use self::provider::{KubeProvider, Settings};

/// Why the Kubernetes provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No client could be built from the environment (`KUBECONFIG`, in-cluster).
    #[error("kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// No configuration was found: no kubeconfig, and not in a pod; why the kubeconfig
    /// could not be read.
    #[error(
        "no Kubernetes configuration: {0}; hint: set KUBECONFIG to a kubeconfig file, put one at ~/.kube/config, or run curfew in a pod with a service account"
    )]
    NoConfig(String),
    /// A watch did not list its objects in time (often missing RBAC for list and watch).
    #[error(
        "the initial list of {resource} did not complete within {seconds}s; check that curfew may list and watch {resource}"
    )]
    Sync {
        /// The resource.
        resource: &'static str,
        /// The time allowed.
        seconds: u64,
    },
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Client(_) | Error::NoConfig(_) => "client",
            Error::Sync { .. } => "sync",
        }
    }
}

/// Whether a Kubernetes client retries 429, 503 and 504 itself (honouring `Retry-After`), so
/// that every call path has exactly one retry layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRetries {
    /// The client retries: for callers that do not (the state stores, the Lease).
    On,
    /// The client does not: the provider's calls are retried by the reconciler alone.
    Off,
}

/// A client for `config`, retrying as `retries` says. A client that does not retry keeps
/// the API server's `Retry-After` in its errors for the caller that does.
pub fn client(mut config: kube::Config, retries: ClientRetries) -> Result<kube::Client, Error> {
    config.default_retry = retries == ClientRetries::On;
    let builder = kube::client::ClientBuilder::try_from(config).map_err(Error::Client)?;
    Ok(match retries {
        ClientRetries::On => builder.build(),
        ClientRetries::Off => builder
            .with_layer(&tower::util::MapFutureLayer::new(retry_after::carry))
            .build(),
    })
}

/// Builds a client from the standard environment (`KUBECONFIG`, `~/.kube/config`, or the
/// in-cluster service account), retrying as `retries` says.
pub async fn client_from_environment(retries: ClientRetries) -> Result<kube::Client, Error> {
    let config = kube::Config::infer().await.map_err(|error| {
        // The kubeconfig's problem; the in-cluster one only says this is not a pod.
        let cause = std::error::Error::source(&error)
            .map_or_else(|| error.to_string(), ToString::to_string);
        Error::NoConfig(crate::text::escape(&cause).into_owned())
    })?;
    client(config, retries)
}
