//! The check, plan and eval commands, run as a user runs them: the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn curfew(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("curfew runs")
}

fn curfew_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curfew runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    configs.sort();
    configs
}

#[test]
fn every_shipped_example_config_passes_check() {
    let configs = example_configs();
    assert!(
        configs.len() >= 3,
        "expected at least three examples, found {configs:?}"
    );
    for config in configs {
        let output = curfew(&["check", "-c", config.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}: {}",
            config.display(),
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains(": OK"));
    }
}

#[test]
fn check_lists_every_error_with_file_line_column_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        concat!(
            "timezone: Europe/Berln\n",
            "schedules:\n",
            "  office:\n",
            "    uptime: [\"Mon-Fri 07:00-25:00\", \"Mon-Fry 07:00-08:00\"]\n",
            "    holidays: [nope]\n",
            "  mixed:\n",
            "    uptime: [\"always\"]\n",
            "    up_at: \"0 7 * * *\"\n",
            "environments:\n",
            "  staging:\n",
            "    schedule: ofice\n",
            "    overrides: { max_duration: 12 hours }\n",
        ),
    )
    .unwrap();
    let output = curfew(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let file = path.display().to_string();
    for (place, words) in [
        ("1:11", "unknown time zone 'Europe/Berln'"),
        ("4:14", "'25:00'"),
        ("4:37", "unknown day name 'Fry'"),
        ("5:16", "unknown calendar 'nope'"),
        ("8:12", "mixed"),
        ("11:15", "unknown schedule 'ofice'"),
        ("12:32", "bad duration '12 hours'"),
    ] {
        let line = stderr
            .lines()
            .find(|line| line.starts_with(&format!("{file}:{place}: error:")))
            .unwrap_or_else(|| panic!("no error at {place} in:\n{stderr}"));
        assert!(line.contains(words), "{line}");
    }
    assert!(
        stderr.contains("hint: did you mean 'Europe/Berlin'?"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: did you mean 'office'?"), "{stderr}");
    assert!(stderr.contains("7 errors"), "{stderr}");
}

#[test]
fn check_reports_bad_sign_on_and_notification_settings_where_written_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sso.yaml");
    std::fs::write(
        &path,
        concat!(
            "schedules:\n",
            "  office: { uptime: always }\n",
            "environments:\n",
            "  staging: { schedule: office }\n",
            "server:\n",
            "  public_url: curfew.example\n",
            "  notifications: { webhook_url: \"https://hooks.example/x\", format: markdown }\n",
            "  auth:\n",
            "    proxy:\n",
            "      email_header: \"\"\n",
            "      trusted_sources: [10.0.0.300/8]\n",
            "      groups: [{ name: platform, role: operater, environments: [staging] }]\n",
        ),
    )
    .unwrap();
    let output = curfew(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.starts_with(&format!("{file}:7:")) && stderr.contains("markdown"),
        "an unknown format stops the parse where it is written:\n{stderr}"
    );

    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("format: markdown", "format: json");
    std::fs::write(&path, fixed).unwrap();
    let output = curfew(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    for (place, words, hint) in [
        (
            "6:15",
            "server.public_url 'curfew.example'",
            "https://curfew.example.com",
        ),
        ("10:21", "email_header is empty", "x-forwarded-email"),
        (
            "11:25",
            "'10.0.0.300/8' is not an address or a CIDR",
            "10.42.0.0/16",
        ),
        (
            "12:40",
            "role 'operater' does not exist",
            "did you mean 'operator'?",
        ),
    ] {
        let line = stderr
            .lines()
            .position(|line| line.starts_with(&format!("{file}:{place}: error:")))
            .unwrap_or_else(|| panic!("no error at {place} in:\n{stderr}"));
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(lines[line].contains(words), "{}", lines[line]);
        assert!(lines[line + 1].contains(hint), "{}", lines[line + 1]);
    }
    assert!(stderr.contains("4 errors"), "{stderr}");
}

#[test]
fn check_discover_lists_the_simulated_estate_with_its_databases_and_writes_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules/demo.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["check", "--discover", "-c"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .expect("curfew runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed = text(&output.stdout);
    for needle in [
        "discovered 47 targets",
        "db_cluster/eu-orders",
        "staging-eu  running",
        "db_instance/us-analytics",
    ] {
        assert!(listed.contains(needle), "{needle} missing in:\n{listed}");
    }
    assert!(!listed.contains("left alone"), "{listed}");
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(written.is_empty(), "check wrote {written:?}");
}

#[test]
fn unknown_key_is_an_error_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(&path, "schedules:\n  a:\n    uptme: always\n").unwrap();
    let output = curfew(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3:5: error: unknown field `uptme`",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn fixed_offset_zones_named_like_regional_time_are_rejected_with_the_regional_zone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zones.yaml");
    std::fs::write(
        &path,
        concat!(
            "timezone: EST\n",
            "schedules:\n",
            "  office: { uptime: [\"Mon-Fri 07:00-20:00 MST\"], timezone: HST }\n",
            "  east: { uptime: [\"Mon-Fri 07:00-20:00\"], timezone: EST5EDT }\n",
            "environments:\n",
            "  staging: { schedule: office }\n",
        ),
    )
    .unwrap();
    let output = curfew(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let file = path.display();
    for expected in [
        format!("{file}:1:11: error: 'EST' is a fixed offset (UTC-05:00 all year"),
        "hint: use 'America/New_York' for the local time there".to_string(),
        format!("{file}:3:22: error: in 'Mon-Fri 07:00-20:00 MST': 'MST' is a fixed offset"),
        "hint: use 'America/Denver'".to_string(),
        "'HST' is a fixed offset (UTC-10:00 all year".to_string(),
        "hint: use 'Pacific/Honolulu'".to_string(),
        format!("{file}: 3 errors"),
    ] {
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    }
    assert!(
        !stderr.contains("EST5EDT"),
        "EST5EDT follows US rules: {stderr}"
    );
}

#[test]
fn an_empty_configuration_is_rejected_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [("empty.yaml", ""), ("comments.yaml", "# to do\n\n---\n")] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let output = curfew(&["check", "-c", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "{}:1:1: error: the configuration is empty",
                path.display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains("hint: start from an example"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn missing_ics_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.yaml");
    std::fs::write(&path, "calendars:\n  de:\n    ics: nowhere.ics\n").unwrap();
    let output = curfew(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains(":3:10: error: cannot read holiday calendar 'nowhere.ics'")
    );
}

#[test]
fn plan_json_lists_transitions_with_utc_local_direction_and_rule() {
    let output = curfew(&[
        "plan",
        "-c",
        "schedules/holidays-and-christmas.yaml",
        "--from",
        "2026-12-23T00:00:00Z",
        "--to",
        "2026-12-28T00:00:00Z",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let staging = &plan["environments"][0];
    assert_eq!(staging["name"], "staging");
    let transitions = staging["transitions"].as_array().unwrap();
    // Wednesday 23rd: up at 07:30 and down at 19:30 Berlin time; then the Christmas
    // exception keeps it down through the 28th.
    assert_eq!(transitions.len(), 2, "{transitions:#?}");
    assert_eq!(transitions[0]["at"], "2026-12-23T06:30:00Z");
    assert_eq!(transitions[0]["local"], "2026-12-23T07:30:00+01:00");
    assert_eq!(transitions[0]["direction"], "up");
    assert_eq!(transitions[1]["direction"], "down");
    assert!(
        transitions[0]["rule"]
            .as_str()
            .unwrap()
            .contains("Mon-Fri 07:30-19:30")
    );
}

#[test]
fn plan_shows_holidays_as_the_rule() {
    let output = curfew(&[
        "plan",
        "-c",
        "schedules/holidays-and-christmas.yaml",
        "--from",
        "2026-10-01T00:00:00Z",
        "--to",
        "2026-10-06T00:00:00Z",
        "--json",
    ]);
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let transitions = plan["environments"][0]["transitions"].as_array().unwrap();
    // Thu 1st up and down; Fri 2nd is the quarterly team offsite (first Friday of the
    // quarter, an RRULE in the .ics) and stays down; Monday 5th up again.
    let ups: Vec<&str> = transitions
        .iter()
        .filter(|t| t["direction"] == "up")
        .map(|t| t["at"].as_str().unwrap())
        .collect();
    assert_eq!(ups, ["2026-10-01T05:30:00Z", "2026-10-05T05:30:00Z"]);
}

#[test]
fn plan_with_bad_config_exits_2() {
    let output = curfew(&["plan", "-c", "does-not-exist.yaml"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn eval_single_prints_the_decision_with_rule_and_next_change() {
    let output = curfew(&[
        "eval",
        "--spec",
        "Mon-Fri 07:00-20:00 Europe/Berlin",
        "--at",
        "2026-11-30T08:00:00Z",
    ]);
    assert!(output.status.success());
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["up"], true);
    assert_eq!(verdict["next_change"], "2026-11-30T19:00:00Z");
    assert!(
        verdict["rule"]
            .as_str()
            .unwrap()
            .contains("Mon-Fri 07:00-20:00")
    );
}

#[test]
fn eval_single_with_bad_spec_exits_2_naming_the_token() {
    let output = curfew(&[
        "eval",
        "--spec",
        "Mon-Fri 07:61-20:00",
        "--at",
        "2026-11-30",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("'07:61'"));
}

#[test]
fn eval_batch_answers_one_line_per_input_and_keeps_going_after_bad_lines() {
    let input = concat!(
        "{\"spec\": \"Sat-Mon 00:00-24:00\", \"at\": \"2026-11-29T12:00:00Z\"}\n",
        "{\"spec\": \"Sat-Mon 00:00-24:00\", \"at\": \"2026-11-25T12:00:00Z\"}\n",
        "{\"spec\": \"nonsense\", \"at\": \"2026-11-25T12:00:00Z\"}\n",
        "{\"spec\": \"always\", \"at\": \"yesterday\"}\n",
        "{\"spec\": \"never\", \"at\": \"2026-11-25T12:00:00Z\"}\n",
    );
    let output = curfew_with_stdin(&["eval"], input);
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], serde_json::json!({"up": true}));
    assert_eq!(lines[1], serde_json::json!({"up": false}));
    assert!(lines[2]["error"].is_string());
    assert!(lines[3]["error"].as_str().unwrap().contains("yesterday"));
    assert_eq!(lines[4], serde_json::json!({"up": false}));
}

#[test]
fn completions_cover_every_command_and_the_bash_script_parses() {
    for shell in ["bash", "zsh", "fish"] {
        let output = curfew(&["completions", shell]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let script = text(&output.stdout);
        for command in [
            "run",
            "explain",
            "simulate",
            "override",
            "audit",
            "completions",
        ] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("curfew.bash");
            std::fs::write(&path, &script).unwrap();
            let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(syntax.status.success(), "{}", text(&syntax.stderr));
        }
    }
    let unknown = curfew(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("possible values"),
        "{}",
        text(&unknown.stderr)
    );
}
