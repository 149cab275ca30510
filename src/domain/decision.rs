//! Decisions: what an environment should be at an instant, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::calendar::{State, format};

/// An environment's desired state at an instant, overrides included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentDecision {
    /// The environment.
    pub environment: String,
    /// The desired state.
    pub state: State,
    /// Why, in words.
    pub reason: String,
    /// The next instant at which the desired state changes, if known.
    #[serde(serialize_with = "format::serialize_optional_utc_seconds")]
    pub next_change: Option<DateTime<Utc>>,
    /// The id of the override that decides it, if one does.
    pub override_id: Option<String>,
    /// When the environment's last request was, if it is down because it has been idle since.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "format::serialize_optional_utc_seconds"
    )]
    pub idle_since: Option<DateTime<Utc>>,
}
