//! Errors an operator meets first, through the real binary: no AWS credentials, an AWS
//! endpoint that cannot be reached, no kubeconfig, a write the IAM policy or the RBAC role
//! refuses. Each is one short line with the operation, the resource, the error code and a
//! hint; no debug dumps.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::fake_apiserver::{Fault, Verb};
use crate::support::fixtures::{deployment, namespace};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, OFFICE_HOURS};
use crate::support::moto::{Moto, create_group};
use crate::support::proxy::Proxy;

/// Longest stderr line allowed in these failure cases.
const LONGEST_LINE: usize = 300;

/// `run --once` on `targets` (YAML list items) on Saturday noon, with only `env` set, plus a
/// private HOME so that no `~/.aws` or `~/.kube` of the machine is read.
fn run_once(dir: &Path, targets: &str, env: &[(&str, &str)]) -> Output {
    run_once_at(dir, targets, env, "2026-12-05T12:00:00Z")
}

/// [`run_once`] at `at`.
fn run_once_at(dir: &Path, targets: &str, env: &[(&str, &str)], at: &str) -> Output {
    let config = dir.join("curfew.yaml");
    std::fs::write(
        &config,
        format!(
            "timezone: Europe/Berlin\nschedules:\n  office: {{ uptime: [\"Mon-Fri 07:00-20:00\"] }}\nenvironments:\n  staging:\n    schedule: office\n    targets:\n{targets}"
        ),
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "-c"])
        .arg(&config)
        .args(["--once", "--at", at, "--state-dir"])
        .arg(dir.join("state"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Asserts a failed run whose stderr has short lines only, none of them debug text.
fn assert_short_failure(output: &Output) -> String {
    assert_failure_lines(output, |_| true)
}

/// Asserts a failed run whose stderr has no debug text, and whose lines that `short` picks
/// are short.
fn assert_failure_lines(output: &Output, short: impl Fn(&str) -> bool) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for line in stderr.lines() {
        assert!(
            !short(line) || line.chars().count() <= LONGEST_LINE,
            "a {}-character line: {line}",
            line.chars().count()
        );
        for debug in ["DispatchFailure {", "ConnectorError {", "Some(", "source:"] {
            assert!(!line.contains(debug), "debug text in: {line}");
        }
    }
    stderr
}

const ASG: &str = "      - aws_asg: { names: [staging-nodes], region: eu-central-1 }\n";

#[test]
fn an_aws_target_without_credentials_fails_in_one_line_naming_the_variables_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_once(dir.path(), ASG, &[("AWS_REGION", "eu-central-1")]);
    let stderr = assert_short_failure(&output);
    let line = stderr
        .lines()
        .find(|line| line.contains("NoCredentials") && line.contains("hint:"))
        .unwrap_or_else(|| panic!("no NoCredentials line with a hint: {stderr}"));
    assert!(line.contains("DescribeAutoScalingGroups"), "{line}");
    assert!(line.contains("hint:"), "{line}");
    assert!(
        line.contains("AWS_ACCESS_KEY_ID") && line.contains("AWS_PROFILE"),
        "{line}"
    );
}

#[test]
fn an_unreachable_aws_endpoint_fails_in_one_line_pointing_at_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1: outside the range the system hands out for port 0, which every server the
    // suite starts asks for, so nothing listens there (a port bound and released could be
    // taken by a server of a test running meanwhile).
    let output = run_once(
        dir.path(),
        ASG,
        &[
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    let stderr = assert_short_failure(&output);
    let line = stderr
        .lines()
        .find(|line| line.contains("Unreachable") && line.contains("hint:"))
        .unwrap_or_else(|| panic!("no Unreachable line with a hint: {stderr}"));
    assert!(line.contains("DescribeAutoScalingGroups"), "{line}");
    assert!(
        line.contains("hint:") && line.contains("AWS_ENDPOINT_URL"),
        "{line}"
    );
}

#[test]
fn a_kubernetes_target_without_a_kubeconfig_fails_with_a_hint_naming_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let output = run_once(
        dir.path(),
        "      - kubernetes: { namespaces: [shop] }\n",
        &[("KUBECONFIG", missing.to_str().unwrap())],
    );
    let stderr = assert_short_failure(&output);
    let line = stderr
        .lines()
        .find(|line| line.contains("no Kubernetes configuration"))
        .unwrap_or_else(|| panic!("no line about the configuration: {stderr}"));
    assert!(
        line.contains("hint:") && line.contains("KUBECONFIG"),
        "{line}"
    );
}

/// Whether `line` is not the log record of a failed action. That record carries the action's
/// environment, target, capacities before and after, reason and outcome as well as the
/// error, for log pipelines, and runs past 300 characters with an AWS message; the summary
/// line with the hint must be short.
fn not_an_action_record(line: &str) -> bool {
    !line.contains("scale action failed")
}

/// [`run_once_at`] off the test's runtime, with owned arguments.
async fn run_once_owned(targets: &str, env: Vec<(String, String)>, at: &str) -> Output {
    let (targets, at) = (targets.to_string(), at.to_string());
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_once_at(dir.path(), &targets, &env, &at)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_write_the_policy_refuses_fails_in_one_line_naming_the_iam_action() {
    let moto = Moto::start();
    create_group(&moto, "eu-central-1", "staging-nodes", 1, 4, 2).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.deny("UpdateAutoScalingGroup");
    let (saturday, _) = moto.weekend();
    let output = run_once_owned(ASG, moto.env_through(&proxy.url), &saturday).await;
    let stderr = assert_failure_lines(&output, not_an_action_record);
    let line = stderr
        .lines()
        .find(|line| line.contains("AccessDenied") && line.contains("hint:"))
        .unwrap_or_else(|| panic!("no AccessDenied line with a hint: {stderr}"));
    assert!(line.contains("staging-nodes"), "{line}");
    assert!(
        line.contains("allow autoscaling:UpdateAutoScalingGroup in the IAM policy"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_write_the_role_refuses_fails_in_one_line_naming_the_rbac_verb() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    h.server.inject(Some(Verb::Patch), Fault::Forbidden, None);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).unwrap();
    let env = vec![("KUBECONFIG".to_string(), kubeconfig.display().to_string())];
    let output = run_once_owned(
        "      - kubernetes: { namespaces: [shop] }\n",
        env,
        MONDAY_NIGHT,
    )
    .await;
    let stderr = assert_failure_lines(&output, not_an_action_record);
    let line = stderr
        .lines()
        .find(|line| line.contains("deployment/shop/web") && line.contains("hint:"))
        .unwrap_or_else(|| panic!("no line for the Deployment with a hint: {stderr}"));
    assert!(line.contains("403"), "{line}");
    assert!(line.contains("the `patch` verb on deployments"), "{line}");
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
}
