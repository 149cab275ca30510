//! `curfew run --once` against the fake API server, found through `KUBECONFIG` as an operator
//! would configure it.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fixtures::{deployment, namespace};
use support::kube::{KubeHarness, MONDAY_NIGHT, OFFICE_HOURS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_finds_the_cluster_through_kubeconfig_and_scales_down_at_night() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).expect("writes");
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, OFFICE_HOURS).expect("writes");
    let state = dir.path().join("state");
    let args = [
        "run".to_string(),
        "--once".to_string(),
        "-c".to_string(),
        config.display().to_string(),
        "--at".to_string(),
        MONDAY_NIGHT.to_string(),
        "--state-dir".to_string(),
        state.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_curfew"))
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("runs")
    })
    .await
    .expect("joins");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("3".into()))
    );
}

/// Starts `curfew run` as replica `name` of an in-cluster deployment (the pod's namespace
/// from the downward API).
fn replica(name: &str, config: &Path, kubeconfig: &Path, state: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "--listen", "127.0.0.1:0", "-c"])
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

/// What replica `state` logged.
fn log_of(state: &Path) -> String {
    std::fs::read_to_string(state.with_extension("log")).unwrap_or_default()
}

/// Polls the Lease until its holder starts with `prefix` (`None`: until nobody holds it).
async fn wait_for_holder(
    h: &KubeHarness,
    prefix: Option<&str>,
    within: Duration,
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Down whatever the real date, so that the acting replica has something to do.
const ALWAYS_DOWN: &str = r#"
schedules:
  never: { uptime: ["never"] }
environments:
  staging:
    schedule: never
    targets:
      - kubernetes: { namespaces: [shop] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_in_a_cluster_one_leads_and_the_other_takes_over_on_shutdown() {
    let h = KubeHarness::start(ALWAYS_DOWN, MONDAY_NIGHT).await;
    h.server
        .set_now(chrono::Utc::now() - chrono::Duration::days(1));
    h.add([
        namespace("curfew"),
        namespace("shop"),
        deployment("shop", "web", 3),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).expect("writes");
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, ALWAYS_DOWN).expect("writes");

    let mut a = replica("replica-a", &config, &kubeconfig, &dir.path().join("a"));
    let holder = wait_for_holder(&h, Some("replica-a"), Duration::from_secs(20)).await;
    assert!(
        holder
            .as_deref()
            .is_some_and(|h| h.starts_with("replica-a")),
        "{holder:?}: {}",
        log_of(&dir.path().join("a"))
    );
    let mut b = replica("replica-b", &config, &kubeconfig, &dir.path().join("b"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let holder = wait_for_holder(&h, Some("replica-a"), Duration::from_secs(1)).await;
    assert!(
        holder
            .as_deref()
            .is_some_and(|h| h.starts_with("replica-a")),
        "b waits: {holder:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.replicas("deployments", "shop", "web").0 != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("3".into())),
        "the leader acts"
    );

    let terminated = Command::new("kill")
        .args(["-TERM", &a.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let status = tokio::task::spawn_blocking(move || a.wait())
        .await
        .expect("joins")
        .expect("waits");
    assert!(status.success(), "a stops cleanly: {status:?}");
    let holder = wait_for_holder(&h, Some("replica-b"), Duration::from_secs(15)).await;
    b.kill().expect("kills b");
    let _ = b.wait();
    assert!(
        holder
            .as_deref()
            .is_some_and(|h| h.starts_with("replica-b")),
        "{holder:?}"
    );
}
