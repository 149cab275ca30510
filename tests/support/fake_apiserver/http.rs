//! The fake's HTTP surface: routing, verbs, faults, the request log and watch streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::request_info;
use super::resources::{self, ResourceType};
use super::store::{ApiError, Change, Record, Selection, Store, Sub};
use super::{Fault, Shared};

/// What a path addresses.
enum Target {
    /// A discovery document.
    Discovery(Value),
    /// A collection, in one namespace or across all.
    Collection(ResourceType, Option<String>),
    /// One object or one of its subresources.
    Object(ResourceType, String, String, Option<Sub>),
}

/// The fallback handler serving everything; the time it takes is added to the server's busy
/// time (a watch counts until its response starts streaming).
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let response = serve(&shared, method, uri, headers, body).await;
    shared.add_busy(started.elapsed());
    response
}

async fn serve(
    shared: &Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    let target = route(&shared.store, uri.path());
    let classified = request_info::classify(&method, uri.path(), &query);
    let verb = classified.0;
    shared.log(classified, &method, &uri, &body);
    let latency = shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(fault) = shared.draw_fault(verb) {
        return fault_response(fault);
    }
    let result = match target {
        Some(Target::Discovery(document)) => Ok(json_response(StatusCode::OK, &document)),
        Some(Target::Collection(rt, namespace)) => {
            collection(shared, &method, &rt, namespace, &query, &body).await
        }
        Some(Target::Object(rt, namespace, name, sub)) => object(
            &shared.store,
            &method,
            &headers,
            &rt,
            &namespace,
            &name,
            sub,
            &body,
        ),
        None => Err(ApiError::new(
            404,
            "NotFound",
            format!("no route for {}", uri.path()),
        )),
    };
    result.unwrap_or_else(|error| error_response(&error))
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding (and `+` as space) of a query component.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(store: &Store, path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let types = store.types();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => {
            return Some(Target::Discovery(
                json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}),
            ));
        }
        ["api"] => return Some(Target::Discovery(resources::core_versions())),
        ["apis"] => return Some(Target::Discovery(resources::group_list(&types))),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let resolve = |plural: &str| store.resolve(group, version, plural);
    let sub = |name: &str| match name {
        "scale" => Some(Sub::Scale),
        _ => Some(Sub::Status),
    };
    match rest {
        [] => resources::resource_list(&types, group, version).map(Target::Discovery),
        ["namespaces", ns, plural, tail @ ..]
            if resolve(plural).is_some_and(|rt| rt.namespaced) =>
        {
            let rt = resolve(plural)?;
            match tail {
                [] => Some(Target::Collection(rt, Some(ns.to_string()))),
                [name] => Some(Target::Object(rt, ns.to_string(), name.to_string(), None)),
                [name, subresource] => Some(Target::Object(
                    rt,
                    ns.to_string(),
                    name.to_string(),
                    sub(subresource),
                )),
                _ => None,
            }
        }
        [plural] => Some(Target::Collection(resolve(plural)?, None)),
        [plural, name] => Some(Target::Object(
            resolve(plural).filter(|rt| !rt.namespaced)?,
            String::new(),
            name.to_string(),
            None,
        )),
        [plural, name, subresource] => Some(Target::Object(
            resolve(plural).filter(|rt| !rt.namespaced)?,
            String::new(),
            name.to_string(),
            sub(subresource),
        )),
        _ => None,
    }
}

async fn collection(
    shared: &Arc<Shared>,
    method: &Method,
    rt: &ResourceType,
    namespace: Option<String>,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let selection = Selection::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    )?;
    match *method {
        Method::GET if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) => {
            Ok(watch(shared, rt, namespace, selection, query))
        }
        Method::GET => {
            let Page { items, rv, next } =
                page(shared, rt, namespace.as_deref(), &selection, query)?;
            let mut metadata = json!({"resourceVersion": rv.to_string()});
            if let Some(next) = next {
                metadata["continue"] = json!(next);
            }
            let list = List {
                kind: format!("{}List", rt.kind),
                api_version: rt.api_version(),
                metadata,
                items: StoredItems(&items),
            };
            Ok(json_response(StatusCode::OK, &list))
        }
        Method::POST => {
            let object = parse_body(body)?;
            let ns = if rt.namespaced {
                namespace
                    .or_else(|| object["metadata"]["namespace"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "default".to_string())
            } else {
                String::new()
            };
            let created = shared.store.create(rt, &ns, &object)?;
            Ok(json_response(StatusCode::CREATED, &*created))
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    }
}

/// A list response, serialised from the stored objects (a page holds hundreds of objects,
/// never copied).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    kind: String,
    api_version: String,
    metadata: Value,
    items: StoredItems<'a>,
}

/// Stored objects serialised in place.
struct StoredItems<'a>(&'a [Arc<Value>]);

impl serde::Serialize for StoredItems<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|item| &**item))
    }
}

/// The (namespace, name) an item is listed by.
fn list_key(item: &Value) -> (String, String) {
    let metadata = &item["metadata"];
    let text = |field: &str| metadata[field].as_str().unwrap_or_default().to_string();
    (text("namespace"), text("name"))
}

/// One page of a list: its stored objects, the list's resourceVersion and the token for the
/// next page.
struct Page {
    items: Vec<Arc<Value>>,
    rv: u64,
    next: Option<String>,
}

/// One page of a list, as the API server pages for `limit`: the items after the one a
/// `continue` token names, and the token for the next page. The token carries the first
/// page's resourceVersion, which every page reports, so a watch started from it replays what
/// changed while the pages were read.
fn page(
    shared: &Shared,
    rt: &ResourceType,
    namespace: Option<&str>,
    selection: &Selection,
    query: &HashMap<String, String>,
) -> Result<Page, ApiError> {
    let invalid = || ApiError::new(400, "BadRequest", "invalid continue token");
    let (first, after) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let mut parts = token.splitn(3, '/');
            let first = parts.next().and_then(|r| r.parse::<u64>().ok());
            let (Some(first), Some(namespace), Some(name)) = (first, parts.next(), parts.next())
            else {
                return Err(invalid());
            };
            (Some(first), Some((namespace.to_string(), name.to_string())))
        }
        None => (None, None),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|limit| *limit > 0);
    let after = after
        .as_ref()
        .map(|(ns, name)| (ns.as_str(), name.as_str()));
    let (items, rv, more) = shared
        .store
        .list_page(rt, namespace, selection, after, limit);
    let rv = first.unwrap_or(rv);
    let next = more
        .then(|| items.last().map(|item| list_key(item)))
        .flatten()
        .map(|(namespace, name)| format!("{rv}/{namespace}/{name}"));
    Ok(Page { items, rv, next })
}

#[allow(clippy::too_many_arguments)]
fn object(
    store: &Arc<Store>,
    method: &Method,
    headers: &HeaderMap,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    sub: Option<Sub>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let value = match *method {
        Method::GET => Arc::new(store.get(rt, namespace, name, sub)?),
        Method::DELETE => Arc::new(store.delete(rt, namespace, name)?),
        Method::PUT => {
            let body = parse_body(body)?;
            store.update(rt, namespace, name, sub, Change::Replace(&body))?
        }
        Method::PATCH => {
            let body = parse_body(body)?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let change = match content_type.split(';').next().unwrap_or_default() {
                "application/json-patch+json" => Change::Json(&body),
                "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/apply-patch+yaml" => Change::Merge(&body),
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("the body of the request was in an unknown format: {other}"),
                    ));
                }
            };
            store.update(rt, namespace, name, sub, change)?
        }
        _ => return Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    };
    Ok(json_response(StatusCode::OK, &*value))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(400, "BadRequest", e.to_string()))
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("a JSON value serialises");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error.status())
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::TooManyRequests { retry_after_secs } => {
            let error = ApiError::new(
                429,
                "TooManyRequests",
                "the server has received too many requests",
            );
            let mut response = error_response(&error);
            if let Ok(value) = retry_after_secs.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Fault::ServerError => error_response(&ApiError::new(
            500,
            "InternalError",
            "an error on the server",
        )),
        Fault::Forbidden => error_response(&ApiError::new(
            403,
            "Forbidden",
            "User \"system:serviceaccount:curfew:curfew\" cannot perform this request",
        )),
    }
}

/// One line of a watch stream, serialised straight from `object` (no copy of it).
fn event_line(event: &str, object: &Value) -> Bytes {
    let mut line = Vec::with_capacity(4096);
    line.extend_from_slice(b"{\"type\":");
    serde_json::to_writer(&mut line, event).expect("a string serialises");
    line.extend_from_slice(b",\"object\":");
    serde_json::to_writer(&mut line, object).expect("a JSON value serialises");
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// A watch response: initial events, then live changes, bookmarks, and the end at
/// `timeoutSeconds`.
fn watch(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    namespace: Option<String>,
    selection: Selection,
    query: &HashMap<String, String>,
) -> Response {
    let from = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok());
    let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let bookmark_every = shared.bookmark_interval();
    let start = match shared
        .store
        .watch(rt, namespace.as_deref(), &selection, from)
    {
        Ok(start) => start,
        Err(error) => {
            let line = event_line("ERROR", &error.status());
            return stream_response(Body::from(line));
        }
    };
    let (kind, api_version) = (rt.kind.clone(), rt.api_version());
    let bookmark = move |rv: u64| {
        event_line(
            "BOOKMARK",
            &json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}}),
        )
    };
    let rt = rt.clone();
    let initial: Vec<Bytes> = start
        .initial
        .iter()
        .map(|(event, object)| event_line(event.as_str(), object))
        .collect();
    struct Live {
        changes: tokio::sync::broadcast::Receiver<Arc<Record>>,
        seen: u64,
        deadline: tokio::time::Instant,
        ticker: tokio::time::Interval,
        done: bool,
    }
    let mut ticker = tokio::time::interval(bookmark_every);
    ticker.reset();
    let live = Live {
        changes: start.changes,
        seen: start.rv,
        deadline: tokio::time::Instant::now() + timeout,
        ticker,
        done: false,
    };
    let shared = shared.clone();
    let rest = futures::stream::unfold(live, move |mut live| {
        let shared = shared.clone();
        let rt = rt.clone();
        let namespace = namespace.clone();
        let selection = selection.clone();
        let bookmark = bookmark.clone();
        async move {
            loop {
                if live.done {
                    return None;
                }
                if shared.watches_paused() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(live.deadline) => return None,
                    _ = live.ticker.tick(), if bookmarks => {
                        let line = bookmark(live.seen);
                        return Some((line, live));
                    }
                    change = live.changes.recv() => match change {
                        Ok(record) if record.rv <= live.seen => {}
                        Ok(record) => {
                            live.seen = record.rv;
                            if let Some((event, object)) = Store::filter(&rt, namespace.as_deref(), &selection, &record) {
                                return Some((event_line(event.as_str(), object), live));
                            }
                        }
                        Err(RecvError::Lagged(_)) => {
                            live.done = true;
                            let gone = ApiError::new(410, "Expired", "watch fell behind");
                            return Some((event_line("ERROR", &gone.status()), live));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        }
    });
    let stream = futures::stream::iter(initial)
        .chain(rest)
        .map(Ok::<Bytes, Infallible>);
    stream_response(Body::from_stream(stream))
}

fn stream_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
