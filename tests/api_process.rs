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
        Service::demo_at_speed(dir, start, "1")
    }

    /// `curfew demo` like [`Service::demo`], its simulated time running `speed` times as
    /// fast as real time.
    fn demo_at_speed(dir: &Path, start: Option<&str>, speed: &str) -> Service {
        let tokens = write_tokens(dir);
        let mut command = curfew();
        command
            .args([
                "demo",
                "--speed",
                speed,
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

/// The `Location` of a response head.
fn location_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no Location in {head}"))
        .trim()
        .to_string()
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
fn the_api_resolves_locations_details_environments_plans_with_overrides_and_filters_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::demo(dir.path(), Some(NIGHT));
    service.wait_first_pass();
    let plan_path = "/api/v1/environments/staging-eu/plan?to=2026-12-02T00:00:00Z";
    let (_, calendar) = service.json("GET", plan_path, None, None);
    let wake = calendar["transitions"][0]["at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        wake.as_str() < "2026-12-01T07:30:00Z",
        "the calendar wakes staging-eu before the override below ends: {calendar}"
    );

    // A down override until 08:30 in Berlin holds the 07:00 wake-up back.
    let body = json!({"environment": "staging-eu", "state": "down",
        "until": "2026-12-01T08:30:00+01:00", "reason": "database migration"});
    let (status, head, created) = service.request(
        "POST",
        "/api/v1/overrides",
        Some(ADMIN),
        Some(("application/json", body.to_string())),
    );
    assert_eq!(status, 201, "{created}");
    let location = location_of(&head);
    let (status, fetched) = service.json("GET", &location, Some(ADMIN), None);
    assert_eq!(status, 200, "the Location resolves: {fetched}");
    assert_eq!(fetched["reason"], "database migration");
    let id = fetched["id"].as_str().unwrap().to_string();
    assert_eq!(service.json("GET", &location, None, None).0, 401);
    let (status, missing) =
        service.json("GET", "/api/v1/overrides/000000000000", Some(ADMIN), None);
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("not_found"))
    );

    let (_, plan) = service.json("GET", plan_path, Some(ADMIN), None);
    let first = &plan["transitions"][0];
    assert_eq!(first["at"], "2026-12-01T07:30:00Z", "{plan}");
    assert_eq!(first["direction"], "up");
    assert_eq!(
        first["override_id"],
        id.as_str(),
        "the override causes it: {plan}"
    );
    assert!(
        plan["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["at"] != wake.as_str()),
        "the calendar's wake-up is held back: {plan}"
    );
    let (_, public_plan) = service.json("GET", plan_path, None, None);
    assert_eq!(public_plan["transitions"][0]["at"], "2026-12-01T07:30:00Z");
    assert!(
        public_plan["transitions"][0].get("override_id").is_none(),
        "ids are for tokens in scope: {public_plan}"
    );

    let (status, detail) = service.json("GET", "/api/v1/environments/staging-eu", None, None);
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["name"], "staging-eu");
    let targets = detail["targets"].as_array().unwrap();
    assert!(!targets.is_empty(), "{detail}");
    assert!(
        targets
            .iter()
            .all(|t| t["desired"] == "down" && t["capacity"].is_string()),
        "{detail}"
    );
    let (status, unknown) = service.json("GET", "/api/v1/environments/nowhere", None, None);
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("not_found")),
        "{unknown}"
    );

    let audit =
        |query: &str| service.json("GET", &format!("/api/v1/audit{query}"), Some(ADMIN), None);
    let (status, all) = audit("?limit=500");
    assert_eq!(status, 200);
    let times: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let (_, eu) = audit("?environment=staging-us");
    assert!(
        eu["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["environment"] == "staging-us"),
        "{eu}"
    );
    let (_, mine) = audit("?actor=root&event=override_created&since=2026-12-01T00:00:00Z");
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["entries"][0]["target"], format!("override/{id}"));
    let (_, none) = audit("?until=2026-12-01T00:00:00Z");
    assert_eq!(none["total"], 0, "{none}");
    for bad in [
        "?environment=nowhere",
        "?since=yesterday",
        "?until=2026-12-01T00:00:00Z&since=2026-12-02T00:00:00Z",
        "?envirnoment=staging-eu",
        "?actor=",
    ] {
        let (status, body) = audit(bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["detail"].is_string(), "{bad}: a JSON error: {body}");
    }
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
fn the_cli_client_creates_lists_extends_audits_and_cancels_an_override() {
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

    let extended = client(&["override", "extend", id, "--for", "1h"]);
    assert!(
        extended.status.success(),
        "{}",
        String::from_utf8_lossy(&extended.stderr)
    );
    assert_eq!(
        text(&extended),
        format!("extended override {id}: staging-eu up until Wed 2026-12-02 00:00 CET\n")
    );
    let beyond = client(&["override", "extend", id, "--for", "12h"]);
    assert_eq!(beyond.status.code(), Some(2), "beyond max_duration");
    assert!(String::from_utf8_lossy(&beyond.stderr).contains("at most 12h"));

    let audit = client(&["audit", "--env", "staging-eu", "--since", "2026-12-01"]);
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let audit = text(&audit);
    let events: Vec<&str> = audit
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(
        events.get(..2),
        Some(&["override_extended", "override_created"][..]),
        "newest first, only staging-eu: {audit}"
    );
    assert!(
        audit.starts_with("AT  ") || audit.starts_with("AT "),
        "{audit}"
    );
    assert!(!audit.contains("staging-us"), "{audit}");
    let later = client(&["audit", "--since", "2030-01-01"]);
    assert_eq!(text(&later), "no audit entries\n");
    let unknown = client(&["audit", "--env", "nowhere"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("400"));

    let cancelled = client(&["override", "cancel", id]);
    assert!(cancelled.status.success());
    let listed = client(&["override", "list"]);
    assert_eq!(text(&listed), "no active overrides\n");
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
        page.contains("http-equiv=\"refresh\"") && !page.contains("<form"),
        "the page refreshes itself and carries no form a refresh could wipe: {page}"
    );
    assert!(
        page.contains("href=\"/keep-up?environment=staging-eu\"")
            && page.contains("href=\"/metrics\"")
            && page.contains("href=\"/openapi.json\""),
        "links to the form, the metrics and the API: {page}"
    );
    let form_page = chromium(&[
        "--dump-dom".into(),
        service.url("/keep-up?environment=staging-eu"),
    ]);
    assert!(
        form_page.contains("action=\"/keep-up\"") && !form_page.contains("http-equiv=\"refresh\""),
        "the form has a page of its own that does not refresh: {form_page}"
    );

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
    let location = location_of(&head);
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
    let id = list["overrides"][0]["id"].as_str().unwrap().to_string();
    assert!(
        page.contains("created: staging-eu up until Tue 2026-12-01 23:30 CET.")
            && page.contains("<strong>up</strong> until Tue 2026-12-01 23:30 CET <span class=\"tag\">in force</span>")
            && page.contains(&format!("href=\"/overrides/{id}#extend\"")),
        "{page}"
    );
    // With the token, the page shows who and why.
    let (_, _, signed_in) = service.request("GET", "/", Some(OPERATOR), None);
    assert!(
        signed_in.contains("by otto: release rehearsal from the page"),
        "{signed_in}"
    );

    // Extend and Cancel lead to the override's own page; its forms act like the API.
    let override_page = chromium(&[
        "--dump-dom".into(),
        service.url(&format!("/overrides/{id}")),
    ]);
    assert!(
        override_page.contains(&format!("action=\"/overrides/{id}/extend\""))
            && override_page.contains(&format!("action=\"/overrides/{id}/cancel\"")),
        "{override_page}"
    );
    let form_post = |path: &str, form: String| {
        service.request(
            "POST",
            path,
            None,
            Some(("application/x-www-form-urlencoded", form)),
        )
    };
    // A form that succeeds answers 303 back to the page, which confirms what was `done`.
    let submit = |action: &str, form: String, done: &str| {
        let (status, head, _) = form_post(&format!("/overrides/{id}/{action}"), form);
        assert_eq!(status, 303, "{head}");
        assert!(head.contains(&format!("location: /?{done}={id}")), "{head}");
    };
    submit(
        "extend",
        format!("duration=30m&token={OPERATOR}"),
        "extended",
    );
    let (_, extended) = service.json(
        "GET",
        &format!("/api/v1/overrides/{id}"),
        Some(OPERATOR),
        None,
    );
    assert_eq!(extended["until"], "2026-12-01T23:00:00Z", "{extended}");
    let (status, _, refused) = form_post(
        &format!("/overrides/{id}/cancel"),
        "token=wrong".to_string(),
    );
    assert_eq!(status, 401, "the same authorisation as the API");
    assert!(refused.contains("Not done: unknown token"), "{refused}");

    // A newer override supersedes it: the page no longer shows it as in force.
    let (status, newer) = service.json(
        "POST",
        "/api/v1/overrides",
        Some(ADMIN),
        Some(keep_up("staging-eu", "1h", "short test")),
    );
    assert_eq!(status, 201, "{newer}");
    let page = chromium(&["--dump-dom".into(), service.url("/")]);
    let superseded =
        "until Wed 2026-12-02 00:00 CET <span class=\"tag\">superseded by a newer override</span>";
    assert!(page.contains(superseded), "{page}");
    assert_eq!(page.matches("in force</span>").count(), 1, "{page}");

    submit("cancel", format!("token={OPERATOR}"), "cancelled");
    let (status, _) = service.json(
        "GET",
        &format!("/api/v1/overrides/{id}"),
        Some(OPERATOR),
        None,
    );
    assert_eq!(status, 404, "cancelled");

    // A wrong token shows the problem on the form's page and creates nothing.
    let form = "environment=staging-eu&until=23%3A30&reason=nope&token=wrong".to_string();
    let (status, _, body) = service.request(
        "POST",
        "/keep-up",
        None,
        Some(("application/x-www-form-urlencoded", form)),
    );
    assert_eq!(status, 401);
    assert!(body.contains("Not done: unknown token"), "{body}");
    assert!(
        body.contains("action=\"/keep-up\""),
        "the form is shown again"
    );
}

/// The figure in the `<dd class="{class}">` of environment `name` on the page, in dollars.
fn dollars_on_page(page: &str, name: &str, class: &str) -> f64 {
    let section = page
        .split(&format!("id=\"env-{name}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no section for {name}: {page}"));
    let cell = section
        .split(&format!("<dd class=\"{class}\">$"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {class} figure for {name}: {section}"));
    cell.split('<').next().unwrap().parse().unwrap()
}

#[test]
fn the_status_page_shows_real_savings_and_fits_a_desktop_and_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    // A night at 1800x: both environments are down and save money by the simulated hour.
    {
        let fast = Service::demo_at_speed(dir.path(), Some(NIGHT), "1800");
        fast.wait_first_pass();
        poll("an hour of savings", Duration::from_secs(60), || {
            let (_, list) = fast.json("GET", "/api/v1/environments", None, None);
            (list["environments"][0]["month_to_date_savings"].as_f64()? > 0.05
                && fast.now()
                    > chrono::DateTime::parse_from_rfc3339(NIGHT).unwrap()
                        + chrono::Duration::hours(2))
            .then_some(())
        });
        // Let the ledger be written.
        std::thread::sleep(Duration::from_secs(3));
    }
    // The same state at 1x: the figures stand still long enough to compare.
    let service = Service::demo(dir.path(), None);
    service.wait_first_pass();
    let (_, list) = service.json("GET", "/api/v1/environments", None, None);
    let page = chromium(&["--dump-dom".into(), service.url("/")]);
    for environment in list["environments"].as_array().unwrap() {
        let name = environment["name"].as_str().unwrap();
        let saved = environment["month_to_date_savings"].as_f64().unwrap();
        assert!(saved > 0.0, "{environment}");
        let shown = dollars_on_page(&page, name, "saved");
        assert!(
            (shown - saved).abs() <= 0.011,
            "{name}: the page shows ${shown}, the API {saved}"
        );
        let cost = environment["cost_per_hour"].as_f64().unwrap();
        assert!((dollars_on_page(&page, name, "cost") - cost).abs() <= 0.011);
    }
    assert!(
        !page.contains("Saved this month</dt><dd class=\"saved\">n/a"),
        "{page}"
    );
    assert!(
        page.contains("<dt>Since</dt>")
            && page.contains("<dt>Next</dt>")
            && page.contains("<strong>up</strong> at "),
        "since when and what comes next: {page}"
    );
    assert!(
        page.contains("<h3>Targets</h3>") && page.contains("<th>Desired</th>"),
        "per-target state: {page}"
    );

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (name, width) in [("desktop", 1280), ("phone", 412)] {
        let screenshot = artifacts.join(format!("status-page-{name}.png"));
        let _ = std::fs::remove_file(&screenshot);
        chromium(&[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={width},2400"),
            "--hide-scrollbars".into(),
            service.url("/"),
        ]);
        let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a real screenshot at {width} px"
        );
        let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(png_width, width, "the screenshot is {width} px wide");
    }
    assert!(
        page.contains("name=\"viewport\" content=\"width=device-width"),
        "the page scales to a phone's width: {page}"
    );
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
        report.contains("12 selected"),
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
        warning.contains("keep it up: http://curfew.example/keep-up?environment=staging-eu"),
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
