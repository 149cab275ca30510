//! `server.auth`: identity from a trusted authenticating proxy.
//!
//! Teams put internal pages behind single sign-on: oauth2-proxy, an ingress with external
//! authentication, a cloud load balancer with OIDC. Such a proxy signs people in and passes
//! who they are in request headers. curfew believes those headers only from the proxy's
//! addresses (`trusted_sources`) and maps the person, by user name, email or group, to a role
//! and environments in the same shape as a token.

use std::net::IpAddr;

use http::HeaderName;
use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::closest;
use super::raw::{Located, Named, RawEnvironment};
use super::validate::Collector;
use crate::domain::Role;

/// The header naming the user unless configured (oauth2-proxy's, with `--set-xauthrequest`
/// or `--pass-user-headers`).
pub const DEFAULT_USER_HEADER: &str = "x-forwarded-user";
/// The header naming the user's email unless configured.
pub const DEFAULT_EMAIL_HEADER: &str = "x-forwarded-email";
/// The header listing the user's groups, comma-separated, unless configured.
pub const DEFAULT_GROUPS_HEADER: &str = "x-forwarded-groups";

/// `server.auth` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Identity from an authenticating proxy.
    pub proxy: Option<Spanned<RawProxyAuth>>,
}

/// `server.auth.proxy` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyAuth {
    /// The header naming the user.
    pub user_header: Option<Located>,
    /// The header naming the user's email.
    pub email_header: Option<Located>,
    /// The header listing the user's groups, comma-separated.
    pub groups_header: Option<Located>,
    /// Addresses and CIDRs the proxy connects from.
    #[serde(default)]
    pub trusted_sources: Vec<Located>,
    /// Roles of people by user name or email.
    #[serde(default)]
    pub users: Vec<Spanned<RawGrant>>,
    /// Roles of people by group.
    #[serde(default)]
    pub groups: Vec<Spanned<RawGrant>>,
}

/// One person or group and what they may do, as written (the shape of a token, without
/// its digest).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// A user name or email, or a group.
    pub name: Located,
    /// `viewer`, `operator` or `admin`.
    pub role: Located,
    /// Environments they may see and act on; `*` means all.
    pub environments: Vec<Located>,
}

/// Who may call the API besides token holders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Identity from an authenticating proxy; none when absent.
    pub proxy: Option<ProxyAuth>,
}

/// Identity from an authenticating proxy, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// The header naming the user.
    pub user_header: HeaderName,
    /// The header naming the user's email.
    pub email_header: HeaderName,
    /// The header listing the user's groups, comma-separated.
    pub groups_header: HeaderName,
    /// Where the proxy connects from: headers from anywhere else are ignored.
    pub trusted_sources: Vec<IpNet>,
    /// Roles of people by user name or email, in file order.
    pub users: Vec<Grant>,
    /// Roles of people by group, in file order.
    pub groups: Vec<Grant>,
}

/// A person or group and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user name, email or group.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Environments they may see and act on; `*` means all.
    pub environments: Vec<String>,
}

// === impl ProxyAuth ===

impl ProxyAuth {
    /// Whether a request from `source` may name its caller in headers.
    pub fn trusts(&self, source: IpAddr) -> bool {
        let source = source.to_canonical();
        self.trusted_sources.iter().any(|net| net.contains(&source))
    }

    /// What a person may do: the first `users` entry naming their user name or email, else
    /// the first `groups` entry naming one of their groups.
    pub fn grant_for(
        &self,
        user: Option<&str>,
        email: Option<&str>,
        groups: &[&str],
    ) -> Option<&Grant> {
        let names_them = |grant: &&Grant| {
            Some(grant.name.as_str()) == user || Some(grant.name.as_str()) == email
        };
        self.users.iter().find(names_them).or_else(|| {
            self.groups
                .iter()
                .find(|grant| groups.contains(&grant.name.as_str()))
        })
    }
}

/// Validates `server.auth`, written at `raw`, for `environments`.
pub(super) fn auth_config(
    collector: &mut Collector,
    raw: Option<&RawAuth>,
    environments: &Named<RawEnvironment>,
) -> AuthConfig {
    let Some(Spanned {
        value: proxy,
        referenced: at,
        ..
    }) = raw.and_then(|auth| auth.proxy.as_ref())
    else {
        return AuthConfig::default();
    };
    let headers = [
        ("user_header", &proxy.user_header, DEFAULT_USER_HEADER),
        ("email_header", &proxy.email_header, DEFAULT_EMAIL_HEADER),
        ("groups_header", &proxy.groups_header, DEFAULT_GROUPS_HEADER),
    ]
    .map(|(key, written, default)| header_name(collector, key, written.as_ref(), default));
    let trusted_sources = trusted_sources(collector, *at, &proxy.trusted_sources);
    if proxy.users.is_empty() && proxy.groups.is_empty() {
        collector.error(
            *at,
            "server.auth.proxy grants no one a role: list users or groups",
            Some("e.g. groups: [{ name: platform, role: operator, environments: [\"*\"] }]".into()),
        );
    }
    let known: Vec<&str> = environments.keys().map(String::as_str).collect();
    let users = grants(collector, "users", &proxy.users, &known);
    let groups = grants(collector, "groups", &proxy.groups, &known);
    let [user_header, email_header, groups_header] = headers;
    AuthConfig {
        proxy: Some(ProxyAuth {
            user_header,
            email_header,
            groups_header,
            trusted_sources,
            users,
            groups,
        }),
    }
}

/// The header `server.auth.proxy.<key>` names, `default` when not written.
fn header_name(
    collector: &mut Collector,
    key: &str,
    written: Option<&Located>,
    default: &'static str,
) -> HeaderName {
    let Some(written) = written else {
        return HeaderName::from_static(default);
    };
    let name = written.value.trim();
    let problem = if name.is_empty() {
        format!("server.auth.proxy.{key} is empty")
    } else if name.eq_ignore_ascii_case("authorization") {
        format!("server.auth.proxy.{key} may not be Authorization: it carries API tokens")
    } else {
        match HeaderName::try_from(name) {
            Ok(header) => return header,
            Err(_) => format!(
                "server.auth.proxy.{key} '{}' is not a header name",
                crate::text::escape(name)
            ),
        }
    };
    collector.error(
        written.referenced,
        problem,
        Some(format!(
            "leave it out for oauth2-proxy's {default}, or name the header your proxy sets"
        )),
    );
    HeaderName::from_static(default)
}

/// The CIDRs of `trusted_sources` (a bare address is one host); there must be some, and none
/// may trust every address.
fn trusted_sources(collector: &mut Collector, at: Location, written: &[Located]) -> Vec<IpNet> {
    if written.is_empty() {
        collector.error(
            at,
            "server.auth.proxy.trusted_sources is empty: identity headers would be believed from no one",
            Some("list the proxy's addresses, e.g. [10.42.0.0/16] or [127.0.0.1/32]".into()),
        );
    }
    let mut nets = Vec::new();
    for source in written {
        let text = source.value.trim();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) if net.prefix_len() == 0 => collector.error(
                source.referenced,
                format!("server.auth.proxy.trusted_sources '{text}' trusts every address"),
                Some(
                    "anyone who can reach curfew could claim to be anyone: list only the proxy's \
                     addresses"
                        .into(),
                ),
            ),
            Ok(net) => nets.push(net.trunc()),
            Err(_) => collector.error(
                source.referenced,
                format!(
                    "server.auth.proxy.trusted_sources '{}' is not an address or a CIDR",
                    crate::text::escape(text)
                ),
                Some("write e.g. 10.42.0.0/16, 192.168.1.7 or fd00::/8".into()),
            ),
        }
    }
    nets
}

/// The entries of `server.auth.proxy.<key>` (`users` or `groups`), each checked for an empty
/// or repeated name, a role that does not exist and environments in `known`.
fn grants(
    collector: &mut Collector,
    key: &str,
    written: &[Spanned<RawGrant>],
    known: &[&str],
) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for Spanned {
        value: grant,
        referenced: at,
        ..
    } in written
    {
        let name = grant.name.value.trim();
        let what = format!(
            "server.auth.proxy.{key} entry '{}'",
            crate::text::escape(name)
        );
        let mut valid = true;
        if name.is_empty() {
            collector.error(
                grant.name.referenced,
                format!("server.auth.proxy.{key}: an entry has an empty name"),
                None,
            );
            valid = false;
        } else if names.contains(&name) {
            collector.error(
                grant.name.referenced,
                format!("{what} is listed twice"),
                Some("the first entry would win; merge them".into()),
            );
            valid = false;
        }
        names.push(name);
        let role = Role::named(grant.role.value.trim());
        if role.is_none() {
            let hint = match closest(grant.role.value.trim(), Role::NAMES) {
                Some(close) => format!("did you mean '{close}'?"),
                None => format!("roles are {}", Role::NAMES.join(", ")),
            };
            collector.error(
                grant.role.referenced,
                format!(
                    "{what}: role '{}' does not exist",
                    crate::text::escape(&grant.role.value)
                ),
                Some(hint),
            );
        }
        valid &= scope_is_known(collector, &what, *at, &grant.environments, known);
        if let (true, Some(role)) = (valid, role) {
            grants.push(Grant {
                name: name.to_string(),
                role,
                environments: grant
                    .environments
                    .iter()
                    .map(|e| e.value.trim().to_string())
                    .collect(),
            });
        }
    }
    grants
}

/// Whether the environments of `what` (written at `at`) are some and all in `known` (`*`
/// means all); reports each that is not.
fn scope_is_known(
    collector: &mut Collector,
    what: &str,
    at: Location,
    scope: &[Located],
    known: &[&str],
) -> bool {
    if scope.is_empty() {
        collector.error(
            at,
            format!("{what} has no environments"),
            Some("list the environments they may act on, or [\"*\"] for all".into()),
        );
        return false;
    }
    let mut valid = true;
    for environment in scope {
        let name = environment.value.trim();
        if name == "*" || known.contains(&name) {
            continue;
        }
        let hint = match closest(name, known.iter().copied()) {
            Some(close) => format!("did you mean '{close}'?"),
            None => format!("the configuration defines: {}", known.join(", ")),
        };
        collector.error(
            environment.referenced,
            format!(
                "{what} names environment '{}', which the configuration does not define",
                crate::text::escape(name)
            ),
            Some(hint),
        );
        valid = false;
    }
    valid
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, Error};

    const BASE: &str = "schedules:\n  office: { uptime: always }\nenvironments:\n  staging: { schedule: office }\nserver:\n  auth:\n    proxy:\n";

    fn load(proxy: &str) -> Result<Config, Error> {
        Config::from_yaml(&format!("{BASE}{proxy}"), Path::new("c.yaml"))
    }

    /// Each problem as `line:column: message (hint)`.
    fn problems(proxy: &str) -> Vec<String> {
        load(proxy)
            .unwrap_err()
            .diagnostics()
            .iter()
            .map(|d| {
                format!(
                    "{}:{}: {} ({})",
                    d.line,
                    d.column,
                    d.message,
                    d.hint.as_deref().unwrap_or("")
                )
            })
            .collect()
    }

    #[test]
    fn the_headers_default_to_oauth2_proxys_and_sources_are_cidrs() {
        let config = load(
            "      trusted_sources: [10.42.0.0/16, 192.168.1.7, 'fd00::/8']\n      groups: [{ name: platform, role: operator, environments: [staging] }]\n",
        )
        .unwrap();
        let proxy = config.server.auth.proxy.unwrap();
        assert_eq!(proxy.user_header, "x-forwarded-user");
        assert_eq!(proxy.email_header, "x-forwarded-email");
        assert_eq!(proxy.groups_header, "x-forwarded-groups");
        assert!(proxy.trusts("10.42.200.1".parse().unwrap()));
        assert!(proxy.trusts("192.168.1.7".parse().unwrap()));
        assert!(!proxy.trusts("192.168.1.8".parse().unwrap()));
        assert!(proxy.trusts("fd00::1".parse().unwrap()));
        assert_eq!(
            proxy.groups[0],
            Grant {
                name: "platform".into(),
                role: Role::Operator,
                environments: vec!["staging".into()]
            }
        );
    }

    #[test]
    fn bad_cidrs_empty_headers_unknown_roles_and_environments_are_reported_where_written() {
        let found = problems(
            "      user_header: ''\n      groups_header: 'X Groups'\n      trusted_sources: [10.0.0.0/33, 0.0.0.0/0]\n      users:\n        - { name: ada, role: admni, environments: [stagin] }\n        - { name: ada, role: viewer, environments: [] }\n",
        );
        assert_eq!(
            found,
            [
                "8:20: server.auth.proxy.user_header is empty (leave it out for oauth2-proxy's x-forwarded-user, or name the header your proxy sets)",
                "9:22: server.auth.proxy.groups_header 'X Groups' is not a header name (leave it out for oauth2-proxy's x-forwarded-groups, or name the header your proxy sets)",
                "10:25: server.auth.proxy.trusted_sources '10.0.0.0/33' is not an address or a CIDR (write e.g. 10.42.0.0/16, 192.168.1.7 or fd00::/8)",
                "10:38: server.auth.proxy.trusted_sources '0.0.0.0/0' trusts every address (anyone who can reach curfew could claim to be anyone: list only the proxy's addresses)",
                "12:30: server.auth.proxy.users entry 'ada': role 'admni' does not exist (did you mean 'admin'?)",
                "12:52: server.auth.proxy.users entry 'ada' names environment 'stagin', which the configuration does not define (did you mean 'staging'?)",
                "13:19: server.auth.proxy.users entry 'ada' is listed twice (the first entry would win; merge them)",
                "13:11: server.auth.proxy.users entry 'ada' has no environments (list the environments they may act on, or [\"*\"] for all)",
            ]
        );
    }

    #[test]
    fn a_proxy_without_sources_or_grants_is_refused() {
        let found = problems("      user_header: X-Remote-User\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("trusted_sources is empty"), "{found:?}");
        assert!(found[1].contains("grants no one a role"), "{found:?}");
    }
}
