//! A small HTTP/1.1 client for JSON requests, shared by the webhook notifier and the CLI.
//!
//! Plain `http://` only: this build carries no TLS stack. Every request has a deadline.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// What can go wrong sending a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL does not parse or is not `http://`.
    #[error("bad URL '{url}': {detail}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The connection or the exchange failed.
    #[error("request to {url} failed: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// No complete answer within the deadline.
    #[error("request to {url} timed out after {seconds} s")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline in seconds.
        seconds: u64,
    },
}

/// Result type of HTTP requests.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A pooled client with one deadline for every request.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

// === impl HttpClient ===

impl HttpClient {
    /// A client whose requests each take at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
        }
    }

    /// Sends `method url`, with a bearer `token` and a JSON `body` when given.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Response> {
        let uri: axum::http::Uri = url.parse().map_err(|err| Error::Url {
            url: url.to_string(),
            detail: format!("{err}"),
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::Url {
                url: url.to_string(),
                detail: "only http:// URLs are supported".to_string(),
            });
        }
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|err| Error::Url {
                url: url.to_string(),
                detail: err.to_string(),
            })?;
        let transport = |err: &dyn std::fmt::Display| Error::Transport {
            url: url.to_string(),
            detail: err.to_string(),
        };
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| transport(&e))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| transport(&e))?
                .to_bytes()
                .to_vec();
            Ok(Response { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                url: url.to_string(),
                seconds: self.timeout.as_secs(),
            })?
    }
}
