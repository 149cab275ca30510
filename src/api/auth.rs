//! Bearer tokens: the tokens file, constant-time lookup, roles and environment scopes; and the
//! extractors that take the caller from a token or from a trusted proxy's headers ([`sso`]).
//!
//! The file holds only SHA-256 digests of tokens. A presented token is hashed and compared
//! with every entry in constant time, so neither the answer nor its timing tells how close a
//! guess was. Tokens are never logged.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::rate_limit::client_key;
use super::sso::{self, ProxyIdentity};
use super::{ApiError, AppState};
use crate::config::{Config, Diagnostic, closest, render_all, syntax_message};
pub use crate::domain::Role;

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
    /// The file was read but is not a valid tokens file; every problem is listed with its
    /// place in the file and a hint.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

/// Result type of loading tokens.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<Spanned<TokenEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: Spanned<String>,
    role: Role,
    environments: Vec<Spanned<String>>,
    sha256: Spanned<String>,
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

    /// Reads and checks the tokens file at `path` for the environments of `config`. Besides
    /// the entries, the file itself must be readable by curfew alone (see [`exposure`]).
    pub fn load(path: &Path, config: &Config) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let exposed = exposure(path).map(|(message, hint)| diagnostic(path, None, message, hint));
        match (Tokens::from_yaml(&text, path, config), exposed) {
            (Ok(tokens), None) => Ok(tokens),
            (Ok(_), Some(exposed)) => Err(Error::Invalid(vec![exposed])),
            (Err(Error::Invalid(mut problems)), Some(exposed)) => {
                problems.insert(0, exposed);
                Err(Error::Invalid(problems))
            }
            (Err(err), _) => Err(err),
        }
    }

    /// Parses tokens file `text`, read from `path`, for the environments of `config`. Every
    /// problem is reported with its line and column: a syntax error or unknown key, an empty
    /// name, a name or digest used twice, an empty scope or an environment `config` does not
    /// define, a digest that is not 64 hex digits.
    pub fn from_yaml(text: &str, path: &Path, config: &Config) -> Result<Self> {
        let file: TokensFile = serde_saphyr::from_str(text).map_err(|err| {
            Error::Invalid(vec![diagnostic(
                path,
                err.location(),
                syntax_message(&err),
                Some("see the tokens file format in the README".to_string()),
            )])
        })?;
        let mut problems = Vec::new();
        let mut entries: Vec<([u8; 32], Arc<Caller>, Location)> = Vec::new();
        for Spanned { value: entry, .. } in file.tokens {
            let name = entry.name.value.trim();
            let at = entry.name.referenced;
            if name.is_empty() {
                problems.push(diagnostic(
                    path,
                    Some(at),
                    "a token has an empty name",
                    None,
                ));
            } else if let Some(first) = entries.iter().find(|(_, c, _)| c.name == name) {
                problems.push(diagnostic(
                    path,
                    Some(at),
                    format!("token name '{name}' is used twice"),
                    Some(format!(
                        "the first is on line {}; names identify actors in the audit log",
                        first.2.line()
                    )),
                ));
            }
            problems.extend(scope_problems(path, name, at, &entry.environments, config));
            let sha256 = &entry.sha256;
            let Some(digest) = decode_digest(&sha256.value) else {
                problems.push(diagnostic(
                    path,
                    Some(sha256.referenced),
                    format!("token '{name}': sha256 must be 64 hex digits"),
                    Some("printf %s \"$token\" | sha256sum".to_string()),
                ));
                continue;
            };
            if let Some((_, first, first_at)) = entries.iter().find(|(d, _, _)| *d == digest) {
                problems.push(diagnostic(
                    path,
                    Some(sha256.referenced),
                    format!(
                        "token '{name}' has the same sha256 as token '{}' on line {}: one \
                         secret would act as both",
                        first.name,
                        first_at.line()
                    ),
                    Some("give every token its own secret: openssl rand -hex 24".to_string()),
                ));
                continue;
            }
            entries.push((
                digest,
                Arc::new(Caller {
                    name: name.to_string(),
                    role: entry.role,
                    environments: entry.environments.into_iter().map(|e| e.value).collect(),
                }),
                at,
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        Ok(Tokens {
            entries: entries
                .into_iter()
                .map(|(digest, caller, _)| (digest, caller))
                .collect(),
        })
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

/// What is wrong with the scope of token `name` (written at `at`): none at all, or
/// environments `config` does not define (`*` means all).
fn scope_problems(
    path: &Path,
    name: &str,
    at: Location,
    scope: &[Spanned<String>],
    config: &Config,
) -> Vec<Diagnostic> {
    if scope.is_empty() {
        return vec![diagnostic(
            path,
            Some(at),
            format!("token '{name}' has no environments"),
            Some("list the environments it may act on, or [\"*\"] for all".to_string()),
        )];
    }
    let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
    scope
        .iter()
        .filter(|e| e.value != "*" && !known.contains(&e.value.as_str()))
        .map(|e| {
            let hint = match closest(&e.value, known.iter().copied()) {
                Some(close) => format!("did you mean '{close}'?"),
                None => format!("the configuration defines: {}", known.join(", ")),
            };
            diagnostic(
                path,
                Some(e.referenced),
                format!(
                    "token '{name}' names environment '{}', which the configuration does not define",
                    crate::text::escape(&e.value)
                ),
                Some(hint),
            )
        })
        .collect()
}

/// Why the tokens file at `path` is open to more than curfew, with a hint, if it is: writable
/// by anyone but its owner, readable by every user, or readable by its group while curfew
/// owns it. (A file another user owns may be readable by a group curfew belongs to, as a
/// Kubernetes Secret mounted with `fsGroup` is.)
pub fn exposure(path: &Path) -> Option<(String, Option<String>)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    let us = std::fs::metadata("/proc/self").ok().map(|m| m.uid());
    let problem = too_open(metadata.mode() & 0o777, metadata.uid(), us)?;
    Some((
        format!("the tokens file {problem}"),
        Some(format!(
            "chmod 600 {}: only the user curfew runs as may read it",
            path.display()
        )),
    ))
}

/// Why a file with permission bits `mode`, owned by `owner`, is open to more than the
/// process running as `us` (unknown: treated as the owner).
pub fn too_open(mode: u32, owner: u32, us: Option<u32>) -> Option<String> {
    let ours = us.is_none_or(|uid| uid == owner);
    if mode & 0o022 != 0 {
        Some(format!("is writable by other users (mode {mode:04o})"))
    } else if mode & 0o004 != 0 {
        Some(format!("is readable by every user (mode {mode:04o})"))
    } else if mode & 0o040 != 0 && ours {
        Some(format!("is readable by its group (mode {mode:04o})"))
    } else {
        None
    }
}

/// A problem in the tokens file at `path`, at `at` when known.
fn diagnostic(
    path: &Path,
    at: Option<Location>,
    message: impl Into<String>,
    hint: Option<String>,
) -> Diagnostic {
    let at = at.unwrap_or(Location::UNKNOWN);
    Diagnostic {
        file: path.to_path_buf(),
        line: at.line(),
        column: at.column(),
        message: message.into(),
        hint,
    }
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

/// Checks a presented token, sent from `client`: 401 without a valid token, 429 when the
/// client has failed too often lately (the token is then not even checked) or the token is
/// over its rate limit.
pub fn authorize(
    state: &AppState,
    presented: Option<&str>,
    client: Option<IpAddr>,
) -> Result<Arc<Caller>, ApiError> {
    let presented = presented
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    let client = client.map_or_else(|| "unknown".to_string(), client_key);
    state.failed_auth.check(&client).map_err(|wait| {
        ApiError::too_many_requests(
            "too many failed authentication attempts from this address; try again later",
            wait,
        )
    })?;
    let Some(caller) = state.tokens.authenticate(presented) else {
        // The failure counts; it is refused as 401 either way.
        let _ = state.failed_auth.take(&client);
        return Err(ApiError::unauthorized("unknown token"));
    };
    state.limiter.take(&caller.name).map_err(|wait| {
        ApiError::too_many_requests(
            format!("token '{}' is over its rate limit; slow down", caller.name),
            wait,
        )
    })?;
    Ok(caller)
}

/// The bearer token of a request, if it sent one.
fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
}

/// The address of the client that sent a request, when the listener recorded it.
pub fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The person a trusted proxy names on a request from `client` (see [`sso`]), rate limited
/// like a token: `None` when it names no one, 403 when no entry grants them a role.
pub fn proxy_caller(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Option<Arc<Caller>>, ApiError> {
    match sso::identify(state.config.server.auth.proxy.as_ref(), headers, client)? {
        ProxyIdentity::Absent => Ok(None),
        ProxyIdentity::Unmapped(person) => Err(ApiError::forbidden(format!(
            "{} is signed in but has no role in curfew: an admin can grant one under \
             server.auth.proxy",
            crate::text::escape(&person)
        ))),
        ProxyIdentity::Known(caller) => {
            state.limiter.take(&caller.name).map_err(|wait| {
                ApiError::too_many_requests(
                    format!("{} is over the rate limit; slow down", caller.name),
                    wait,
                )
            })?;
            Ok(Some(caller))
        }
    }
}

/// The caller of a request from `client` that carries `token` (empty when none) and
/// `headers`: the token's when one is given, else the person a trusted proxy names; 401
/// when neither.
pub fn token_or_proxy_caller(
    state: &AppState,
    token: Option<&str>,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Arc<Caller>, ApiError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    if token.is_none()
        && let Some(caller) = proxy_caller(state, headers, client)?
    {
        return Ok(caller);
    }
    authorize(state, token, client)
}

/// An authenticated caller, taken from `Authorization: Bearer <token>`, else from a trusted
/// proxy's identity headers.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Caller>);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = client_address(&parts.extensions);
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return authorize(state, bearer(parts), client).map(Authenticated);
        }
        token_or_proxy_caller(state, None, &parts.headers, client).map(Authenticated)
    }
}

/// The caller of a public endpoint: `None` without an `Authorization` header or a person a
/// trusted proxy grants a role, else the authenticated caller (a bad token still gets 401 or
/// 429).
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Arc<Caller>>);

impl FromRequestParts<AppState> for MaybeAuthenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Authenticated::from_request_parts(parts, state)
                .await
                .map(|Authenticated(caller)| MaybeAuthenticated(Some(caller)));
        }
        let client = client_address(&parts.extensions);
        match proxy_caller(state, &parts.headers, client) {
            Ok(caller) => Ok(MaybeAuthenticated(caller)),
            // A person without a role sees what anyone may see.
            Err(err) if err.status == axum::http::StatusCode::FORBIDDEN => {
                Ok(MaybeAuthenticated(None))
            }
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration defining `staging` and `prod`.
    fn mk_config() -> Config {
        Config::from_yaml(
            "schedules:\n  office: { uptime: always }\nenvironments:\n  staging: { schedule: office }\n  prod: { schedule: office }\n",
            Path::new("curfew.yaml"),
        )
        .unwrap()
    }

    fn parse(yaml: &str) -> Result<Tokens> {
        Tokens::from_yaml(yaml, Path::new("tokens.yaml"), &mk_config())
    }

    /// The problems `yaml` has, one `line:column: message` each.
    fn problems(yaml: &str) -> Vec<String> {
        match parse(yaml) {
            Err(Error::Invalid(problems)) => problems
                .iter()
                .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn tokens() -> Tokens {
        let yaml = format!(
            "tokens:\n  - {{ name: otto, role: operator, environments: [staging], sha256: {} }}\n  - {{ name: root, role: admin, environments: ['*'], sha256: {} }}\n",
            sha256_hex("otto-secret"),
            sha256_hex("root-secret")
        );
        parse(&yaml).unwrap()
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
    fn bad_digests_unknown_keys_and_empty_scopes_are_reported_where_they_are() {
        assert_eq!(
            problems("tokens:\n  - { name: a, role: viewer, environments: ['*'], sha256: abc }\n"),
            ["2:59: token 'a': sha256 must be 64 hex digits"]
        );
        assert_eq!(
            problems("tokens:\n  - { name: a, role: viewer, environments: [], sha256: abc }\n"),
            [
                "2:13: token 'a' has no environments",
                "2:56: token 'a': sha256 must be 64 hex digits"
            ]
        );
        for yaml in [
            "tokens: [{ name: a, role: boss, environments: ['*'], sha256: abc }]",
            "tokens: [{ name: a, role: viewer, environments: ['*'], sha: abc }]",
        ] {
            let found = problems(yaml);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].starts_with("1:"), "{found:?}");
        }
    }

    #[test]
    fn a_digest_or_name_used_twice_and_an_unknown_environment_stop_loading() {
        let (viewer, other) = (sha256_hex("shared-secret"), sha256_hex("other-secret"));
        let yaml = format!(
            "tokens:\n\
             - {{ name: vera, role: viewer, environments: [staging], sha256: {viewer} }}\n\
             - {{ name: boss, role: admin, environments: ['*'], sha256: {viewer} }}\n\
             - {{ name: vera, role: viewer, environments: [stagin, prod], sha256: {other} }}\n"
        );
        let found = problems(&yaml);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("3:")
                && found[0].contains("token 'boss' has the same sha256 as token 'vera' on line 2"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("4:11: token name 'vera' is used twice"),
            "{found:?}"
        );
        assert_eq!(
            found[2],
            "4:46: token 'vera' names environment 'stagin', which the configuration does not define"
        );
        let Err(Error::Invalid(diagnostics)) = parse(&yaml) else {
            unreachable!()
        };
        assert_eq!(
            diagnostics[2].hint.as_deref(),
            Some("did you mean 'staging'?")
        );
    }

    #[test]
    fn a_file_open_to_other_users_is_refused_unless_a_group_of_another_owner_reads_it() {
        let (root, curfew) = (0, 65532);
        assert_eq!(too_open(0o600, curfew, Some(curfew)), None);
        assert_eq!(too_open(0o400, curfew, Some(curfew)), None);
        assert!(
            too_open(0o644, curfew, Some(curfew))
                .unwrap()
                .contains("every user")
        );
        assert!(
            too_open(0o640, curfew, Some(curfew))
                .unwrap()
                .contains("its group")
        );
        assert!(
            too_open(0o620, curfew, Some(curfew))
                .unwrap()
                .contains("writable")
        );
        assert!(
            too_open(0o602, curfew, Some(curfew))
                .unwrap()
                .contains("writable")
        );
        // A Kubernetes Secret mounted with mode 0440 and fsGroup: root owns it, curfew reads
        // it through the group.
        assert_eq!(too_open(0o440, root, Some(curfew)), None);
        assert!(too_open(0o444, root, Some(curfew)).is_some());
    }

    #[test]
    fn loading_checks_the_files_permissions_besides_its_entries() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        let yaml = format!(
            "tokens:\n  - {{ name: otto, role: operator, environments: [prod], sha256: {} }}\n",
            sha256_hex("otto-secret")
        );
        std::fs::write(&path, yaml).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Tokens::load(&path, &mk_config()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "{}: error: the tokens file is readable by every user (mode 0644)",
                path.display()
            )),
            "{text}"
        );
        assert!(text.contains("hint: chmod 600"), "{text}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Tokens::load(&path, &mk_config()).is_ok());
    }
}
