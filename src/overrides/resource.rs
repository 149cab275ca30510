//! The `Override` custom resource (`overrides.curfew.dev/v1`): one override as a namespaced
//! object, so that every replica shares them and `kubectl get overrides` lists them.
//!
//! The CustomResourceDefinition is generated from [`OverrideSpec`] ([`crd_yaml`]) and
//! committed as `deploy/kubernetes/base/crd.yaml`; a test fails when the two drift apart.

use chrono::{DateTime, Utc};
use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::State;
use crate::domain::Override;

/// The state an override forces, as the schema describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForcedState {
    /// Running at its original capacity.
    Up,
    /// Scaled down.
    Down,
}

/// An override of an environment's schedule; the object's name is the override's id.
// Each `printcolumn(...)` repeats the same keys, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "curfew.dev",
    version = "v1",
    kind = "Override",
    root = "OverrideResource",
    plural = "overrides",
    shortname = "ovr",
    namespaced,
    printcolumn(
        name = "Environment",
        type_ = "string",
        json_path = ".spec.environment"
    ),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(name = "Until", type_ = "date", json_path = ".spec.until"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".spec.reason"),
    printcolumn(name = "Created-By", type_ = "string", json_path = ".spec.createdBy"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct OverrideSpec {
    /// The environment it applies to.
    pub environment: String,
    /// The state it forces: `up` or `down`.
    pub state: ForcedState,
    /// When it was created (RFC 3339); it applies from then on.
    #[schemars(with = "String")]
    pub created_at: DateTime<Utc>,
    /// When it ends (RFC 3339); the calendar decides again from this instant.
    #[schemars(with = "String")]
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who created it (a token name, or `curfew`).
    pub created_by: String,
}

// === impl OverrideSpec ===

impl From<&Override> for OverrideSpec {
    fn from(item: &Override) -> Self {
        OverrideSpec {
            environment: item.environment.clone(),
            state: match item.state {
                State::Up => ForcedState::Up,
                State::Down => ForcedState::Down,
            },
            created_at: item.created_at,
            until: item.until,
            reason: item.reason.clone(),
            created_by: item.created_by.clone(),
        }
    }
}

impl OverrideSpec {
    /// The override with id `id` this spec describes.
    pub fn to_override(&self, id: &str) -> Override {
        Override {
            id: id.to_string(),
            environment: self.environment.clone(),
            state: match self.state {
                ForcedState::Up => State::Up,
                ForcedState::Down => State::Down,
            },
            created_at: self.created_at,
            until: self.until,
            reason: self.reason.clone(),
            created_by: self.created_by.clone(),
        }
    }
}

/// The CustomResourceDefinition of `overrides.curfew.dev` as YAML, with a header comment.
pub fn crd_yaml() -> String {
    let body = serde_saphyr::to_string(&OverrideResource::crd()).unwrap_or_default();
    format!(
        "# Generated from src/overrides/resource.rs; regenerate with \
         `CURFEW_BLESS=1 cargo test --test integration crd::`.\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_survives_the_trip_through_its_resource() {
        let at = DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap();
        let item = Override {
            id: "0123456789ab".into(),
            environment: "staging".into(),
            state: State::Down,
            created_at: at,
            until: at + chrono::Duration::hours(3),
            reason: "release rehearsal".into(),
            created_by: "otto".into(),
        };
        let json = serde_json::to_value(OverrideSpec::from(&item)).unwrap();
        assert_eq!(json["state"], "down");
        assert_eq!(json["createdBy"], "otto");
        let back: OverrideSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_override("0123456789ab"), item);
    }

    #[test]
    fn the_definition_prints_environment_state_until_reason_and_creator() {
        let crd = serde_json::to_value(OverrideResource::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "overrides.curfew.dev");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            columns,
            [
                "Environment",
                "State",
                "Until",
                "Reason",
                "Created-By",
                "Age"
            ]
        );
    }
}
