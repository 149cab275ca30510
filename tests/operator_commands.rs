//! Commands for operators, through the real binary: `explain` (standalone against the fake
//! API server, and against a running service), `simulate --discover` (read-only against
//! moto), JSON logs with simulated time in the demo, and `version`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::demo::Demo;
use crate::support::fixtures::{deployment, namespace, override_crd, override_resource};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, OFFICE_HOURS};
use crate::support::moto::{Moto, create_group, group_size, office_config};
use crate::support::process::run_to_end as curfew;
use crate::support::proxy::Proxy;
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_standalone_shows_the_rule_each_target_and_the_next_change_and_writes_nothing() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).unwrap();
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, OFFICE_HOURS).unwrap();
    let env = vec![("KUBECONFIG".to_string(), kubeconfig.display().to_string())];
    let config = config.display().to_string();

    let output = curfew(
        strings(&["explain", "staging", "-c", &config, "--at", MONDAY_NIGHT]),
        env.clone(),
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.starts_with("staging at Mon 2026-11-30 22:00 CET: down\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "why       outside uptime 'Mon-Fri 07:00-20:00' (schedule office-hours, Europe/Berlin)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("deployment/shop/web  3 replicas -> 0 replicas  (would scale down)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("next      Tue 2026-12-01 07:00 CET  up  uptime 'Mon-Fri 07:00-20:00'"),
        "{stdout}"
    );

    let output = curfew(
        strings(&[
            "explain",
            "staging",
            "-c",
            &config,
            "--at",
            MONDAY_NIGHT,
            "--json",
        ]),
        env.clone(),
    )
    .await;
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["state"], "down");
    assert_eq!(document["targets"][0]["desired"], "0 replicas");
    assert_eq!(
        document["next_transitions"][0]["at"],
        "2026-12-01T06:00:00Z"
    );

    let output = curfew(
        strings(&["explain", "nowhere", "-c", &config, "--at", MONDAY_NIGHT]),
        env,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no environment 'nowhere'"));
    assert!(h.server.requests().iter().all(|r| !r.verb.is_write()));
}

/// `OFFICE_HOURS` with its overrides kept as `Override` resources in the `curfew` namespace.
const OFFICE_HOURS_KUBE_STATE: &str = r#"
timezone: Europe/Berlin
state: { kubernetes: { namespace: curfew } }
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop] }
"#;

/// An override keeping staging up on Monday night from 21:30 to 02:00 in Berlin.
const KEPT_UP: (&str, &str) = ("2026-11-30T20:30:00Z", "2026-12-01T01:00:00Z");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_standalone_applies_the_overrides_the_service_stored() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        deployment("shop", "web", 3),
        namespace("curfew"),
        override_crd(),
        override_resource("curfew", "a1b2c3d4e5f6", "staging", "up", KEPT_UP),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).unwrap();
    let env = vec![("KUBECONFIG".to_string(), kubeconfig.display().to_string())];
    let explain = |config: &std::path::Path, extra: &[&str]| {
        let mut args = strings(&["explain", "staging", "-c"]);
        args.push(config.display().to_string());
        args.extend(strings(&["--at", MONDAY_NIGHT]));
        args.extend(strings(extra));
        curfew(args, env.clone())
    };
    let kept_up = |stdout: &str| {
        assert!(
            stdout.starts_with("staging at Mon 2026-11-30 22:00 CET: up\n"),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "overrides up until Tue 2026-12-01 02:00 CET by otto: release rehearsal\n"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains("deployment/shop/web  3 replicas -> 3 replicas  (converged)"),
            "{stdout}"
        );
        assert!(
            stdout.contains("next      Tue 2026-12-01 02:00 CET  down"),
            "{stdout}"
        );
    };

    // State in the cluster: the Override resources are listed, read-only.
    let config = dir.path().join("kube-state.yaml");
    std::fs::write(&config, OFFICE_HOURS_KUBE_STATE).unwrap();
    let output = explain(&config, &[]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    kept_up(&stdout);

    // State in a directory: the same override in the file the service keeps.
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let stored = curfew::domain::Override {
        id: "a1b2c3d4e5f6".to_string(),
        environment: "staging".to_string(),
        state: curfew::calendar::State::Up,
        created_at: KEPT_UP.0.parse().unwrap(),
        until: KEPT_UP.1.parse().unwrap(),
        reason: "release rehearsal".to_string(),
        created_by: "otto".to_string(),
    };
    std::fs::write(
        state.join("overrides.json"),
        serde_json::to_vec(&[stored]).unwrap(),
    )
    .unwrap();
    let config = dir.path().join("file-state.yaml");
    std::fs::write(&config, OFFICE_HOURS).unwrap();
    let state_dir = state.display().to_string();
    let output = explain(&config, &["--state-dir", &state_dir]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    kept_up(&stdout);

    // Without the state directory the calendar decides alone.
    let output = explain(
        &config,
        &[
            "--state-dir",
            &dir.path().join("none").display().to_string(),
        ],
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(": down\n  why ") && stdout.contains("overrides none"),
        "{stdout}"
    );

    // A corrupt file is said, and the exit status is 1.
    std::fs::write(state.join("overrides.json"), "{").unwrap();
    let output = explain(&config, &["--state-dir", &state_dir]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("overrides not read: "),
        "{}",
        text(&output.stdout)
    );
    assert!(h.server.requests().iter().all(|r| !r.verb.is_write()));
}

#[test]
fn explain_asks_a_running_service_for_its_decision_and_next_changes() {
    let state = tempfile::tempdir().unwrap();
    let demo = Demo::start(state.path(), "1");
    demo.wait_ready();
    let server = format!("http://{}", demo.addr);
    let output = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["explain", "staging-eu", "--server", &server])
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    // The demo starts on Tuesday 06:30 in Berlin: down until 07:00.
    assert!(
        stdout.starts_with("staging-eu at Tue 2026-12-01 06:3"),
        "{stdout}"
    );
    assert!(stdout.contains(": down\n"), "{stdout}");
    assert!(
        stdout.contains("(schedule berlin-office, Europe/Berlin)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("next      Tue 2026-12-01 07:00 CET  up"),
        "{stdout}"
    );
    // Each target as the service's latest pass saw it: down, as the night asks.
    let targets = stdout
        .split_once("  targets\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no targets: {stdout}"));
    assert!(
        targets.contains("down (") && targets.contains("-> down"),
        "{stdout}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["explain", "nowhere", "--server", &server])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_discover_prices_the_real_groups_for_a_month_without_writing() {
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
    let config = config.display().to_string();
    let output = curfew(
        strings(&[
            "simulate",
            "-c",
            &config,
            "--discover",
            "--month",
            "2026-12",
            "--json",
        ]),
        env.clone(),
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let forecast: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(forecast["from"], "2026-12-01T00:00:00Z");
    assert_eq!(forecast["to"], "2027-01-01T00:00:00Z");
    let staging = &forecast["environments"][0];
    let (up, down) = (
        staging["hours_up"].as_f64().unwrap(),
        staging["hours_down"].as_f64().unwrap(),
    );
    assert_eq!(up + down, 744.0);
    // 23 weekdays of 13 hours in December 2026.
    assert_eq!(up, 23.0 * 13.0);
    let (with, without) = (
        staging["cost_with_schedule"].as_f64().unwrap(),
        staging["cost_without_schedule"].as_f64().unwrap(),
    );
    assert!(without > 0.0, "{forecast}");
    // Down at zero instances: the schedule pays for the hours up only.
    assert!((with - without * up / 744.0).abs() < 1e-6, "{forecast}");
    let kind = &staging["by_kind"][0];
    assert_eq!(kind["kind"], "auto_scaling_group");
    assert_eq!(kind["targets"], 1);

    let output = curfew(
        strings(&[
            "simulate",
            "-c",
            &config,
            "--discover",
            "--month",
            "2026-12",
        ]),
        env,
    )
    .await;
    let table = text(&output.stdout);
    assert!(table.contains("auto_scaling_group"), "{table}");

    assert!(
        proxy
            .tally(false)
            .calls
            .contains_key("DescribeAutoScalingGroups")
    );
    let writes = proxy.writes();
    assert!(writes.is_empty(), "simulate sent {writes:?}");
    assert_eq!(
        group_size(&moto, "eu-central-1", "web").await,
        ((1, 4, 2), None)
    );
}

/// The first line the demo logs in `format` that `is_action` picks, within a minute.
fn first_demo_action_line(format: &str, is_action: impl Fn(&str) -> bool) -> String {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args([
            "demo",
            "--speed",
            "3600",
            "--listen",
            "127.0.0.1:0",
            "--start",
            crate::support::demo::START,
            "--state-dir",
        ])
        .arg(state.path())
        .env("CURFEW_LOG_FORMAT", format)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut action = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if is_action(&line) {
            action = Some(line);
            break;
        }
        assert!(Instant::now() < deadline, "no action logged in time");
    }
    let _ = child.kill();
    let _ = child.wait();
    action.expect("an action line")
}

#[test]
fn json_logs_carry_each_actions_environment_before_after_reason_outcome_and_simulated_time() {
    let line = first_demo_action_line("json", |line| {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        event["message"] == "scaled"
    });
    let action: Value = serde_json::from_str(&line).unwrap();
    for field in [
        "time",
        "simulated_time",
        "environment",
        "target",
        "before",
        "after",
        "reason",
    ] {
        assert!(action[field].is_string(), "{field} missing: {action}");
    }
    assert_eq!(action["outcome"], "ok");
    assert!(
        action["simulated_time"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-01T"),
        "{action}"
    );
}

#[test]
fn text_logs_carry_the_simulated_time_after_the_real_one_and_each_actions_fields() {
    let line = first_demo_action_line("text", |line| line.contains(" scaled "));
    let (real, rest) = line.split_once(' ').expect("a timestamp first");
    assert!(real.ends_with('Z') && real.contains('T'), "{line}");
    let simulated = rest
        .split_whitespace()
        .find_map(|field| field.strip_prefix("sim="))
        .unwrap_or_else(|| panic!("no sim= field: {line}"));
    assert!(simulated.starts_with("2026-12-01T"), "{line}");
    for field in [
        "environment=",
        "target=",
        "before=",
        "after=",
        "reason=",
        "outcome=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_discover_prices_the_real_workloads_for_a_month_without_writing() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        deployment("shop", "web", 3),
        deployment("shop", "api", 2),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).unwrap();
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, OFFICE_HOURS).unwrap();
    let env = vec![("KUBECONFIG".to_string(), kubeconfig.display().to_string())];
    let config = config.display().to_string();
    let args = [
        "simulate",
        "-c",
        &config,
        "--discover",
        "--month",
        "2026-12",
    ];
    let mut json_args = strings(&args);
    json_args.push("--json".to_string());
    let output = curfew(json_args, env.clone()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let forecast: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let staging = &forecast["environments"][0];
    let kind = &staging["by_kind"][0];
    assert_eq!(kind["kind"], "deployment", "{forecast}");
    assert_eq!(kind["targets"], 2, "{forecast}");
    let (up, with, without) = (
        staging["hours_up"].as_f64().unwrap(),
        staging["cost_with_schedule"].as_f64().unwrap(),
        staging["cost_without_schedule"].as_f64().unwrap(),
    );
    assert_eq!(up, 23.0 * 13.0);
    // Five pods asking for 250m and 256 MiB each cost something always on, and the schedule
    // pays for the hours up only.
    assert!(without > 0.0, "{forecast}");
    assert!((with - without * up / 744.0).abs() < 1e-6, "{forecast}");

    let output = curfew(strings(&args), env).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("deployment"));
    let writes: Vec<_> = h
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb.is_write())
        .collect();
    assert!(writes.is_empty(), "simulate wrote: {writes:?}");
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
}

#[test]
fn version_names_the_commit_the_providers_and_the_zone_data() {
    let output = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .arg("version")
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("curfew {}", env!("CARGO_PKG_VERSION")));
    let commit = lines[1].strip_prefix("commit ").expect("a commit line");
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    assert!(
        lines[2].starts_with("providers kubernetes, aws"),
        "{stdout}"
    );
    assert!(lines[3].starts_with("tz database "), "{stdout}");
}
