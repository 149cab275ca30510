//! The override API as a process: persistence across kill -9, tokens kept out of logs, the
//! CLI client, the status page in headless Chromium, schemathesis against /openapi.json and
//! webhook notifications to a local receiver.
//!
//! Chromium and schemathesis come from `./tests/run`, which installs them when missing and
//! exports CURFEW_CHROMIUM and CURFEW_SCHEMATHESIS. These tests fail, never skip, without them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";
/// Tuesday 04:46 in Berlin: both demo environments are down.
const NIGHT: &str = "2026-12-01T03:46:00Z";
/// Tuesday 14:00 in Berlin: staging-eu is up, 23:00 is nine hours away.
const AFTERNOON: &str = "2026-12-01T13:00:00Z";
const OPERATOR: &str = "otto-token-abcdefghij";

fn sha256_hex(token: &str) -> String {
    curfew::api::auth::sha256_hex(token)
}

fn write_tokens(dir: &Path) -> PathBuf {
    let path = dir.join("tokens.yaml");
    let yaml = format!(
        "tokens:\n  - {{ name: root, role: admin, environments: ['*'], sha256: {} }}\n  - {{ name: otto, role: operator, environments: [staging-eu], sha256: {} }}\n",
        sha256_hex(ADMIN),
        sha256_hex(OPERATOR)
    );
    std::fs::write(&path, yaml).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

fn curfew() -> Command {
    Command::new(env!("CARGO_BIN_EXE_curfew"))
}

/// A running curfew service, killed on drop; its stderr goes to a file.
struct Service {
    child: Child,
    addr: String,
    log: PathBuf,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Service {
    /// `curfew demo` in real time with the test tokens, its clock starting at `start`, or
    /// (`None`) where the demo on this state stopped.
    fn demo(dir: &Path, start: Option<&str>) -> Service {
        let tokens = write_tokens(dir);
        let mut command = curfew();
        command
            .args([
                "demo",
                "--speed",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
            ])
            .arg(dir.join("state"))
            .arg("--tokens")
            .arg(tokens);
        if let Some(start) = start {
            command.args(["--start", start]);
        }
        Service::start(command, dir, "curfew demo: http://")
    }

    /// The service's clock, as its environment list reports it.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let (_, list) = self.json("GET", "/api/v1/environments", None, None);
        let at = list["at"]
            .as_str()
            .unwrap_or_else(|| panic!("no time in {list}"));
        chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc()
    }

    fn start(mut command: Command, dir: &Path, marker: &str) -> Service {
        let log = dir.join(format!(
            "service-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let mut child = command
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split(['/', ' ', '\n']).next())
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_string();
        let service = Service {
            child,
            addr,
            log,
            _stdout: stdout,
        };
        service.wait_ready();
        service
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (u16, String, String) {
        http(&self.addr, method, path, token, body)
    }

    fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| ("application/json", b.to_string()));
        let (status, _, text) = self.request(method, path, token, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Waits until the server answers. (Not /readyz: after a restart in the middle of waking,
    /// the first pass waits for the simulated nodes to join, which takes real minutes.)
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.request("GET", "/healthz", None, None).0 != 200 {
            assert!(Instant::now() < deadline, "the service never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the first reconcile pass has completed.
    fn wait_first_pass(&self) {
        poll("the first reconcile pass", Duration::from_secs(30), || {
            (self.request("GET", "/readyz", None, None).0 == 200).then_some(())
        });
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; returns status, headers and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let (content_type, body) = body.unwrap_or(("text/plain", String::new()));
    request.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_string(), body.to_string())
}

fn poll<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn keep_up(environment: &str, duration: &str, reason: &str) -> Value {
    json!({"environment": environment, "state": "up", "duration": duration, "reason": reason})
}

#[test]
fn overrides_the_audit_log_and_the_simulated_clock_survive_kill_9_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::demo(dir.path(), Some(NIGHT));
    service.wait_first_pass();
    let (status, created) = service.json(
        "POST",
        "/api/v1/overrides",
        Some(OPERATOR),
        Some(keep_up("staging-eu", "3h", "load test")),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // The override takes effect within 2 s: the environment is up and the estate wakes.
    poll(
        "the override to take effect",
        Duration::from_secs(2),
        || {
            let (_, list) = service.json("GET", "/api/v1/environments", Some(OPERATOR), None);
            (list["environments"][0]["override_id"] == id.as_str()
                && list["environments"][0]["state"] == "up")
                .then_some(())
        },
    );
    poll(
        "the reconciler to start waking staging-eu",
        Duration::from_secs(2),
        || {
            service
                .log_text()
                .contains("direction=\"up\"")
                .then_some(())
        },
    );
    let before_kill = service.now();
    drop(service); // SIGKILL

    // The restarted demo continues from its simulated time, so the override is still
    // active: listed, and deciding the environment.
    let service = Service::demo(dir.path(), None);
    // It resumes where it stood (the clock is saved every second; a kill -9 may lose that
    // second), not at the real time.
    let resumed = service.now();
    let second = chrono::Duration::seconds(2);
    assert!(
        resumed + second >= before_kill && resumed < before_kill + chrono::Duration::minutes(1),
        "resumed at {resumed}, killed at {before_kill}"
    );
    let (status, list) = service.json("GET", "/api/v1/overrides", Some(ADMIN), None);
    assert_eq!(status, 200);
    assert_eq!(list["overrides"][0]["id"], id.as_str(), "{list}");
    // Override ids are shown to a token holder only.
    let (_, environments) = service.json("GET", "/api/v1/environments", Some(OPERATOR), None);
    assert_eq!(
        environments["environments"][0]["override_id"],
        id.as_str(),
        "{environments}"
    );
    let (_, audit) = service.json("GET", "/api/v1/audit?limit=500", Some(ADMIN), None);
    let events: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"override_created"), "{events:?}");
    assert!(
        events.contains(&"scale_down"),
        "the first pass's actions: {events:?}"
    );
}

#[test]
fn no_token_ever_appears_in_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::demo(dir.path(), Some(AFTERNOON));
    service.json("GET", "/api/v1/overrides", Some(ADMIN), None);
    service.json(
        "POST",
        "/api/v1/overrides",
        Some(OPERATOR),
        Some(keep_up("staging-eu", "1h", "log check")),
    );
    service.json("GET", "/api/v1/audit", Some("wrong-token-zyxwvut"), None);
    service.request(
        "POST",
        "/keep-up",
        None,
        Some((
            "application/x-www-form-urlencoded",
            format!("environment=staging-eu&until=23:00&reason=form&token={OPERATOR}"),
        )),
    );
    let log = service.log_text();
    assert!(log.contains("override created"), "the log was captured");
    for secret in [ADMIN, OPERATOR, "wrong-token-zyxwvut"] {
        assert!(!log.contains(secret), "a token appears in the log");
    }
    assert!(!log.to_lowercase().contains("authorization: bearer"));
}

#[test]
fn the_cli_client_creates_lists_and_cancels_an_override() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::demo(dir.path(), Some(AFTERNOON));
    let client = |args: &[&str]| -> Output {
        curfew()
            .args(args)
            .env("CURFEW_SERVER", service.url(""))
            .env("CURFEW_TOKEN", OPERATOR)
            .output()
            .unwrap()
    };
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let created = client(&[
        "override",
        "create",
        "--env",
        "staging-eu",
        "--until",
        "23:00",
        "--reason",
        "release rehearsal",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    // The end reads as local time in the environment's zone, to the minute.
    let created = text(&created);
    assert!(
        created.starts_with("created override ")
            && created
                .ends_with(": staging-eu up until Tue 2026-12-01 23:00 CET (release rehearsal)\n"),
        "{created}"
    );

    let status = client(&["status"]);
    let table = text(&status);
    assert!(table.starts_with("ENVIRONMENT  STATE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("staging-eu") && l.contains(" up ")),
        "{table}"
    );

    let listed = client(&["override", "list"]);
    assert!(
        text(&listed)
            .lines()
            .any(|l| l.contains(" staging-eu ") && l.contains(" Tue 2026-12-01 23:00 CET ")),
        "{}",
        text(&listed)
    );
    let listed = client(&["override", "list", "--json"]);
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let item = &list["overrides"][0];
    assert_eq!(item["reason"], "release rehearsal");
    assert_eq!(item["created_by"], "otto");
    // JSON keeps RFC 3339 in UTC, to the second.
    assert_eq!(item["until"], "2026-12-01T22:00:00Z");
    let created_at = item["created_at"].as_str().unwrap();
    assert!(
        created_at.starts_with("2026-12-01T13:") && created_at.len() == 20,
        "{created_at}"
    );
    let id = item["id"].as_str().unwrap();

    let too_long = client(&[
        "override",
        "create",
        "--env",
        "staging-eu",
        "--for",
        "13h",
        "--reason",
        "x",
    ]);
    assert_eq!(too_long.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("at most 12h"));

    let cancelled = client(&["override", "cancel", id]);
    assert!(cancelled.status.success());
    let listed = client(&["override", "list"]);
    assert_eq!(
        text(&listed).lines().count(),
        1,
        "only the header is left: {}",
        text(&listed)
    );
    let again = client(&["override", "cancel", id]);
    assert!(!again.status.success());
    let unauthorised = curfew()
        .args([
            "override",
            "list",
            "--server",
            &service.url(""),
            "--token",
            "nope",
        ])
        .env_remove("CURFEW_TOKEN")
        .output()
        .unwrap();
    assert_eq!(unauthorised.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unauthorised.stderr).contains("401"));
}

fn required_tool(variable: &str, fallback: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback));
    assert!(
        path.is_file(),
        "{} not found: run the suite with ./tests/run, which installs it, or set {variable}",
        path.display()
    );
    path
}

/// Runs headless Chromium with a fresh profile and the given arguments; returns stdout.
fn chromium(args: &[String]) -> String {
    let binary = required_tool("CURFEW_CHROMIUM", "/usr/bin/chromium");
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = sender.send(out);
    });
    let out = receiver.recv_timeout(Duration::from_secs(90));
    let _ = child.kill();
    let _ = child.wait();
    out.expect("chromium did not finish within 90 s")
}

#[test]
fn the_status_page_renders_in_chromium_and_its_form_creates_an_override() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::demo(dir.path(), Some(AFTERNOON));
    let page = chromium(&["--dump-dom".into(), service.url("/")]);
    assert!(
        page.contains("staging-eu") && page.contains("staging-us"),
        "{page}"
    );
    assert!(
        page.contains("action=\"/keep-up\""),
        "the form is there: {page}"
    );
    assert!(page.contains("Cost per hour") && page.contains("n/a"));

    // What the browser sends when the form is submitted.
    let form = format!(
        "environment=staging-eu&until=23%3A30&reason=release+rehearsal+from+the+page&token={OPERATOR}"
    );
    let (status, head, _) = service.request(
        "POST",
        "/keep-up",
        None,
        Some(("application/x-www-form-urlencoded", form)),
    );
    assert_eq!(status, 303, "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_string();
    assert!(location.starts_with("/?created="), "{location}");

    let page = chromium(&["--dump-dom".into(), service.url(&location)]);
    assert!(
        page.contains("created: staging-eu up until"),
        "the page confirms the override: {page}"
    );
    assert!(
        !page.contains("release rehearsal from the page"),
        "who and why are not public: {page}"
    );
    let (_, list) = service.json("GET", "/api/v1/overrides", Some(OPERATOR), None);
    assert_eq!(
        list["overrides"][0]["reason"], "release rehearsal from the page",
        "{list}"
    );
    assert_eq!(
        list["overrides"][0]["until"], "2026-12-01T22:30:00Z",
        "JSON keeps UTC to the second: {list}"
    );
    assert!(
        page.contains("created: staging-eu up until Tue 2026-12-01 23:30 CET.")
            && page.contains("<strong>up</strong> until Tue 2026-12-01 23:30 CET</li>"),
        "{page}"
    );

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(&[
        format!("--screenshot={}", screenshot.display()),
        "--window-size=412,1400".into(),
        "--hide-scrollbars".into(),
        service.url(&location),
    ]);
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );

    // A wrong token shows the problem on the page and creates nothing.
    let form = "environment=staging-eu&until=23%3A30&reason=nope&token=wrong".to_string();
    let (status, _, body) = service.request(
        "POST",
        "/keep-up",
        None,
        Some(("application/x-www-form-urlencoded", form)),
    );
    assert_eq!(status, 401);
    assert!(body.contains("Not done: unknown token"), "{body}");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let schemathesis = required_tool("CURFEW_SCHEMATHESIS", "/nonexistent/schemathesis");
    let dir = tempfile::tempdir().unwrap();
    let service = Service::demo(dir.path(), Some(AFTERNOON));
    let output = Command::new(schemathesis)
        .arg("run")
        .arg(service.url("/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--max-time",
            "45",
            "--seed",
            "20261128",
            // The token's rate limit is 10 requests/s: stay under it so the answers come from
            // the handlers, not the limiter.
            "--rate-limit",
            "9/s",
            "--no-color",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("9 selected"),
        "every operation was tested:\n{report}"
    );
}

/// A webhook receiver: answers the first request 500 (to prove retries) and the rest 200,
/// passing each body to the channel.
fn webhook_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for (index, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if index == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
            if index > 0 {
                let _ = sender.send(String::from_utf8_lossy(&body).into_owned());
            }
        }
    });
    (addr, receiver)
}

#[test]
fn the_webhook_hears_of_a_coming_shutdown_an_override_its_expiry_and_a_failed_action() {
    let (receiver_addr, messages) = webhook_receiver();
    let dir = tempfile::tempdir().unwrap();
    let tokens = write_tokens(dir.path());
    // Up from the service's start, down 90 seconds later.
    let now = chrono::DateTime::parse_from_rfc3339(AFTERNOON)
        .unwrap()
        .to_utc();
    let window = format!(
        "{}-{}",
        (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::Duration::seconds(90)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let config = format!(
        r#"
schedules:
  soon: {{ uptime: ["{window}"] }}
  never: {{ uptime: ["never"] }}
environments:
  staging-eu:
    schedule: soon
    targets:
      - kubernetes: {{ namespaces: [app] }}
  qa:
    schedule: never
    targets:
      - kubernetes: {{ namespaces: [qa] }}
server:
  listen: 127.0.0.1:0
  tokens_file: {tokens}
  public_url: "http://curfew.example"
  notifications: {{ webhook_url: "http://{receiver_addr}/hook", minutes_before: 5 }}
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096, min: 1, max: 3, desired: 1, pods_per_node: 20 }}
  namespaces:
    - {{ name: app, node_group: nodes, deployments: 2 }}
    - {{ name: qa, node_group: nodes, deployments: 1 }}
  faults: {{ failing_targets: [deployment/qa/api] }}
"#,
        tokens = tokens.display()
    );
    let path = dir.path().join("curfew.yaml");
    std::fs::write(&path, config).unwrap();
    let mut command = curfew();
    command
        .args(["run", "--at", AFTERNOON, "-c"])
        .arg(&path)
        .arg("--state-dir")
        .arg(dir.path().join("state"));
    let service = Service::start(command, dir.path(), "listening on http://");

    let (status, created) = service.json(
        "POST",
        "/api/v1/overrides",
        Some(OPERATOR),
        Some(keep_up("staging-eu", "2s", "quick check")),
    );
    assert_eq!(status, 201, "{created}");
    let mut seen = Vec::new();
    let wanted = ["sleeps at", "set staging-eu up", "has ended", "failed"];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wanted
        .iter()
        .all(|w| seen.iter().any(|m: &String| m.contains(w)))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = messages
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("missing notifications; got {seen:?}"));
        let body: Value = serde_json::from_str(&message).expect("Slack-compatible JSON");
        seen.push(body["text"].as_str().expect("a text field").to_string());
    }
    let warning = seen.iter().find(|m| m.contains("sleeps at")).unwrap();
    assert!(
        warning.contains("keep it up: http://curfew.example/?environment=staging-eu"),
        "{warning}"
    );
    let (_, audit) = service.json("GET", "/api/v1/audit", Some(ADMIN), None);
    let expired = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "override_expired")
        .count();
    assert_eq!(expired, 1, "{audit}");
}
