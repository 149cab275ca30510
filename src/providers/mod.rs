//! Providers: the only code that talks to the outside world.
//!
//! A provider discovers the targets it manages with their observed state, applies one scale
//! action at a time, and reports whether a target has reached the capacity it was given. The
//! reconciler drives every provider through the same [`Provider`] trait: [`sim`] (the embedded
//! simulated estate) today, Kubernetes and AWS later.

use async_trait::async_trait;

use crate::domain::{Action, Target};

#[cfg(feature = "aws")]
pub mod aws;
pub mod composite;
mod hints;
#[cfg(feature = "kubernetes")]
pub mod kube;
pub mod sim;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The API asked us to slow down (429, throttling).
    #[error("{operation} on {target}: throttled: {detail}")]
    Throttled {
        /// The call that failed.
        operation: String,
        /// The target it was for.
        target: String,
        /// What the API said.
        detail: String,
        /// How long the API asked the caller to wait before trying again (`Retry-After`).
        retry_after: Option<std::time::Duration>,
    },
    /// The API failed on its side (5xx).
    #[error("{operation} on {target}: server error {code}: {detail}")]
    Server {
        /// The call that failed.
        operation: String,
        /// The target it was for.
        target: String,
        /// The error code (HTTP status or AWS error code).
        code: String,
        /// What the API said.
        detail: String,
    },
    /// The call did not answer in time.
    #[error("{operation} on {target}: timed out")]
    Timeout {
        /// The call that failed.
        operation: String,
        /// The target it was for.
        target: String,
    },
    /// The object changed under us (409); re-read and re-decide.
    #[error("{operation} on {target}: conflict: {detail}")]
    Conflict {
        /// The call that failed.
        operation: String,
        /// The target it was for.
        target: String,
        /// What the API said.
        detail: String,
    },
    /// The target does not exist (any more).
    #[error("{operation}: target {target} not found")]
    NotFound {
        /// The call that failed.
        operation: String,
        /// The target it was for.
        target: String,
    },
    /// A failure that retrying will not fix (permissions, validation).
    #[error("{operation} on {target}: {code}: {detail}")]
    Permanent {
        /// The call that failed.
        operation: String,
        /// The target it was for.
        target: String,
        /// The error code.
        code: String,
        /// What the API said.
        detail: String,
    },
}

/// How much of an error's own text [`Error::with_hint`] keeps when it adds a hint.
pub const HINTED_ERROR_CHARS: usize = 120;

impl Error {
    /// Whether retrying the same call may succeed: throttling, server errors and timeouts.
    ///
    /// This is the one place that decides it. A conflict is not retried: the object changed
    /// since it was observed, so the same write would fail again; the pass asks for an early
    /// re-read instead ([`Error::is_conflict`]) and the next pass decides afresh.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Throttled { .. } | Error::Server { .. } | Error::Timeout { .. }
        )
    }

    /// How long the API asked the caller to wait before calling again, when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the object changed under the call (409): re-read, then decide again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// A short label for metrics: `throttled`, `server`, `timeout`, `conflict`, `not_found`,
    /// `permanent`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Throttled { .. } => "throttled",
            Error::Server { .. } => "server",
            Error::Timeout { .. } => "timeout",
            Error::Conflict { .. } => "conflict",
            Error::NotFound { .. } => "not_found",
            Error::Permanent { .. } => "permanent",
        }
    }

    /// The error code the service gave (AWS error code, HTTP status), or the kind of failure
    /// when there is none (`throttled`, `timeout`, `conflict`, `not_found`).
    pub fn code(&self) -> &str {
        match self {
            Error::Server { code, .. } | Error::Permanent { code, .. } => code,
            other => other.metric_label(),
        }
    }

    /// What to do about it, for the common causes: missing credentials, a missing IAM action
    /// or RBAC verb, an endpoint that cannot be reached, throttling.
    pub fn hint(&self) -> Option<String> {
        hints::hint(self)
    }

    /// The error and its hint on one line: `OPERATION on TARGET: CODE: DETAIL; hint: ...`.
    ///
    /// With a hint, the error's own text is cut to [`HINTED_ERROR_CHARS`] characters: the
    /// hint says what to do, the line stays readable, and the log keeps the whole text.
    pub fn with_hint(&self) -> String {
        match self.hint() {
            Some(hint) => {
                let text = self.to_string();
                let cut = match text.char_indices().nth(HINTED_ERROR_CHARS) {
                    Some((at, _)) => format!("{}…", &text[..at]),
                    None => text,
                };
                format!("{cut}; hint: {hint}")
            }
            None => self.to_string(),
        }
    }

    /// The call that failed.
    pub fn operation(&self) -> &str {
        match self {
            Error::Throttled { operation, .. }
            | Error::Server { operation, .. }
            | Error::Timeout { operation, .. }
            | Error::Conflict { operation, .. }
            | Error::NotFound { operation, .. }
            | Error::Permanent { operation, .. } => operation,
        }
    }
}

/// A target selection that a discovery could not read: its targets were not seen, so
/// nothing is known about them in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undiscovered {
    /// The environment whose targets it selects.
    pub environment: String,
    /// The selection as the configuration writes it, e.g. `aws_ec2 {env=staging} in
    /// eu-central-1`.
    pub selection: String,
    /// Why it could not be read; its operation names the call.
    pub error: Error,
}

/// What one discovery saw: the targets it read, and the selections it could not read.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every target of the selections that were read.
    pub targets: Vec<Target>,
    /// The selections that could not be read.
    pub undiscovered: Vec<Undiscovered>,
}

impl Discovery {
    /// A discovery that read every selection.
    pub fn complete(targets: Vec<Target>) -> Discovery {
        Discovery {
            targets,
            undiscovered: Vec::new(),
        }
    }
}

/// One write a provider would send for an action, described without sending it: what a dry
/// run shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedWrite {
    /// The call: `PATCH apps/v1 Deployment shop/web (merge patch)`, or an AWS operation such
    /// as `UpdateAutoScalingGroup`.
    pub call: String,
    /// Its body: the merge patch, or the operation's parameters.
    pub body: serde_json::Value,
}

/// Result type of provider calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which layer retries a provider's failed calls: every call path has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// The reconciler retries transient failures ([`Error::is_retryable`]) with jittered
    /// backoff: Kubernetes (whose client does not retry for the provider) and the simulated
    /// estate.
    ByCaller,
    /// The provider's own client has retried them already: AWS, whose SDK retries in its
    /// adaptive mode. A failure that reaches the caller is final for this pass.
    ByClient,
}

/// The seam between curfew and the things it scales.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name for logs and metrics (`sim`, `kube`, `aws`).
    fn name(&self) -> &'static str;

    /// Which layer retries failed calls about `target` (`None`: discovery). The default: the
    /// caller.
    fn retries(&self, _target: Option<&str>) -> Retries {
        Retries::ByCaller
    }

    /// Every managed target with its observed state, and the target selections that could
    /// not be read (a selection is never dropped silently). An error means nothing could be
    /// read at all.
    async fn discover(&self) -> Result<Discovery>;

    /// Applies one action. Idempotent: applying an action that already holds is a no-op.
    async fn apply(&self, action: &Action) -> Result<()>;

    /// Whether the target has reached the capacity it was last given.
    async fn ready(&self, target: &str) -> Result<bool>;

    /// The writes [`Provider::apply`] would send for `action` as things were last
    /// discovered, in order, without sending anything. The default describes none.
    fn preview(&self, _action: &Action) -> Vec<PlannedWrite> {
        Vec::new()
    }

    /// Whether each of `targets` has reached the capacity it was last given, in the order
    /// given. A target whose readiness cannot be read counts as not ready (the reconciler
    /// asks again at its next poll). The default asks [`Provider::ready`] once per target;
    /// providers that can describe many objects in one call override it.
    async fn ready_many(&self, targets: &[String]) -> Vec<bool> {
        let mut ready = Vec::with_capacity(targets.len());
        for target in targets {
            ready.push(self.ready(target).await.unwrap_or(false));
        }
        ready
    }

    /// Finishes the best-effort work the provider does in the background (Kubernetes
    /// Events), waiting at most `timeout`; what is left then is dropped. The default has
    /// nothing to finish.
    async fn settle(&self, _timeout: std::time::Duration) {}

    /// Current spot prices by (region, instance type), where the provider can see them.
    async fn spot_prices(&self) -> Result<std::collections::HashMap<(String, String), f64>> {
        Ok(std::collections::HashMap::new())
    }
}
