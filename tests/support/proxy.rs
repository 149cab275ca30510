//! A loopback HTTP proxy in front of a test server (moto, the fake API server) that counts
//! every call by operation and, when told, fails a seeded share of them: 429 with a plain-text
//! body, 500, 503 with no body, a connection dropped mid-answer, or a stall before the call
//! goes through. Answers stream through, so watches work behind it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the proxy does to a call it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 429 with `Retry-After: 0` and a plain-text body.
    TooManyRequests,
    /// 500 with a body that is no API's error format.
    ServerError,
    /// 503 with no body.
    Unavailable,
    /// The answer starts and the connection breaks before its body ends.
    Dropped,
    /// The call waits a moment, then goes through.
    Stalled,
}

const FAULTS: [Fault; 5] = [
    Fault::TooManyRequests,
    Fault::ServerError,
    Fault::Unavailable,
    Fault::Dropped,
    Fault::Stalled,
];

/// How long a stalled call waits before it goes through.
const STALL: Duration = Duration::from_millis(300);

/// Calls counted by operation, and the faults injected.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Calls seen, by operation.
    pub calls: BTreeMap<String, usize>,
    /// Faults injected, by operation and fault.
    pub faults: BTreeMap<(String, Fault), usize>,
}

struct Chaos {
    rng: StdRng,
    /// The share of calls that fail.
    share: f64,
    /// Operations whose next calls all fail, with how many remain.
    outages: BTreeMap<String, usize>,
    /// AWS operations refused with AccessDenied, as a policy without the action refuses them.
    denied: BTreeSet<String>,
}

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Body>,
    tally: Mutex<Tally>,
    chaos: Mutex<Chaos>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running proxy; stops with the test's runtime.
#[derive(Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`) that fails nothing yet.
    pub async fn start(upstream: &str) -> Proxy {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            tally: Mutex::default(),
            chaos: Mutex::new(Chaos {
                rng: StdRng::seed_from_u64(0),
                share: 0.0,
                outages: BTreeMap::new(),
                denied: BTreeSet::new(),
            }),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds loopback");
        let addr: SocketAddr = listener.local_addr().expect("has an address");
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Proxy {
            url: format!("http://{addr}"),
            shared,
        }
    }

    /// Fails `share` of the calls from now on, drawn from a generator seeded with `seed`.
    pub fn fail(&self, share: f64, seed: u64) {
        let mut chaos = lock(&self.shared.chaos);
        chaos.rng = StdRng::seed_from_u64(seed);
        chaos.share = share;
    }

    /// Fails the next `calls` calls of `operation`, whatever the share.
    pub fn outage(&self, operation: &str, calls: usize) {
        lock(&self.shared.chaos)
            .outages
            .insert(operation.to_string(), calls);
    }

    /// Refuses every call of the AWS `operation` from now on with 403 AccessDenied, as AWS
    /// does for a role whose policy lacks the action.
    pub fn deny(&self, operation: &str) {
        lock(&self.shared.chaos)
            .denied
            .insert(operation.to_string());
    }

    /// The operations seen so far that may change something: every AWS operation but
    /// `Describe*` and `List*`, every REST call but a GET.
    pub fn writes(&self) -> Vec<String> {
        lock(&self.shared.tally)
            .calls
            .keys()
            .filter(|op| {
                !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("GET "))
            })
            .cloned()
            .collect()
    }

    /// The calls and faults so far; `take` starts the count over.
    pub fn tally(&self, take: bool) -> Tally {
        let mut tally = lock(&self.shared.tally);
        if take {
            std::mem::take(&mut *tally)
        } else {
            tally.clone()
        }
    }
}

/// The operation of a call: the `Action` of an AWS query-protocol call (in the form body or
/// the query string), else the method and path (the path without a query).
pub fn operation(query: Option<&str>, body: &[u8], method: &str, path: &str) -> String {
    let form = String::from_utf8_lossy(body);
    query
        .into_iter()
        .chain([form.as_ref()])
        .flat_map(|text| text.split('&'))
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{method} {path}"))
}

impl Shared {
    /// The fault for a call of `operation`, if it fails.
    fn draw(&self, operation: &str) -> Option<Fault> {
        let mut chaos = lock(&self.chaos);
        if let Some(left) = chaos.outages.get_mut(operation).filter(|left| **left > 0) {
            *left -= 1;
            return Some(Fault::Unavailable);
        }
        let share = chaos.share.min(1.0);
        if share <= 0.0 || !chaos.rng.random_bool(share) {
            return None;
        }
        let index = chaos.rng.random_range(0..FAULTS.len());
        Some(FAULTS[index])
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let body: Bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::BAD_GATEWAY, ""),
    };
    let name = operation(
        parts.uri.query(),
        &body,
        parts.method.as_str(),
        parts.uri.path(),
    );
    *lock(&shared.tally).calls.entry(name.clone()).or_default() += 1;
    if lock(&shared.chaos).denied.contains(&name) {
        return access_denied(&name);
    }
    let fault = shared.draw(&name);
    if let Some(fault) = fault {
        *lock(&shared.tally).faults.entry((name, fault)).or_default() += 1;
    }
    match fault {
        Some(Fault::TooManyRequests) => {
            let mut response = status(StatusCode::TOO_MANY_REQUESTS, "slow down\n");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
            return response;
        }
        Some(Fault::ServerError) => {
            return status(StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>");
        }
        Some(Fault::Unavailable) => return status(StatusCode::SERVICE_UNAVAILABLE, ""),
        Some(Fault::Dropped) => return dropped(),
        Some(Fault::Stalled) => tokio::time::sleep(STALL).await,
        None => {}
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("{}{path}", shared.upstream).parse() {
        Ok(uri) => uri,
        Err(_) => return status(StatusCode::BAD_GATEWAY, ""),
    };
    match shared
        .client
        .request(Request::from_parts(parts, Body::from(body)))
        .await
    {
        Ok(response) => response.map(Body::new),
        Err(_) => status(StatusCode::BAD_GATEWAY, ""),
    }
}

/// AWS's answer to a query-protocol call the caller's policy does not allow.
fn access_denied(operation: &str) -> Response<Body> {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
         arn:aws:iam::123456789012:role/curfew is not authorized to perform: {operation}\
         </Message></Error><RequestId>denied</RequestId></ErrorResponse>"
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/xml"),
    );
    response
}

fn status(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response
}

/// An answer whose body breaks off: the client sees the connection fail mid-answer.
fn dropped() -> Response<Body> {
    let broken = futures::stream::iter([
        Ok(Bytes::from_static(b"{\"partial\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by the proxy",
        )),
    ]);
    let mut response = Response::new(Body::from_stream(broken));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
