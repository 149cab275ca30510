//! The Kubernetes state backend against the fake API server through the real kube client:
//! the override store passes the same suite as the file store, its watch wakes the leader,
//! the audit log and the ledger live in ConfigMaps, and two `curfew run` replicas share them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fake_apiserver::FakeApiServer;
use crate::support::fixtures::{deployment, namespace, override_crd};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, utc};
use chrono::{DateTime, Utc};
use curfew::audit::{AuditEntry, AuditLog};
use curfew::calendar::State;
use curfew::domain::Override;
use curfew::overrides::{KubeOverrideStore, OverrideStore, conformance};
use curfew::state::{ConfigMapStore, DocumentStore};
use serde_json::Value;
use tokio::sync::Notify;

/// A fake API server with the `curfew` namespace and the Override CRD.
async fn cluster() -> FakeApiServer {
    let server = FakeApiServer::start().await;
    server.add(namespace("curfew"));
    server.add(override_crd());
    server
}

fn mk_override(id: &str, state: State) -> Override {
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    Override {
        id: id.to_string(),
        environment: "staging".to_string(),
        state,
        created_at: at,
        until: at + chrono::Duration::hours(2),
        reason: "release rehearsal".to_string(),
        created_by: "otto".to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_store_passes_the_store_suite() {
    let server = cluster().await;
    let client = server.client();
    conformance::check_store(&|| {
        Arc::new(KubeOverrideStore::start(
            client.clone(),
            "curfew",
            Arc::new(Notify::new()),
        )) as Arc<dyn OverrideStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_are_resources_that_kubectl_lists_with_their_columns() {
    let server = cluster().await;
    let store = KubeOverrideStore::start(server.client(), "curfew", Arc::new(Notify::new()));
    store
        .put(mk_override("0123456789ab", State::Up))
        .await
        .unwrap();
    let object = server
        .get("curfew.dev", "v1", "overrides", "curfew", "0123456789ab")
        .expect("stored as a resource");
    assert_eq!(object["kind"], "Override");
    assert_eq!(object["spec"]["environment"], "staging");
    assert_eq!(object["spec"]["state"], "up");
    assert_eq!(object["spec"]["createdBy"], "otto");
    assert_eq!(object["spec"]["until"], "2027-01-15T10:00:00Z");
    assert_eq!(
        object["metadata"]["labels"]["curfew.dev/environment"],
        "staging"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_created_by_another_replica_wakes_the_watcher_within_two_seconds() {
    let server = cluster().await;
    let changed = Arc::new(Notify::new());
    let leader = KubeOverrideStore::start(server.client(), "curfew", changed.clone());
    let follower = KubeOverrideStore::start(server.client(), "curfew", Arc::new(Notify::new()));
    assert!(leader.list().await.unwrap().is_empty());
    // The initial list may have left a wake-up behind; start from a quiet state.
    let _ = tokio::time::timeout(Duration::from_millis(300), changed.notified()).await;

    let started = Instant::now();
    follower.put(mk_override("a1", State::Up)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), changed.notified())
        .await
        .expect("a new override wakes the leader");
    assert_eq!(leader.list().await.unwrap().len(), 1);
    follower.remove("a1").await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), changed.notified())
        .await
        .expect("a cancelled override wakes the leader");
    assert!(started.elapsed() < Duration::from_secs(4));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !leader.list().await.unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(leader.list().await.unwrap().is_empty());
}

fn entry(actor: &str, n: i64) -> AuditEntry {
    AuditEntry {
        at: DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap_or_default(),
        actor: actor.into(),
        event: "override_created".into(),
        environment: "staging".into(),
        target: Some(format!("override/{actor}{n}")),
        before: None,
        after: None,
        reason: "test".into(),
        result: "ok".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_writing_the_audit_configmap_at_once_lose_no_entry() {
    let server = cluster().await;
    let documents: Arc<dyn DocumentStore> =
        Arc::new(ConfigMapStore::new(server.client(), "curfew"));
    let a = Arc::new(AuditLog::load(documents.clone()).await.unwrap());
    let b = Arc::new(AuditLog::load(documents.clone()).await.unwrap());
    let writers = [("a", a), ("b", b)].into_iter().map(|(actor, log)| {
        tokio::spawn(async move {
            for n in 0..10 {
                log.record([entry(actor, n)]).await.expect("records");
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
    let fresh = AuditLog::load(documents).await.unwrap();
    assert_eq!(fresh.len(), 20, "every entry of both replicas is kept");
    let map = server
        .get("", "v1", "configmaps", "curfew", "curfew-audit")
        .expect("the log is a ConfigMap");
    assert!(
        map["data"]["audit.json"]
            .as_str()
            .is_some_and(|t| t.len() < 1024 * 1024)
    );
}

// --- the shipped manifests ----------------------------------------------------------------

fn manifest(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes/base")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("manifest exists");
    serde_saphyr::from_str(&text).expect("manifest is YAML")
}

#[test]
fn the_shipped_deployment_runs_two_replicas_on_the_kubernetes_state_backend() {
    let deployment = manifest("deployment.yaml");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|v| v.get("emptyDir").is_none()),
        "no state on the pod's disk"
    );
    let config_map = manifest("configmap.yaml");
    let text = config_map["data"]["curfew.yaml"].as_str().expect("config");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("tokens.yaml"), "tokens: []\n").expect("writes");
    let path = dir.path().join("curfew.yaml");
    let config = curfew::config::Config::from_yaml(text, &path).expect("valid");
    assert!(matches!(
        &config.state,
        curfew::config::StateConfig::Kubernetes(k) if k.namespace == "curfew"
    ));
    let kustomization = manifest("kustomization.yaml");
    assert!(
        kustomization["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|f| f == "crd.yaml")),
        "the CRD is installed with the base"
    );
}

// --- two replicas as processes -------------------------------------------------------------

const ADMIN: &str = "admin-token-for-tests";

/// Down whatever the real date, state in the cluster, tokens from `{tokens}`.
fn config_text(tokens: &Path) -> String {
    format!(
        r#"
schedules:
  never: {{ uptime: ["never"] }}
environments:
  staging:
    schedule: never
    targets:
      - kubernetes: {{ namespaces: [shop] }}
state: {{ kubernetes: {{ namespace: curfew }} }}
server: {{ tokens_file: "{}" }}
"#,
        tokens.display()
    )
}

/// A running replica and the address it serves.
struct Replica {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
}

/// Starts `curfew run` as replica `name`, its clock starting at `at`, and waits for its
/// listening address.
fn replica(name: &str, at: DateTime<Utc>, config: &Path, kubeconfig: &Path, dir: &Path) -> Replica {
    let log = dir.join(format!("{name}.log"));
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut child = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "--at", &at, "--listen", "127.0.0.1:0", "-c"])
        .arg(config)
        .env("KUBECONFIG", kubeconfig)
        .env("HOSTNAME", name)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("reads");
    let addr = line
        .trim()
        .strip_prefix("curfew: listening on http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| {
            panic!(
                "no address in {line:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .to_string();
    Replica { child, addr, log }
}

impl Replica {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A replica still running when its test ends (a failed assertion) is killed, not left behind.
impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 request with the admin token; the status and the body.
fn request(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let token = format!("Bearer {ADMIN}");
    crate::support::http::send(
        addr,
        method,
        path,
        &[
            ("Authorization", &token),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
}

fn audit_events(addr: &str) -> Vec<(String, String)> {
    let (status, body) = request(addr, "GET", "/api/v1/audit?limit=500", None);
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    page["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn holder(h: &KubeHarness) -> Option<String> {
    let lease = h
        .server
        .get("coordination.k8s.io", "v1", "leases", "curfew", "curfew")?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

/// Polls `check` every 20 ms until it holds or `within` passes; whether it held.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stored ledger's seconds accounted for staging, and the instant it accounts to.
fn ledger(h: &KubeHarness) -> Option<(f64, DateTime<Utc>)> {
    let map = h
        .server
        .get("", "v1", "configmaps", "curfew", "curfew-ledger")?;
    let ledger: Value = serde_json::from_str(map["data"]["ledger.json"].as_str()?).ok()?;
    let seconds = ledger["environments"]["staging"]["total"]["seconds"].as_f64()?;
    let to = ledger["accounted_to"].as_str()?.parse().ok()?;
    Some((seconds, to))
}

fn stop(replica: &mut Replica) {
    let terminated = Command::new("kill")
        .args(["-TERM", &replica.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let status = replica.child.wait().expect("waits");
    assert!(
        status.success(),
        "stops cleanly: {status:?}\n{}",
        replica.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_overrides_audit_and_ledger_through_the_cluster() {
    let h = KubeHarness::start(crate::support::kube::OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([
        namespace("curfew"),
        namespace("shop"),
        deployment("shop", "web", 3),
        override_crd(),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).expect("writes");
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "tokens:\n  - {{ name: root, role: admin, environments: ['*'], sha256: {} }}\n",
            curfew::api::auth::sha256_hex(ADMIN)
        ),
    )
    .expect("writes");
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("restricts the tokens file");
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, config_text(&tokens)).expect("writes");

    // Each replica's clock starts at Monday night as the first replica's reads it (the
    // follower's a second ahead, below).
    let started = Instant::now();
    let clock_of_a = || utc(MONDAY_NIGHT) + chrono::Duration::from_std(started.elapsed()).unwrap();
    let mut a = replica("replica-a", clock_of_a(), &config, &kubeconfig, dir.path());
    let leads = eventually(Duration::from_secs(20), || {
        holder(&h).is_some_and(|id| id.starts_with("replica-a"))
    })
    .await;
    assert!(leads, "a leads: {}", a.log());
    assert!(
        eventually(Duration::from_secs(10), || h
            .replicas("deployments", "shop", "web")
            .0
            == 0)
        .await,
        "the leader scales down: {}",
        a.log()
    );
    // The follower's clock runs a second ahead of the leader's, as two machines' clocks may:
    // the override it creates starts in the leader's future, and the leader applies it then.
    let mut b = replica(
        "replica-b",
        clock_of_a() + chrono::Duration::seconds(1),
        &config,
        &kubeconfig,
        dir.path(),
    );
    assert!(
        eventually(Duration::from_secs(10), || request(
            &b.addr, "GET", "/readyz", None
        )
        .0 == 200)
        .await,
        "a follower serving the shared state is ready: {}",
        b.log()
    );

    // An override through the follower is applied by the leader.
    let created = Instant::now();
    let (status, body) = request(
        &b.addr,
        "POST",
        "/api/v1/overrides",
        Some(&serde_json::json!({
            "environment": "staging", "state": "up", "duration": "2h",
            "reason": "demo for the customer"
        })),
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        eventually(Duration::from_secs(5), || h
            .replicas("deployments", "shop", "web")
            .0
            == 3)
        .await,
        "the leader applies the follower's override:\n--- leader ---\n{}\n--- follower ---\n{}",
        a.log(),
        b.log()
    );
    let applied_after = created.elapsed();
    eprintln!("override through the follower applied by the leader after {applied_after:?}");
    assert!(applied_after < Duration::from_secs(3), "{applied_after:?}");
    let (status, body) = request(&a.addr, "GET", "/api/v1/overrides", None);
    assert_eq!(status, 200);
    assert!(body.contains("demo for the customer"), "{body}");

    // The pass records its actions once they are done, a moment after the scale is visible.
    let expected = [
        ("scale_down", "curfew"),
        ("override_created", "root"),
        ("scale_up", "curfew"),
    ]
    .map(|(event, actor)| (event.to_string(), actor.to_string()));
    // Polled slowly: the API limits each token's request rate.
    let mut recorded = false;
    for _ in 0..100 {
        let events = audit_events(&a.addr);
        recorded = expected.iter().all(|e| events.contains(e));
        if recorded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recorded, "{expected:?} in {:?}", audit_events(&a.addr));
    let before = eventually(Duration::from_secs(5), || ledger(&h).is_some()).await;
    assert!(before, "the leader keeps the ledger in a ConfigMap");

    // The leader goes; the follower takes over the books and the log.
    stop(&mut a);
    let (seconds_before, accounted_before) = ledger(&h).expect("flushed on shutdown");
    let took_over = eventually(Duration::from_secs(20), || {
        holder(&h).is_some_and(|id| id.starts_with("replica-b"))
    })
    .await;
    assert!(took_over, "b takes over: {}", b.log());
    assert!(
        eventually(Duration::from_secs(10), || ledger(&h)
            .is_some_and(|(_, to)| to > accounted_before))
        .await,
        "the new leader writes the ledger: {}",
        b.log()
    );
    let (seconds_after, _) = ledger(&h).expect("stored");
    assert!(
        seconds_after >= seconds_before,
        "the books continue: {seconds_before} -> {seconds_after}"
    );
    let events = audit_events(&b.addr);
    assert!(
        events.contains(&("scale_down".to_string(), "curfew".to_string())),
        "the old leader's entries survive: {events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(e, _)| e == "override_created")
            .count(),
        1,
        "{events:?}"
    );
    let _ = b.child.kill();
    let _ = b.child.wait();
}
