//! People named by a trusted authenticating proxy (`server.auth.proxy`): single sign-on
//! through oauth2-proxy, an ingress with external authentication or a load balancer with
//! OIDC, in the convention of Grafana's auth proxy.
//!
//! The proxy's headers count only on requests from its addresses; from anywhere else they are
//! ignored, as if absent. A person the proxy names gets the role and environments of the
//! first `users` entry naming their user name or email, else of the first `groups` entry
//! naming one of their groups; they act under their email (else their user name), which the
//! audit log records.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName};

use super::ApiError;
use super::auth::Caller;
use crate::config::ProxyAuth;

/// The longest user name, email or group accepted, in characters.
const MAX_NAME_CHARS: usize = 256;
/// The most groups read from the groups header.
const MAX_GROUPS: usize = 256;

/// What the proxy's headers say about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyIdentity {
    /// No proxy configured, a source it does not trust, or no identity headers.
    Absent,
    /// A person with a role.
    Known(Arc<Caller>),
    /// A person no entry grants a role; their name.
    Unmapped(String),
}

/// Who the headers of a request from `client` name, by the rules of `proxy`. A malformed
/// identity header from a trusted source is refused (401) rather than ignored.
pub fn identify(
    proxy: Option<&ProxyAuth>,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<ProxyIdentity, ApiError> {
    let Some(proxy) = proxy else {
        return Ok(ProxyIdentity::Absent);
    };
    if !client.is_some_and(|address| proxy.trusts(address)) {
        if headers.contains_key(&proxy.user_header) || headers.contains_key(&proxy.email_header) {
            tracing::debug!(
                client = ?client,
                "identity headers from a source not in trusted_sources ignored"
            );
        }
        return Ok(ProxyIdentity::Absent);
    }
    let user = header_text(headers, &proxy.user_header)?;
    let email = header_text(headers, &proxy.email_header)?;
    let Some(person) = email.or(user) else {
        return Ok(ProxyIdentity::Absent);
    };
    let groups: Vec<&str> = match header_text(headers, &proxy.groups_header)? {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .take(MAX_GROUPS)
            .collect(),
        None => Vec::new(),
    };
    Ok(match proxy.grant_for(user, email, &groups) {
        Some(grant) => ProxyIdentity::Known(Arc::new(Caller {
            name: person.to_string(),
            role: grant.role,
            environments: grant.environments.clone(),
        })),
        None => ProxyIdentity::Unmapped(person.to_string()),
    })
}

/// The trimmed text of header `name`, `None` when absent or empty; 401 when it is not UTF-8,
/// too long, or holds characters that could forge a log line.
fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let invalid = |why: &str| ApiError::unauthorized(format!("the {name} header {why}"));
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| invalid("is not UTF-8"))?
        .trim();
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(&format!(
            "is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if let Some(refused) = crate::text::first_refused(text) {
        return Err(invalid(&format!("holds {refused}")));
    }
    Ok((!text.is_empty()).then_some(text))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::domain::Role;

    fn proxy() -> ProxyAuth {
        let yaml = "schedules:\n  office: { uptime: always }\nenvironments:\n  staging: { schedule: office }\n  prod: { schedule: office }\n\
            server:\n  auth:\n    proxy:\n      trusted_sources: [10.0.0.0/8, 192.168.1.7]\n\
            \x20     users: [{ name: ada@example.com, role: admin, environments: ['*'] }]\n\
            \x20     groups:\n        - { name: qa, role: viewer, environments: [prod] }\n        - { name: platform, role: operator, environments: [staging] }\n";
        Config::from_yaml(yaml, Path::new("c.yaml"))
            .unwrap()
            .server
            .auth
            .proxy
            .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    value.parse().expect("a header value"),
                )
            })
            .collect()
    }

    fn known(identity: ProxyIdentity) -> Arc<Caller> {
        match identity {
            ProxyIdentity::Known(caller) => caller,
            other => panic!("expected a known person, got {other:?}"),
        }
    }

    const INSIDE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)));

    #[test]
    fn a_person_gets_their_own_entry_before_any_group_and_acts_under_their_email() {
        let proxy = proxy();
        let ada = known(
            identify(
                Some(&proxy),
                &headers(&[
                    ("x-forwarded-user", "1234567"),
                    ("x-forwarded-email", "ada@example.com"),
                    ("x-forwarded-groups", "qa"),
                ]),
                INSIDE,
            )
            .unwrap(),
        );
        assert_eq!(
            (ada.name.as_str(), ada.role),
            ("ada@example.com", Role::Admin)
        );
        let bo = known(
            identify(
                Some(&proxy),
                &headers(&[
                    ("x-forwarded-user", "bo"),
                    ("x-forwarded-groups", "dev, platform,qa"),
                ]),
                INSIDE,
            )
            .unwrap(),
        );
        assert_eq!(
            (bo.name.as_str(), bo.role),
            ("bo", Role::Viewer),
            "qa is listed first"
        );
        assert!(bo.in_scope("prod") && !bo.in_scope("staging"));
    }

    #[test]
    fn headers_from_an_untrusted_source_are_ignored_and_a_stranger_is_unmapped() {
        let proxy = proxy();
        let ada = headers(&[("x-forwarded-email", "ada@example.com")]);
        for outside in ["10.0.0.0", "192.168.1.8", "11.0.0.1"] {
            let source = outside.parse::<IpAddr>().ok();
            let expected = if outside == "10.0.0.0" {
                "known"
            } else {
                "absent"
            };
            let got = match identify(Some(&proxy), &ada, source).unwrap() {
                ProxyIdentity::Known(_) => "known",
                ProxyIdentity::Absent => "absent",
                ProxyIdentity::Unmapped(_) => "unmapped",
            };
            assert_eq!(got, expected, "from {outside}");
        }
        let mapped_v4 = "::ffff:192.168.1.7".parse::<IpAddr>().ok();
        assert!(matches!(
            identify(Some(&proxy), &ada, mapped_v4).unwrap(),
            ProxyIdentity::Known(_)
        ));
        assert_eq!(
            identify(Some(&proxy), &ada, None).unwrap(),
            ProxyIdentity::Absent
        );
        assert_eq!(identify(None, &ada, INSIDE).unwrap(), ProxyIdentity::Absent);
        assert_eq!(
            identify(
                Some(&proxy),
                &headers(&[("x-forwarded-user", "eve")]),
                INSIDE
            )
            .unwrap(),
            ProxyIdentity::Unmapped("eve".into())
        );
    }

    #[test]
    fn a_malformed_identity_header_from_the_proxy_is_refused() {
        let proxy = proxy();
        let long = "a".repeat(300);
        for value in [long.as_str(), "ada\u{202e}nimda"] {
            let mut map = HeaderMap::new();
            map.insert(
                "x-forwarded-user",
                axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
            let err = identify(Some(&proxy), &map, INSIDE).unwrap_err();
            assert_eq!(
                err.status,
                axum::http::StatusCode::UNAUTHORIZED,
                "{value:?}"
            );
            assert!(err.detail.contains("x-forwarded-user"), "{}", err.detail);
        }
    }
}
