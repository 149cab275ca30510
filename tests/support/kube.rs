//! A curfew reconciler over the Kubernetes provider talking to a fake API server, with a
//! clock that jumps between instants and otherwise runs fast.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use curfew::clock::Clock;
use curfew::config::Config;
use curfew::domain::Capacity;
use curfew::overrides::FileOverrideStore;
use curfew::providers::Provider;
use curfew::providers::kube::{
    self as kube_provider, ClientRetries, KubeProvider, Settings as KubeSettings,
};
use curfew::reconciler::{PassReport, Reconciler, RetryPolicy, Settings};
use curfew::state::StateDir;
use serde_json::Value;

use super::fake_apiserver::{FakeApiServer, Request, Verb};

/// Clock time passes `SPEED` times faster than real time between jumps.
const SPEED: f64 = 60.0;

/// A clock set by jumps that runs `SPEED` times faster than real time in between.
pub struct JumpClock {
    base: Mutex<(DateTime<Utc>, Instant)>,
}

impl JumpClock {
    /// A clock at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        JumpClock {
            base: Mutex::new((now, Instant::now())),
        }
    }

    /// Jumps to `at`.
    pub fn jump(&self, at: DateTime<Utc>) {
        *self.base.lock().unwrap_or_else(|e| e.into_inner()) = (at, Instant::now());
    }
}

impl Clock for JumpClock {
    fn now(&self) -> DateTime<Utc> {
        let (at, since) = *self.base.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = since.elapsed().as_secs_f64() * SPEED;
        at + Duration::microseconds((elapsed * 1e6) as i64)
    }

    fn real_time_until(&self, at: DateTime<Utc>) -> StdDuration {
        let clock = (at - self.now()).num_microseconds().unwrap_or(0) as f64 / 1e6;
        StdDuration::from_secs_f64((clock / SPEED).max(0.0))
    }
}

/// An RFC 3339 instant.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid instant")
        .with_timezone(&Utc)
}

/// Office hours in Berlin for the namespaces `shop` and `team-*` (except `team-secret`).
pub const OFFICE_HOURS: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop, "team-*"], exclude_namespaces: [team-secret] }
"#;

/// Down whatever the real date, for `shop`: a process on the real clock has something to do.
pub const ALWAYS_DOWN: &str = r#"
schedules:
  never: { uptime: ["never"] }
environments:
  staging:
    schedule: never
    targets:
      - kubernetes: { namespaces: [shop] }
"#;

/// Monday 2026-11-30, 13:00 in Berlin: up.
pub const MONDAY_NOON: &str = "2026-11-30T12:00:00Z";
/// Monday 2026-11-30, 22:00 in Berlin: down.
pub const MONDAY_NIGHT: &str = "2026-11-30T21:00:00Z";
/// Tuesday 2026-12-01, 07:30 in Berlin: up.
pub const TUESDAY_MORNING: &str = "2026-12-01T06:30:00Z";

/// A fake API server, a configuration and a clock; providers and reconcilers are made on
/// demand, so a test can "kill" one and start another.
pub struct KubeHarness {
    /// The fake API server.
    pub server: FakeApiServer,
    /// The clock every reconciler decides with.
    pub clock: Arc<JumpClock>,
    /// The configuration.
    pub config: Arc<Config>,
    dir: tempfile::TempDir,
}

impl KubeHarness {
    /// A harness at `start` whose objects were created three days earlier.
    pub async fn start(yaml: &str, start: &str) -> KubeHarness {
        let server = FakeApiServer::start().await;
        let start = utc(start);
        server.set_now(start - Duration::days(3));
        let config =
            Config::from_yaml(yaml, Path::new("staging.yaml")).unwrap_or_else(|e| panic!("{e}"));
        KubeHarness {
            server,
            clock: Arc::new(JumpClock::new(start)),
            config: Arc::new(config),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Creates every object in `objects`.
    pub fn add(&self, objects: impl IntoIterator<Item = Value>) {
        for object in objects {
            self.server.add(object);
        }
    }

    /// A freshly started provider (its own watches).
    pub async fn provider(&self) -> Arc<KubeProvider> {
        self.provider_with(KubeSettings {
            sync_timeout: StdDuration::from_secs(10),
            ..KubeSettings::default()
        })
        .await
    }

    /// A freshly started provider with `settings`.
    pub async fn provider_with(&self, settings: KubeSettings) -> Arc<KubeProvider> {
        // As in the service: the reconciler retries the provider's calls, the client does not.
        let config = kube::Config::new(self.server.url().parse().expect("valid url"));
        let client = kube_provider::client(config, ClientRetries::Off).expect("client builds");
        let provider = KubeProvider::start(client, &self.config, self.clock.clone(), settings)
            .await
            .expect("provider starts");
        Arc::new(provider)
    }

    /// A reconciler over `provider` with fast retries.
    pub fn reconciler(&self, provider: Arc<KubeProvider>) -> Reconciler {
        let state = StateDir::open(self.dir.path()).expect("state dir");
        let overrides = Arc::new(FileOverrideStore::open(state).expect("override store"));
        let settings = Settings {
            retry: RetryPolicy {
                attempts: 6,
                base: StdDuration::from_millis(5),
                max: StdDuration::from_millis(50),
            },
            min_real_tick: StdDuration::ZERO,
            ..Settings::default()
        };
        Reconciler::new(
            self.config.clone(),
            provider,
            self.clock.clone(),
            overrides,
            settings,
        )
    }

    /// Jumps to `at` and runs one pass that must converge.
    pub async fn pass_at(&self, reconciler: &Reconciler, at: &str) -> PassReport {
        self.clock.jump(utc(at));
        let report = reconciler.reconcile().await.expect("pass runs");
        // Events are written apart from the pass: let them land before tests count them.
        reconciler.settle(StdDuration::from_secs(10)).await;
        assert!(
            report.converged(),
            "pass at {at} did not converge: {:?}",
            report.failures()
        );
        report
    }

    /// An object's `spec.replicas` and its stored original, read directly from the store.
    pub fn replicas(&self, plural: &str, namespace: &str, name: &str) -> (u64, Option<String>) {
        let object = self
            .server
            .get("apps", "v1", plural, namespace, name)
            .unwrap_or_else(|| panic!("{plural} {namespace}/{name} exists"));
        let replicas = object["spec"]["replicas"].as_u64().expect("has replicas");
        let original = object["metadata"]["annotations"]["curfew.dev/original-replicas"]
            .as_str()
            .map(str::to_string);
        (replicas, original)
    }

    /// Waits until `provider`'s watches show `target` at `capacity` (changes made behind its
    /// back reach it through the watch, a moment later).
    pub async fn observe(&self, provider: &KubeProvider, target: &str, capacity: Capacity) {
        let deadline = Instant::now() + StdDuration::from_secs(5);
        loop {
            let targets = provider.discover().await.expect("discovers").targets;
            let seen = targets.iter().find(|t| t.id == target).map(|t| t.capacity);
            if seen == Some(capacity) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{target} never seen at {capacity}: {seen:?}"
            );
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    }

    /// The PATCH requests to workloads logged so far (not the count of a repeated Event).
    pub fn patches(&self) -> Vec<Request> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.verb == Verb::Patch)
            .filter(|r| r.access.as_ref().is_none_or(|a| a.resource != "events"))
            .collect()
    }

    /// The number of Events with `reason` (written once the reconciler has settled).
    pub fn events(&self, reason: &str) -> usize {
        let store = self.server.store();
        let Some(rt) = store.resolve("", "v1", "events") else {
            return 0;
        };
        let selection = super::fake_apiserver::Selection::default();
        let (events, _) = store.list(&rt, None, &selection);
        events
            .iter()
            .filter(|e| e["reason"].as_str() == Some(reason))
            .count()
    }
}

// === curfew processes ===

/// Starts `curfew run` as replica `name` of an in-cluster deployment (the pod's namespace
/// from the downward API), its clock starting at `at`.
pub fn replica(name: &str, at: &str, config: &Path, kubeconfig: &Path, state: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "--at", at, "--listen", "127.0.0.1:0", "-c"])
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", "curfew")
        .env("HOSTNAME", name)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.with_extension("log")).expect("log file"))
        .spawn()
        .expect("starts")
}

/// Sends SIGTERM to `child` and waits for it to exit.
pub async fn terminate(mut child: Child) -> std::process::ExitStatus {
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joins")
        .expect("waits")
}

/// What replica `state` logged.
pub fn log_of(state: &Path) -> String {
    std::fs::read_to_string(state.with_extension("log")).unwrap_or_default()
}

/// Polls the Lease until its holder starts with `prefix` (`None`: until nobody holds it).
pub async fn wait_for_holder(
    h: &KubeHarness,
    prefix: Option<&str>,
    within: StdDuration,
) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let lease = h
            .server
            .get("coordination.k8s.io", "v1", "leases", "curfew", "curfew");
        let holder = lease.and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string));
        let matched = match (prefix, &holder) {
            (Some(prefix), Some(holder)) => holder.starts_with(prefix),
            (None, None) => true,
            _ => false,
        };
        if matched || Instant::now() > deadline {
            return holder;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}
