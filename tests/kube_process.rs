//! `curfew run --once` against the fake API server, found through `KUBECONFIG` as an operator
//! would configure it.

mod support;

use std::process::Command;

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
