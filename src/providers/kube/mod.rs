//! The Kubernetes provider: Deployments, StatefulSets and CronJobs selected by namespace and
//! labels, observed through watches, scaled with merge patches that carry the original.
//!
//! Start-up lists each kind once and then only watches (reflector stores), so `discover`
//! costs no API call and a converged cluster costs no write. Scaling down writes
//! `curfew.dev/original-replicas` in the same merge patch that sets the replicas (or
//! suspends a CronJob); scaling up restores it and removes it. A `downscaler/original-replicas`
//! annotation left by kube-downscaler is read as the original when curfew's own is absent,
//! and removed by curfew's next write. Writes carry the watched resourceVersion, so a 409
//! means "re-read and decide again". Every write is paced by a client-side token bucket, and
//! every action leaves an Event on the workload.
//!
//! * `selection` — which namespaces and workloads an environment selects.
//! * `annotations` — the annotations read and written, and their precedence.
//! * `calendars` — per-object calendars from schedule and force annotations.
//! * `autoscalers` — HPAs and KEDA ScaledObjects in front of workloads.
//! * `quantity` — CPU and memory quantities.
//! * `projection` — the fields of a workload the watch caches keep.
//! * `workloads` — objects as targets, actions as merge patches.
//! * `limiter` — the write token bucket.
//! * `events` — `ScaledDown`, `ScaledUp` and `ScaleFailed` Events.
//! * `provider` — [`KubeProvider`].

pub mod annotations;
pub mod autoscalers;
pub mod calendars;
pub mod events;
pub mod limiter;
pub mod projection;
pub mod provider;
pub mod quantity;
pub mod selection;
pub mod workloads;

pub use self::provider::{KubeProvider, Settings};

/// Why the Kubernetes provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No client could be built from the environment (`KUBECONFIG`, in-cluster).
    #[error("kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// A selector in the configuration does not parse.
    #[error("{0}")]
    Selector(#[from] crate::config::selector::Error),
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
            Error::Client(_) => "client",
            Error::Selector(_) => "selector",
            Error::Sync { .. } => "sync",
        }
    }
}

/// Builds a client from the standard environment (`KUBECONFIG`, `~/.kube/config`, or the
/// in-cluster service account).
pub async fn client_from_environment() -> Result<kube::Client, Error> {
    kube::Client::try_default().await.map_err(Error::Client)
}
