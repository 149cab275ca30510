//! Bearer tokens: the tokens file, constant-time lookup, roles and environment scopes.
//!
//! The file holds only SHA-256 digests of tokens. A presented token is hashed and compared
//! with every entry in constant time, so neither the answer nor its timing tells how close a
//! guess was. Tokens are never logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// What can be wrong with a tokens file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid tokens file.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Result type of loading tokens.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a token may do; each role includes the ones before it.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    environments: Vec<String>,
    sha256: String,
}

/// Who is calling: the name, role and scope of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (recorded as the actor in the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Environments it may see and act on; `*` means all.
    pub environments: Vec<String>,
}

impl Caller {
    /// Whether `environment` is within this token's scope.
    pub fn in_scope(&self, environment: &str) -> bool {
        self.environments
            .iter()
            .any(|e| e == "*" || e == environment)
    }
}

/// The tokens the server accepts.
#[derive(Debug, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Arc<Caller>)>,
}

// === impl Tokens ===

impl Tokens {
    /// No tokens: every request that needs one gets 401.
    pub fn none() -> Self {
        Tokens::default()
    }

    /// Reads and checks the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Tokens::from_yaml(&text, path)
    }

    /// Parses tokens file `text`, read from `path`.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self> {
        let invalid = |detail: String| Error::Invalid {
            path: path.to_path_buf(),
            detail,
        };
        let file: TokensFile = serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut entries = Vec::with_capacity(file.tokens.len());
        for entry in file.tokens {
            if entry.name.trim().is_empty() {
                return Err(invalid("a token has an empty name".into()));
            }
            if entries
                .iter()
                .any(|(_, c): &([u8; 32], Arc<Caller>)| c.name == entry.name)
            {
                return Err(invalid(format!(
                    "token name '{}' is used twice",
                    entry.name
                )));
            }
            if entry.environments.is_empty() {
                return Err(invalid(format!(
                    "token '{}' has no environments (use [\"*\"] for all)",
                    entry.name
                )));
            }
            let digest = decode_digest(&entry.sha256).ok_or_else(|| {
                invalid(format!(
                    "token '{}': sha256 must be 64 hex digits (the SHA-256 of the token)",
                    entry.name
                ))
            })?;
            entries.push((
                digest,
                Arc::new(Caller {
                    name: entry.name,
                    role: entry.role,
                    environments: entry.environments,
                }),
            ));
        }
        Ok(Tokens { entries })
    }

    /// The caller whose token is `presented`, comparing against every entry in constant time.
    pub fn authenticate(&self, presented: &str) -> Option<Arc<Caller>> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (expected, caller) in &self.entries {
            let equal: bool = expected.ct_eq(&digest).into();
            if equal {
                found = Some(caller.clone());
            }
        }
        found
    }
}

/// The lowercase hex SHA-256 of `token`, as the tokens file wants it.
pub fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn decode_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(digest)
}

/// Checks a presented token and the caller's rate limit: 401 without a valid token, 429 over
/// the limit.
pub fn authorize(state: &AppState, presented: Option<&str>) -> Result<Arc<Caller>, ApiError> {
    let presented = presented
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    let caller = state
        .tokens
        .authenticate(presented)
        .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    if !state.limiter.allow(&caller.name) {
        return Err(ApiError::too_many_requests(format!(
            "token '{}' is over its rate limit; slow down",
            caller.name
        )));
    }
    Ok(caller)
}

/// An authenticated caller, taken from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Caller>);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            });
        authorize(state, presented).map(Authenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let yaml = format!(
            "tokens:\n  - {{ name: otto, role: operator, environments: [staging], sha256: {} }}\n  - {{ name: root, role: admin, environments: ['*'], sha256: {} }}\n",
            sha256_hex("otto-secret"),
            sha256_hex("root-secret")
        );
        Tokens::from_yaml(&yaml, Path::new("tokens.yaml")).unwrap()
    }

    #[test]
    fn a_presented_token_finds_its_entry_and_a_wrong_one_finds_none() {
        let tokens = tokens();
        let otto = tokens.authenticate("otto-secret").unwrap();
        assert_eq!((otto.name.as_str(), otto.role), ("otto", Role::Operator));
        assert!(otto.in_scope("staging") && !otto.in_scope("prod"));
        assert!(tokens.authenticate("root-secret").unwrap().in_scope("prod"));
        assert!(tokens.authenticate("otto-secreT").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn bad_digests_unknown_keys_and_duplicate_names_are_rejected() {
        let bad = [
            "tokens: [{ name: a, role: viewer, environments: ['*'], sha256: abc }]",
            "tokens: [{ name: a, role: boss, environments: ['*'], sha256: abc }]",
            "tokens: [{ name: a, role: viewer, environments: ['*'], sha: abc }]",
            "tokens: [{ name: a, role: viewer, environments: [], sha256: abc }]",
        ];
        for yaml in bad {
            assert!(
                Tokens::from_yaml(yaml, Path::new("t.yaml")).is_err(),
                "{yaml}"
            );
        }
        let digest = sha256_hex("x");
        let twice = format!(
            "tokens: [{{ name: a, role: viewer, environments: ['*'], sha256: {digest} }}, {{ name: a, role: admin, environments: ['*'], sha256: {digest} }}]"
        );
        let err = Tokens::from_yaml(&twice, Path::new("t.yaml")).unwrap_err();
        assert!(err.to_string().contains("used twice"), "{err}");
    }
}
