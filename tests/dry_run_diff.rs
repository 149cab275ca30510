//! `curfew run --once --dry-run` as a diff through the real binary: per environment and tier,
//! each target's current → desired, the exact write (the merge patch; the AWS operation and
//! its parameters) and why, as tables or `--json`; and no write of any kind, by the fake API
//! server's request log and by a count of every call that reached moto.

use crate::support::fixtures::{deployment, namespace};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, OFFICE_HOURS};
use crate::support::moto::{Moto, create_group, group_size, office_config};
use crate::support::process::run_to_end as curfew;
use crate::support::proxy::Proxy;
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dry_run_args(config: &std::path::Path, at: &str, state: &std::path::Path) -> Vec<String> {
    [
        "run",
        "--once",
        "--dry-run",
        "-c",
        &config.display().to_string(),
        "--at",
        at,
        "--state-dir",
        &state.display().to_string(),
    ]
    .map(str::to_string)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_dry_run_shows_the_merge_patch_per_tier_and_sends_no_write() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).unwrap();
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, OFFICE_HOURS).unwrap();
    let env = vec![("KUBECONFIG".to_string(), kubeconfig.display().to_string())];
    let args = dry_run_args(&config, MONDAY_NIGHT, &dir.path().join("state"));

    let output = curfew(args.clone(), env.clone()).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("nothing was written"), "{stdout}");
    assert!(stdout.contains("\n  workloads\n"), "{stdout}");
    let row = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("deployment/shop/web"))
        .unwrap_or_else(|| panic!("no row for the Deployment: {stdout}"));
    assert!(row.contains("3 replicas -> 0 replicas"), "{row}");
    assert!(
        row.contains("outside uptime 'Mon-Fri 07:00-20:00'"),
        "{row}"
    );
    let patch = stdout
        .lines()
        .find(|line| line.contains("PATCH apps/v1 Deployment shop/web (merge patch)"))
        .unwrap_or_else(|| panic!("no merge patch: {stdout}"));
    assert!(
        patch.contains(r#""curfew.dev/original-replicas":"3""#)
            && patch.contains(r#""spec":{"replicas":0}"#),
        "{patch}"
    );

    let mut json_args = args;
    json_args.push("--json".to_string());
    let output = curfew(json_args, env).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let diff: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let change = &diff["environments"][0]["tiers"][0]["changes"][0];
    assert_eq!(diff["environments"][0]["tiers"][0]["tier"], "workloads");
    assert_eq!(change["target"], "deployment/shop/web");
    assert_eq!(change["current"], "3 replicas");
    assert_eq!(change["desired"], "0 replicas");
    let write = &change["writes"][0];
    assert_eq!(write["body"]["spec"]["replicas"], 0);
    assert_eq!(
        write["body"]["metadata"]["annotations"]["curfew.dev/original-replicas"],
        "3"
    );

    let writes: Vec<_> = h
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb.is_write())
        .collect();
    assert!(writes.is_empty(), "dry runs wrote: {writes:?}");
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_dry_run_shows_each_operation_with_its_parameters_and_moto_sees_no_write() {
    let moto = Moto::start();
    create_group(&moto, "eu-central-1", "web", 1, 4, 2).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("curfew.yaml");
    std::fs::write(
        &config,
        office_config("      - aws_asg: { names: [web], region: eu-central-1 }\n"),
    )
    .unwrap();
    let env = moto.env_through(&proxy.url);
    let (saturday, _) = moto.weekend();
    let mut args = dry_run_args(&config, &saturday, &dir.path().join("state"));
    args.push("--json".to_string());

    let output = curfew(args, env).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let diff: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let tier = &diff["environments"][0]["tiers"][0];
    assert_eq!(tier["tier"], "nodes");
    let change = &tier["changes"][0];
    assert_eq!(change["target"], "auto_scaling_group/eu-central-1/web");
    let calls: Vec<&str> = change["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["call"].as_str().unwrap())
        .collect();
    assert_eq!(calls, ["CreateOrUpdateTags", "UpdateAutoScalingGroup"]);
    let resize = &change["writes"][1]["body"];
    assert_eq!(resize["AutoScalingGroupName"], "web");
    assert_eq!(resize["DesiredCapacity"], 0);
    assert_eq!(resize["MinSize"], 0);

    let tally = proxy.tally(false);
    assert!(
        tally.calls.contains_key("DescribeAutoScalingGroups"),
        "{:?}",
        tally.calls
    );
    let writes = proxy.writes();
    assert!(writes.is_empty(), "dry run sent {writes:?}");
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((1, 4, 2), None)
    );
}
