//! `curfew check` lints, through the real binary: a namespace or AWS object selected by two
//! environments is an error (exit 2); an environment without targets, an unused schedule or
//! calendar and an override limit above 90 days are warnings (exit 0), each with
//! file:line:col and a hint.

use std::path::Path;
use std::process::{Command, Output};

fn check(dir: &Path, yaml: &str) -> (Output, String, String) {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, yaml).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["check", "--at", "2026-12-01T10:00:00Z", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// The line of `text` containing `needle`, and the line after it (the hint).
fn with_hint<'a>(text: &'a str, needle: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"));
    (lines[at], lines.get(at + 1).copied().unwrap_or_default())
}

#[test]
fn a_namespace_or_group_selected_by_two_environments_is_an_error_with_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office
    targets:
      - kubernetes: { namespaces: [shop, payments] }
      - aws_asg: { names: [nodes], region: eu-central-1 }
  preview:
    schedule: office
    targets:
      - kubernetes: { namespaces: [shop] }
      - aws_asg: { names: [nodes], region: eu-central-1 }
      - aws_asg: { names: [nodes], region: us-east-1 }
"#;
    let (output, stdout, stderr) = check(dir.path(), yaml);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let (line, hint) = with_hint(&stderr, "namespace 'shop'");
    assert!(
        line.contains("curfew.yaml:12:9: error:")
            && line.contains("environment 'staging' (line 7)")
            && line.contains("'preview'"),
        "{line}"
    );
    assert!(hint.trim_start().starts_with("hint: "), "{hint}");
    let (line, _) = with_hint(&stderr, "aws_asg 'nodes' in eu-central-1");
    assert!(line.contains("curfew.yaml:13:9: error:"), "{line}");
    // The same name in another region is another group.
    assert!(!stderr.contains("us-east-1"), "{stderr}");
    assert!(stderr.contains("curfew.yaml: 2 errors"), "{stderr}");
}

#[test]
fn unused_schedules_and_calendars_empty_environments_and_long_overrides_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"calendars:
  days-off: { dates: [2026-12-24] }
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
  nights: { uptime: ["Mon-Fri 20:00-07:00"] }
environments:
  staging:
    schedule: office
    overrides: { max_duration: 120d }
    targets:
      - kubernetes: { namespaces: [shop] }
  sandbox:
    schedule: office
"#;
    let (output, stdout, stderr) = check(dir.path(), yaml);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("curfew.yaml: OK, 4 warnings"), "{stdout}");
    for (needle, place) in [
        (
            "calendar 'days-off' is not used",
            "curfew.yaml:2:13: warning:",
        ),
        (
            "schedule 'nights' is not used",
            "curfew.yaml:5:11: warning:",
        ),
        ("overrides may last 120d", "curfew.yaml:9:32: warning:"),
        (
            "environment 'sandbox' has no targets",
            "curfew.yaml:13:5: warning:",
        ),
    ] {
        let (line, hint) = with_hint(&stderr, needle);
        assert!(line.contains(place), "{line}");
        assert!(hint.trim_start().starts_with("hint: "), "{needle}: {hint}");
    }
    assert!(!stderr.contains("error"), "{stderr}");
}
