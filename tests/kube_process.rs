//! `curfew run --once` against the fake API server, found through `KUBECONFIG` as an operator
//! would configure it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::fixtures::{deployment, namespace};
use crate::support::kube::{
    ALWAYS_DOWN, KubeHarness, MONDAY_NIGHT, OFFICE_HOURS, log_of, replica, terminate,
    wait_for_holder,
};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_in_a_cluster_one_leads_and_the_other_takes_over_on_shutdown() {
    let h = KubeHarness::start(ALWAYS_DOWN, MONDAY_NIGHT).await;
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

    let a = replica(
        "replica-a",
        MONDAY_NIGHT,
        &config,
        &kubeconfig,
        &dir.path().join("a"),
    );
    let holder = wait_for_holder(&h, Some("replica-a"), Duration::from_secs(20)).await;
    assert!(
        holder
            .as_deref()
            .is_some_and(|h| h.starts_with("replica-a")),
        "{holder:?}: {}",
        log_of(&dir.path().join("a"))
    );
    let mut b = replica(
        "replica-b",
        MONDAY_NIGHT,
        &config,
        &kubeconfig,
        &dir.path().join("b"),
    );
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

    let status = terminate(a).await;
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
