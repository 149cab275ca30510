//! Free text as a process: control and bidirectional formatting characters in requests are
//! refused with 422, and text stored before that check reaches neither the log nor the
//! terminal of `curfew status` and `curfew override list` unescaped.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::process::{Process, curfew, run_args, simulated_config, tokens_file};
use serde_json::{Value, json};

const OPERATOR: &str = "otto-token-0123456789";

/// Stored by an older version: a newline that forges a log line, an OSC title change, a
/// screen clear, a C1 control sequence introducer and a right-to-left override.
const HOSTILE_REASON: &str = "rehearsal\n2026-12-01T00:00:00.000000Z  INFO forged line\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{202e}txt.exe";

/// `curfew run` on a simulated estate whose calendar always says up, with an override (stored
/// before requests were checked) that keeps it down: the first pass scales down in its name.
fn service_with_a_hostile_override(dir: &Path) -> Process {
    let tokens = tokens_file(dir, &[("otto", "operator", "[staging]", OPERATOR)]);
    let config = simulated_config(dir, &format!("  tokens_file: {}", tokens.display()));
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let stored = json!([{
        "id": "0123456789ab",
        "environment": "staging",
        "state": "down",
        "created_at": "2000-01-01T00:00:00Z",
        "until": "2099-01-01T00:00:00Z",
        "reason": HOSTILE_REASON,
        "created_by": "otto"
    }]);
    std::fs::write(state.join("overrides.json"), stored.to_string()).unwrap();
    Process::start(curfew(run_args(&config, dir)), &dir.join("service.log"))
}

fn client(service: &Process, args: &[&str]) -> Output {
    curfew(args)
        .env("CURFEW_SERVER", format!("http://{}", service.addr))
        .env("CURFEW_TOKEN", OPERATOR)
        .output()
        .unwrap()
}

/// Whether `text` holds a character that drives a terminal or reorders what it shows.
fn has_raw_control(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[test]
fn stored_text_reaches_neither_the_log_nor_the_terminal_unescaped() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_with_a_hostile_override(dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.log_text().contains(" scaled ") {
        assert!(Instant::now() < deadline, "no scale action was logged");
        std::thread::sleep(Duration::from_millis(100));
    }

    let log = service.log_text();
    assert!(log.contains(r"rehearsal\u000a2026-12-01"), "{log}");
    assert!(!has_raw_control(&log), "raw control characters in the log");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-12-01T00:00:00.000000Z")),
        "a forged line in the log:\n{log}"
    );

    for args in [&["status"][..], &["override", "list"][..]] {
        let output = client(&service, args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        let shown = String::from_utf8(output.stdout).unwrap();
        assert!(!has_raw_control(&shown), "{args:?} printed: {shown:?}");
        assert!(
            shown.contains(r"\u001b]0;owned"),
            "{args:?} printed: {shown}"
        );
        assert!(
            shown.lines().all(|l| !l.starts_with("2026-12-01")),
            "{args:?} printed a forged row: {shown}"
        );
    }
    let output = client(&service, &["override", "list", "--json"]);
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(!has_raw_control(&shown), "{shown:?}");
    let list: Value = serde_json::from_str(&shown).expect("still JSON");
    assert_eq!(list["overrides"][0]["reason"], HOSTILE_REASON);
}

#[test]
fn requests_with_control_or_bidi_characters_are_refused_naming_the_character() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_with_a_hostile_override(dir.path());
    let post = |body: Value| {
        let auth = format!("Bearer {OPERATOR}");
        crate::support::http::send(
            &service.addr,
            "POST",
            "/api/v1/overrides",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            &body.to_string(),
        )
    };
    let cases = [
        (
            "reason",
            "line one\nline two",
            "character 9 is U+000A (line feed)",
        ),
        ("reason", "ok\u{1b}[2J", "character 3 is U+001B (escape)"),
        (
            "reason",
            "invoice\u{202e}fdp.exe",
            "character 8 is U+202E (right-to-left override)",
        ),
        (
            "duration",
            "1h\r",
            "character 3 is U+000D (carriage return)",
        ),
    ];
    for (field, value, expected) in cases {
        let mut body =
            json!({"environment": "staging", "state": "up", "duration": "1h", "reason": "fine"});
        body[field] = json!(value);
        let (status, answer) = post(body);
        assert_eq!(status, 422, "{field}={value:?}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}: {expected}")),
            "{detail}"
        );
    }
    let (status, answer) = post(
        json!({"environment": "staging", "state": "up", "duration": "1h", "reason": "release rehearsal"}),
    );
    assert_eq!(status, 201, "ordinary text is accepted: {answer}");
    let output = client(&service, &["override", "list", "--json"]);
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        list["overrides"].as_array().unwrap().len(),
        2,
        "nothing refused was stored: {list}"
    );
}
