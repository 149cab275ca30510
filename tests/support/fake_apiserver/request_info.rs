//! Requests as the API server's authorizer sees them: an RBAC verb, and for resource requests
//! the API group, resource (with its subresource), namespace and name, parsed from the path
//! the way the API server's request-info parser does (so a path is classified even when the
//! fake does not serve what it names).
//!
//! The verb mapping: GET of one object is `get`, GET of a collection `list` (or `watch` with
//! `watch=true`), POST `create`, PUT `update`, PATCH `patch`, DELETE of one object `delete` and
//! of a collection `deletecollection`. Everything outside `/api/v1/...` and
//! `/apis/GROUP/VERSION/...` with a resource (discovery, `/version`) is a non-resource request.

use std::collections::HashMap;
use std::fmt;

use axum::http::Method;

use super::Verb;

/// A request for a resource, as RBAC rules match it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Access {
    /// API group, `""` for the core group.
    pub group: String,
    /// Resource, with `/subresource` when one is addressed (`deployments/scale`).
    pub resource: String,
    /// The RBAC verb.
    pub verb: &'static str,
    /// The namespace, `None` for cluster-scoped requests and requests across all namespaces.
    pub namespace: Option<String>,
    /// The object's name, `None` for collections (unless a field selector names one object).
    pub name: Option<String>,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {group}/{}", self.verb, self.resource)?;
        if let Some(namespace) = &self.namespace {
            write!(f, " in {namespace}")?;
        }
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

// === impl Verb ===

impl Verb {
    /// The verb as RBAC rules spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// The verb of a request and, for a resource request, what it accesses.
pub fn classify(
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
) -> (Verb, Option<Access>) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return (non_resource_verb(method), None),
    };
    let (group, mut rest) = rest;
    if rest.is_empty() {
        return (non_resource_verb(method), None);
    }
    let mut namespace = None;
    if rest[0] == "namespaces" && rest.len() > 1 {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 {
            rest = &rest[2..];
        }
    }
    let resource = match rest.get(2) {
        Some(sub) => format!("{}/{sub}", rest[0]),
        None => rest[0].to_string(),
    };
    let mut name = rest.get(1).map(|n| n.to_string());
    let collection = name.is_none();
    let verb = match *method {
        Method::GET | Method::HEAD if collection && is_watch(query) => Verb::Watch,
        Method::GET | Method::HEAD if collection => Verb::List,
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE if collection => Verb::DeleteCollection,
        Method::DELETE => Verb::Delete,
        _ => Verb::Get,
    };
    if matches!(verb, Verb::List | Verb::Watch) {
        name = named_by_field_selector(query);
    }
    let access = Access {
        group: group.to_string(),
        resource,
        verb: verb.as_str(),
        namespace,
        name,
    };
    (verb, Some(access))
}

fn non_resource_verb(method: &Method) -> Verb {
    match *method {
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE => Verb::Delete,
        _ => Verb::Get,
    }
}

fn is_watch(query: &HashMap<String, String>) -> bool {
    matches!(query.get("watch").map(String::as_str), Some("true" | "1"))
}

/// A list or watch restricted to one object by `metadata.name=NAME` is, for RBAC, a request
/// for that name.
fn named_by_field_selector(query: &HashMap<String, String>) -> Option<String> {
    query
        .get("fieldSelector")?
        .split(',')
        .find_map(|term| term.strip_prefix("metadata.name="))
        .map(str::to_string)
}
