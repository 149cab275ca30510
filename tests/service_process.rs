//! The service as a process: the demo's HTTP endpoints and shutdown, kill -9 in the middle
//! of a transition, `run --once` exit codes, dry runs that write nothing and corrupt state.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use curfew::domain::Capacity;
use curfew::providers::sim::Estate;

use crate::support::demo::Demo;

/// Office hours over a small estate whose every apply takes 300 ms, so a transition lasts
/// long enough to be interrupted.
const SLOW_ESTATE: &str = r#"
timezone: Europe/Berlin
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office
    targets:
      - aws_asg: { names: [nodes], region: eu-central-1 }
      - kubernetes: { namespaces: [app] }
simulation:
  node_join_seconds: 1
  node_groups:
    - { name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 6, desired: 3, pods_per_node: 20 }
  namespaces:
    - { name: app, node_group: nodes, deployments: 6, statefulsets: 2, cronjobs: 1, replicas: 2 }
  faults: { latency_ms: 300 }
"#;

/// Saturday: down. Monday 10:00 Berlin: up.
const SATURDAY: &str = "2026-12-05T12:00:00Z";
const MONDAY: &str = "2026-12-07T09:00:00Z";

fn curfew() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_curfew"));
    command.env("RUST_LOG", "info");
    command
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let path = dir.join("curfew.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_string()
}

fn run_once(config: &str, state: &Path, at: &str, extra: &[&str]) -> std::process::Output {
    curfew()
        .args(["run", "-c", config, "--once", "--at", at, "--state-dir"])
        .arg(state)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The capacity each object had before curfew ever touched it.
fn initial_capacity(id: &str) -> Capacity {
    if id.starts_with("auto_scaling_group/") {
        Capacity::Group {
            min: 1,
            max: 6,
            desired: 3,
        }
    } else if id.starts_with("cron_job/") {
        Capacity::Suspended(false)
    } else {
        Capacity::Replicas(2)
    }
}

fn estate(state: &Path) -> Estate {
    Estate::load(&state.join("sim-estate.json")).unwrap()
}

#[test]
fn kill_9_in_mid_transition_then_restart_leaves_every_target_right_with_its_original() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), SLOW_ESTATE);
    let state = dir.path().join("state");

    // Start putting the estate to sleep and kill -9 after the first target is scaled.
    let mut child = curfew()
        .args([
            "run",
            "-c",
            &config,
            "--once",
            "--at",
            SATURDAY,
            "--state-dir",
        ])
        .arg(&state)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first_scaled = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("scaled"));
    assert!(first_scaled.is_some(), "no action started");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let interrupted = estate(&state).targets(utc(SATURDAY));
    let down = interrupted.iter().filter(|t| t.original.is_some()).count();
    assert!(
        down > 0 && down < interrupted.len(),
        "the kill should land mid-transition: {down} of {} down",
        interrupted.len()
    );
    for target in &interrupted {
        if let Some(original) = target.original {
            assert_eq!(original, initial_capacity(&target.id), "{}", target.id);
        }
    }

    // A restart finishes the job.
    let output = run_once(&config, &state, SATURDAY, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for target in estate(&state).targets(utc(SATURDAY)) {
        assert_eq!(
            target.original,
            Some(initial_capacity(&target.id)),
            "{}",
            target.id
        );
        assert!(target.capacity.is_zero(), "{} still running", target.id);
    }

    // Monday morning every original comes back exactly.
    let output = run_once(&config, &state, MONDAY, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for target in estate(&state).targets(utc(MONDAY)) {
        assert_eq!(target.original, None, "{}", target.id);
        assert_eq!(
            target.capacity,
            initial_capacity(&target.id),
            "{}",
            target.id
        );
    }
}

#[test]
fn run_once_exits_non_zero_listing_a_target_that_keeps_failing() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = SLOW_ESTATE.replace(
        "faults: { latency_ms: 300 }",
        "faults: { failing_targets: [deployment/app/web] }",
    );
    let config = write_config(dir.path(), &yaml);
    let output = run_once(&config, &dir.path().join("state"), SATURDAY, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("deployment/app/web"), "{stderr}");
    assert!(stderr.contains("AccessDenied"), "{stderr}");
}

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn dry_runs_write_nothing_anywhere_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = SLOW_ESTATE.replace("faults: { latency_ms: 300 }", "faults: {}");
    let config = write_config(dir.path(), &yaml);
    let state = dir.path().join("state");

    // On nothing: the plan is logged and not even the state directory is created.
    let output = run_once(&config, &state, SATURDAY, &["--dry-run"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("dry run: would apply"));
    assert!(!state.exists(), "a dry run created the state directory");

    // A real night puts the estate to sleep and writes the ledger and the audit log; an
    // override that ended on Saturday waits for the expiry.
    let output = run_once(&config, &state, SATURDAY, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let ended = curfew::domain::Override {
        id: "0123456789ab".into(),
        environment: "staging".into(),
        state: curfew::calendar::State::Up,
        created_at: utc(SATURDAY),
        until: utc(SATURDAY) + chrono::Duration::hours(1),
        reason: "saturday rehearsal".into(),
        created_by: "otto".into(),
    };
    std::fs::write(
        state.join("overrides.json"),
        serde_json::to_vec(&[ended]).unwrap(),
    )
    .unwrap();
    let before = snapshot(&state);
    let names: Vec<String> = before
        .keys()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "audit.json",
            "ledger.json",
            "overrides.json",
            "sim-estate.json"
        ]
    );

    // Monday morning, once: everything would wake; nothing changes.
    let output = run_once(&config, &state, MONDAY, &["--dry-run"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("dry run: would apply"));
    assert!(
        snapshot(&state) == before,
        "run --once --dry-run wrote state"
    );

    // As a service: passes, the override's expiry and a clean shutdown; nothing changes.
    let mut service = curfew()
        .args(["run", "-c", &config, "--dry-run", "--at", MONDAY])
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(service.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .trim_start_matches("curfew: listening on http://")
        .trim_end_matches('/')
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = crate::support::http::get(&addr, "/api/v1/environments");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        // Up by the calendar, the ended override gone (from memory) and a pass done.
        if crate::support::http::get(&addr, "/readyz").0 == 200
            && list["environments"][0]["state"] == "up"
            && list["environments"][0]["override_id"].is_null()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dry run never got going: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The expiry looks every half second.
    std::thread::sleep(Duration::from_millis(1200));
    let pid = service.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(service.wait().unwrap().success());
    assert!(snapshot(&state) == before, "run --dry-run wrote state");
}

#[test]
fn corrupt_state_file_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), SLOW_ESTATE);
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("overrides.json"), "[{\"id\": 1").unwrap();
    let output = run_once(&config, &state, SATURDAY, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("overrides.json is corrupt"), "{stderr}");
    // Nothing was reset.
    assert_eq!(
        std::fs::read_to_string(state.join("overrides.json")).unwrap(),
        "[{\"id\": 1"
    );
}

#[test]
fn demo_answers_healthz_and_lists_environments() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), "3600");
    demo.wait_ready();
    assert_eq!(demo.get("/healthz"), (200, "ok".to_string()));
    let (status, body) = demo.get("/api/v1/environments");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let environments = list["environments"].as_array().unwrap();
    let names: Vec<&str> = environments
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["staging-eu", "staging-us", "preview"]);
    for environment in environments {
        let state = environment["state"].as_str().unwrap();
        assert!(state == "up" || state == "down", "{environment}");
        assert!(!environment["reason"].as_str().unwrap().is_empty());
        assert!(environment["next_transition"].is_string(), "{environment}");
    }
    let (status, body) = demo.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("curfew_environment_up{environment=\"staging-eu\"}"),
        "{body}"
    );
    let (status, body) = demo.get("/no/such/route");
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""));
}

#[test]
fn a_restarted_demo_continues_from_its_simulated_time_and_start_sets_it_anew() {
    let dir = tempfile::tempdir().unwrap();
    let start = utc(crate::support::demo::START);
    let mut demo = Demo::start(dir.path(), "3600");
    demo.wait_ready();
    std::thread::sleep(Duration::from_millis(1500));
    demo.stop();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("sim-clock.json")).unwrap()).unwrap();
    let stopped = utc(saved["simulated"].as_str().unwrap());
    assert!(
        stopped >= start + chrono::Duration::hours(1)
            && stopped < start + chrono::Duration::days(1),
        "a second and a half at 3600x from {start}: {stopped}"
    );

    let mut demo = Demo::launch(dir.path(), "1", None);
    let resumed = demo.now();
    assert!(
        // The API shows the time to the second.
        resumed >= stopped.trunc_subsecs(0) && resumed < stopped + chrono::Duration::minutes(1),
        "stopped at {stopped}, resumed at {resumed}"
    );
    demo.stop();

    let friday_evening = "2026-12-04T18:00:00Z";
    let demo = Demo::launch(dir.path(), "1", Some(friday_evening));
    let now = demo.now();
    assert!(
        now >= utc(friday_evening) && now < utc(friday_evening) + chrono::Duration::minutes(1),
        "{now}"
    );
}

#[test]
fn demo_exits_0_within_10_seconds_of_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(dir.path(), "3600");
    demo.wait_ready();
    let pid = demo.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // State was flushed: the estate file is complete and loads.
    assert!(Estate::load(&dir.path().join("sim-estate.json")).is_ok());
}
