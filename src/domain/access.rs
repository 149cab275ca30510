//! [`Role`]: what a caller may do, whether a token or a person named by a trusted proxy.

use serde::{Deserialize, Serialize};

/// What a caller may do; each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read overrides, the audit log and plans.
    Viewer,
    /// Also create overrides within the environment's `max_duration` and cancel their own.
    Operator,
    /// Also exceed `max_duration` and cancel anyone's overrides.
    Admin,
}

impl Role {
    /// Every role's name, as written in files.
    pub const NAMES: [&'static str; 3] = ["viewer", "operator", "admin"];

    /// The role called `name` (`viewer`, `operator` or `admin`).
    pub fn named(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_name_parses_to_the_role_serde_writes() {
        for name in Role::NAMES {
            let role = Role::named(name).unwrap();
            assert_eq!(serde_json::to_value(role).unwrap(), name);
        }
        assert_eq!(Role::named("boss"), None);
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
