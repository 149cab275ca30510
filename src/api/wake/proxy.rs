//! Proxy mode: requests to an environment that is up go to `wake.upstream` as they came
//! (headers preserved, bodies streamed both ways, connections to the upstream kept alive),
//! and upgraded connections such as websockets are tunnelled.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Semaphore;

use crate::telemetry;

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection to the upstream may sit idle in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per upstream.
const POOL_MAX_IDLE: usize = 64;

/// Headers that belong to one connection, never forwarded (RFC 9110, 7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The upstream could not be reached or broke off.
    #[error("upstream: {0}")]
    Upstream(#[from] hyper_util::client::legacy::Error),
    /// The forwarded request could not be built.
    #[error("bad forwarded request: {0}")]
    Request(#[from] axum::http::Error),
}

/// Forwards requests to upstreams over pooled connections.
#[derive(Clone)]
pub(super) struct Forwarder {
    client: Client<HttpConnector, Body>,
    tunnels: Arc<Semaphore>,
}

// === impl Forwarder ===

impl Forwarder {
    /// A forwarder tunnelling at most as many upgraded connections as `tunnels` has permits.
    pub(super) fn new(tunnels: Arc<Semaphore>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .build(connector);
        Forwarder { client, tunnels }
    }

    /// Sends `request` to `upstream` and streams the answer back; an upgrade the upstream
    /// accepts becomes a tunnel between the two connections.
    pub(super) async fn forward(
        &self,
        upstream: &Uri,
        mut request: Request,
        environment: &str,
    ) -> Result<Response, Error> {
        let upgrade = upgrade_of(request.headers());
        let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let peer = super::super::auth::client_address(request.extensions());
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let uri = Uri::builder()
            .scheme("http")
            .authority(upstream.authority().map_or("", |a| a.as_str()))
            .path_and_query(path)
            .build()?;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        strip_hop_by_hop(headers);
        if let Some(protocol) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        add_forwarded(headers, peer);
        let mut response = self.client.request(request).await?;
        let class = match response.status().as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        metrics::counter!(telemetry::WAKE_PROXIED, "environment" => environment.to_string(), "class" => class)
            .increment(1);
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_side) = client_side
        {
            let Ok(permit) = self.tunnels.clone().try_acquire_owned() else {
                return Ok(
                    (StatusCode::SERVICE_UNAVAILABLE, "too many open tunnels").into_response()
                );
            };
            let upstream_side = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::try_join!(client_side, upstream_side) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(err) => tracing::debug!(error = %err, "an upgrade did not complete"),
                }
            });
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// The protocol a request asks to upgrade to (`Connection: upgrade` with `Upgrade`).
fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Removes the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Appends the client to `X-Forwarded-For` and sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` when no proxy before curfew did.
fn add_forwarded(headers: &mut HeaderMap, peer: Option<std::net::IpAddr>) {
    if let Some(peer) = peer {
        let chain = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(before) => format!("{before}, {peer}"),
            None => peer.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", value);
        }
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if !headers.contains_key("x-forwarded-host")
        && let Some(host) = headers.get(header::HOST).cloned()
    {
        headers.insert("x-forwarded-host", host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::COOKIE, HeaderValue::from_static("session=abc"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[header::COOKIE], "session=abc");
    }

    #[test]
    fn an_upgrade_is_asked_with_connection_upgrade_and_the_protocol() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(upgrade_of(&headers), None);
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(
            upgrade_of(&headers),
            Some(HeaderValue::from_static("websocket"))
        );
    }
}
