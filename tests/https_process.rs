//! Outgoing HTTPS through the real binary: webhooks and the CLI client reach servers whose
//! certificate a CA of our own signed, trusted through `SSL_CERT_FILE`, and a certificate no
//! trusted root signed fails with one clear line.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::process::{Process, curfew, run_args, simulated_config, tokens_file};
use crate::support::tls::{TestCa, runtime, terminating_proxy, webhook_receiver};
use serde_json::Value;

const TOKEN: &str = "otto-secret-0123456789";

/// `curfew run` on the simulated estate with `server_lines`, trusting `ca` through
/// `SSL_CERT_FILE`, with one operator token (`TOKEN`).
fn start(dir: &Path, server_lines: &str, ca: &Path) -> Process {
    tokens_file(dir, &[("otto", "operator", "[staging]", TOKEN)]);
    let config = simulated_config(dir, &format!("  tokens_file: tokens.yaml\n{server_lines}"));
    let mut command = curfew(run_args(&config, dir));
    command.env("SSL_CERT_FILE", ca);
    Process::start(command, &dir.join("curfew.log"))
}

/// `curfew override create` through `server` (a base URL), trusting `ca` through
/// `SSL_CERT_FILE`.
fn create_override(server: &str, ca: &Path) -> Output {
    curfew([
        "override",
        "create",
        "--env",
        "staging",
        "--for",
        "1h",
        "--reason",
        "tls check",
        "--server",
        server,
    ])
    .env("CURFEW_TOKEN", TOKEN)
    .env("SSL_CERT_FILE", ca)
    .output()
    .unwrap()
}

/// `curfew override list --json` through `server`: the overrides.
fn list_overrides(server: &str, ca: &Path) -> Vec<Value> {
    let output = curfew(["override", "list", "--json", "--server", server])
        .env("CURFEW_TOKEN", TOKEN)
        .env("SSL_CERT_FILE", ca)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    listed["overrides"].as_array().expect("a list").clone()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_webhook_over_https_arrives_as_json_with_a_link_to_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("ca"), "curfew test CA");
    let runtime = runtime();
    let (port, bodies) = webhook_receiver(&runtime, ca.acceptor());
    let service = start(
        dir.path(),
        &format!(
            "  public_url: https://curfew.example/\n  notifications: {{ webhook_url: \"https://localhost:{port}/hook\", format: json }}\n"
        ),
        &ca.ca_pem,
    );

    let (status, created) = crate::support::http::send(
        &service.addr,
        "POST",
        "/api/v1/overrides",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        r#"{"environment": "staging", "state": "up", "duration": "2h", "reason": "demo for sales"}"#,
    );
    assert_eq!(status, 201, "{created}");
    let body = bodies
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no webhook arrived; log:\n{}", service.log_text()));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["event"], "override_created", "{body}");
    assert_eq!(body["environment"], "staging");
    assert_eq!(body["override"]["created_by"], "otto");
    assert_eq!(body["link"], "https://curfew.example/#env-staging");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("otto set staging up until ")
            && text.ends_with("demo for sales — https://curfew.example/#env-staging"),
        "{text}"
    );
}

#[test]
fn the_cli_reaches_the_service_over_https_and_refuses_an_untrusted_certificate_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&dir.path().join("ca"), "curfew test CA");
    let stranger = TestCa::new(&dir.path().join("other"), "someone else's CA");
    let service = start(dir.path(), "", &ca.ca_pem);
    let runtime = runtime();
    let port = terminating_proxy(&runtime, ca.acceptor(), service.addr.parse().unwrap());
    let server = format!("https://127.0.0.1:{port}");

    let output = create_override(&server, &ca.ca_pem);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed = list_overrides(&server, &ca.ca_pem);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["reason"], "tls check");
    assert_eq!(listed[0]["created_by"], "otto");

    let refused = create_override(&server, &stranger.ca_pem);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: request to {server}/api/v1/"))
            && stderr.contains(" failed: ")
            && stderr.contains("certificate")
            && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    assert_eq!(
        list_overrides(&server, &ca.ca_pem).len(),
        1,
        "nothing more created"
    );
}
