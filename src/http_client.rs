//! A small HTTP/1.1 client for JSON requests, shared by the webhook notifier and the CLI.
//!
//! It speaks `http://` and `https://`. TLS is rustls with the aws-lc-rs provider, trusting the
//! platform's root certificates, or those in `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (as
//! OpenSSL does). Every request has a deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// What can go wrong sending a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL does not parse or is neither `http://` nor `https://`.
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
    /// An `https://` URL, but no trusted root certificate could be loaded.
    #[error("request to {url} failed: no trusted root certificates: {detail}")]
    NoRoots {
        /// The URL.
        url: String,
        /// Why none were loaded.
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
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Why no root certificate is trusted, when none could be loaded: `https://` requests
    /// then fail with this instead of an unknown-issuer error.
    no_roots: Option<String>,
    timeout: Duration,
}

// === impl HttpClient ===

impl HttpClient {
    /// A client whose requests each take at most `timeout`, trusting the platform's root
    /// certificates (or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    pub fn new(timeout: Duration) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (builder, no_roots) = match HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(builder) => (builder, None),
            Err(err) => {
                tracing::warn!(error = %err, "no trusted root certificates: https requests will fail");
                let empty = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("the aws-lc-rs provider supports the default versions")
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                (
                    HttpsConnectorBuilder::new().with_tls_config(empty),
                    Some(err.to_string()),
                )
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            no_roots,
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
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                if let Some(detail) = &self.no_roots {
                    return Err(Error::NoRoots {
                        url: url.to_string(),
                        detail: detail.clone(),
                    });
                }
            }
            _ => {
                return Err(Error::Url {
                    url: url.to_string(),
                    detail: "only http:// and https:// URLs are supported".to_string(),
                });
            }
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
        let transport = |err: &dyn std::error::Error| Error::Transport {
            url: url.to_string(),
            detail: with_causes(err),
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

/// An error and its causes, `outer: inner: innermost` (the client's own error says little
/// more than "client error (Connect)"; the cause names the certificate or the refusal).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
