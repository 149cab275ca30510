//! Actions: one change to one target.

use serde::{Deserialize, Serialize};

use super::Capacity;

/// One change to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Store `original` on the target and set `to`, in the same write.
    ScaleDown {
        /// The target's id.
        target: String,
        /// The capacity to remember.
        original: Capacity,
        /// The capacity while down.
        to: Capacity,
    },
    /// Restore `to` and remove the stored original, in the same write.
    ScaleUp {
        /// The target's id.
        target: String,
        /// The capacity to restore.
        to: Capacity,
    },
}

impl Action {
    /// The id of the target it changes.
    pub fn target(&self) -> &str {
        match self {
            Action::ScaleDown { target, .. } | Action::ScaleUp { target, .. } => target,
        }
    }

    /// `up` or `down`.
    pub fn direction(&self) -> &'static str {
        match self {
            Action::ScaleDown { .. } => "down",
            Action::ScaleUp { .. } => "up",
        }
    }
}
