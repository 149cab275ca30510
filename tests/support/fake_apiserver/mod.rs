//! A fake Kubernetes API server for tests, served over HTTP/1.1 on loopback to the real kube
//! client.
//!
//! It keeps the semantics curfew relies on honestly: a global resourceVersion bumped per
//! write, 409 on a stale resourceVersion, 404 on missing objects, label and field selectors,
//! merge and JSON patches, the `/scale` subresource, watches with bookmarks and 410 Gone past
//! a bounded history, uids, creation timestamps, generations, and workload status following
//! `spec.replicas` (at once or after a delay). CustomResourceDefinitions register their types
//! for discovery. Faults (429 with Retry-After, 500, latency) are set at run time, and every
//! request is logged with its verb and, as the authorizer would see it, the group, resource,
//! namespace and name it accesses.
//!
//! * `request_info` — requests as RBAC sees them.
//! * `resources` — served types and discovery documents.
//! * `store` — objects, versions, history and the pretend workload controller.
//! * `patch` — merge and JSON patches.
//! * `http` — routing, verbs, faults, watch streams.

mod http;
mod patch;
mod request_info;
mod resources;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{Method, Uri};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use self::request_info::Access;
pub use self::store::{Change, Selection, Store};

/// The kind of request, as in Kubernetes audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object (or discovery).
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// Whether the verb changes anything.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
        )
    }
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its verb.
    pub verb: Verb,
    /// What it accesses, for a resource request; `None` for discovery and `/version`.
    pub access: Option<Access>,
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The body of writes (empty for reads).
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests with a Retry-After header.
    TooManyRequests {
        /// Seconds in the Retry-After header.
        retry_after_secs: u64,
    },
    /// 500 Internal Server Error.
    ServerError,
    /// 403 Forbidden, as the API server answers a service account whose role lacks the verb.
    Forbidden,
}

#[derive(Debug, Clone)]
struct FaultRule {
    verb: Option<Verb>,
    fault: Fault,
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
struct Faults {
    rules: Vec<FaultRule>,
    latency: Duration,
}

/// State shared by the handlers.
pub struct Shared {
    store: Arc<Store>,
    log: Mutex<Vec<Request>>,
    faults: Mutex<Faults>,
    bookmark_interval: Mutex<Duration>,
    watches_paused: AtomicBool,
    /// Nanoseconds spent in request handlers.
    busy_nanos: std::sync::atomic::AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn log(&self, (verb, access): (Verb, Option<Access>), method: &Method, uri: &Uri, body: &[u8]) {
        lock(&self.log).push(Request {
            verb,
            access,
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            body: if verb.is_write() {
                String::from_utf8_lossy(body).into_owned()
            } else {
                String::new()
            },
            at: Instant::now(),
        });
    }

    fn add_busy(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn latency(&self) -> Duration {
        lock(&self.faults).latency
    }

    fn watches_paused(&self) -> bool {
        self.watches_paused.load(Ordering::Acquire)
    }

    fn bookmark_interval(&self) -> Duration {
        *lock(&self.bookmark_interval)
    }

    /// The fault for this request, if a rule applies; counted rules run out.
    fn draw_fault(&self, verb: Verb) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let rule = faults
            .rules
            .iter_mut()
            .find(|r| r.verb.is_none_or(|v| v == verb) && r.remaining != Some(0))?;
        if let Some(remaining) = &mut rule.remaining {
            *remaining -= 1;
        }
        Some(rule.fault)
    }
}

/// A running fake API server; stops when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

// === impl FakeApiServer ===

impl FakeApiServer {
    /// Starts a server on `127.0.0.1:0` with an empty store.
    pub async fn start() -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds loopback");
        let addr = listener.local_addr().expect("has an address");
        let shared = Arc::new(Shared {
            store: Store::new(),
            log: Mutex::default(),
            faults: Mutex::default(),
            bookmark_interval: Mutex::new(Duration::from_millis(500)),
            watches_paused: AtomicBool::new(false),
            busy_nanos: std::sync::atomic::AtomicU64::new(0),
        });
        let router = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeApiServer { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client talking to this server, configured as `kube::Config::new` does (so it
    /// retries 429, 503 and 504 by itself).
    pub fn client(&self) -> kube::Client {
        let url = self.url().parse().expect("valid url");
        let config = kube::Config::new(url);
        kube::Client::try_from(config).expect("client builds")
    }

    /// A kubeconfig file's text pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url()
        )
    }

    /// The object store, for direct reads and writes that bypass HTTP (and the log).
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).clone()
    }

    /// The number of requests so far with `verb`.
    pub fn count(&self, verb: Verb) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.verb == verb)
            .count()
    }

    /// Every distinct resource access so far, as RBAC sees them (non-resource requests such
    /// as discovery are left out).
    pub fn accesses(&self) -> std::collections::BTreeSet<Access> {
        lock(&self.shared.log)
            .iter()
            .filter_map(|r| r.access.clone())
            .collect()
    }

    /// The paths of the non-resource requests so far (discovery, `/version`).
    pub fn non_resource_paths(&self) -> std::collections::BTreeSet<String> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.access.is_none())
            .map(|r| r.path.clone())
            .collect()
    }

    /// Time spent in request handlers since the last [`FakeApiServer::clear_requests`]: what
    /// the fake itself costs (parsing, patching, serialising), apart from its clients.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.shared.busy_nanos.load(Ordering::Relaxed))
    }

    /// Forgets the logged requests (and the busy time).
    pub fn clear_requests(&self) {
        self.shared.busy_nanos.store(0, Ordering::Relaxed);
        lock(&self.shared.log).clear();
    }

    /// Answers the next `times` requests with `verb` (every verb when `None`) with `fault`;
    /// `times: None` keeps failing until [`FakeApiServer::clear_faults`].
    pub fn inject(&self, verb: Option<Verb>, fault: Fault, times: Option<u32>) {
        lock(&self.shared.faults).rules.push(FaultRule {
            verb,
            fault,
            remaining: times,
        });
    }

    /// Removes every fault and the added latency.
    pub fn clear_faults(&self) {
        *lock(&self.shared.faults) = Faults::default();
    }

    /// Delays every request by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.faults).latency = latency;
    }

    /// How often watches with bookmarks allowed receive a BOOKMARK.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *lock(&self.shared.bookmark_interval) = interval.max(Duration::from_millis(1));
    }

    /// Holds back (or, with `false`, releases) every open watch's events, so that watch
    /// caches go stale on purpose.
    pub fn pause_watches(&self, paused: bool) {
        self.shared.watches_paused.store(paused, Ordering::Release);
    }

    /// Stamps new objects with `now` (for grace periods under a manual clock).
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.shared.store.set_now(now);
    }

    /// Creates an object directly (namespace from its metadata, `""` for cluster-scoped).
    pub fn create(&self, group: &str, version: &str, plural: &str, object: Value) -> Value {
        let rt = self
            .shared
            .store
            .resolve(group, version, plural)
            .unwrap_or_else(|| panic!("{group}/{version}/{plural} is not served"));
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.shared
            .store
            .create(&rt, &namespace, &object)
            .unwrap_or_else(|e| panic!("create failed: {e:?}"))
            .as_ref()
            .clone()
    }

    /// Creates an object directly, its type found from `apiVersion` and `kind`.
    pub fn add(&self, object: Value) -> Value {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let rt = self
            .shared
            .store
            .types()
            .into_iter()
            .find(|rt| rt.api_version() == api_version && rt.kind == kind)
            .unwrap_or_else(|| panic!("{api_version} {kind} is not served"));
        self.create(&rt.group, &rt.version, &rt.plural, object)
    }

    /// Reads an object directly; `None` if missing.
    pub fn get(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let rt = self.shared.store.resolve(group, version, plural)?;
        self.shared.store.get(&rt, namespace, name, None).ok()
    }

    /// Merge-patches an object directly, as another client (a person with kubectl) would.
    pub fn merge_patch(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> Value {
        let rt = self
            .shared
            .store
            .resolve(group, version, plural)
            .unwrap_or_else(|| panic!("{group}/{version}/{plural} is not served"));
        self.shared
            .store
            .update(&rt, namespace, name, None, Change::Merge(&patch))
            .unwrap_or_else(|e| panic!("patch failed: {e:?}"))
            .as_ref()
            .clone()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
