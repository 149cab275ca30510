//! Wake on request and sleep when idle, through the real binary: the wake gateway in proxy
//! mode in front of a real upstream HTTP server with the workloads on the fake API server;
//! idle sleep from the proxy's traffic in the demo under its warped clock; idle sleep from a
//! real Prometheus query.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::demo::Demo;
use crate::support::fixtures::{deployment, namespace};
use crate::support::http;
use crate::support::kube::{KubeHarness, MONDAY_NIGHT};
use crate::support::port::free_port;
use crate::support::process::{address_after, announced_lines};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

/// The host people use for the environment behind the gateway.
const HOST: &str = "shop.staging.test";
/// A browser's user agent.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// === the upstream ===

/// What the upstream answers: the method, the URI, the `x-test` header, the `Host` it saw
/// and the size of the body it read.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> String {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    format!(
        "upstream: {method} {uri} x-test={} host={} body={}\n",
        text("x-test"),
        text("host"),
        body.len()
    )
}

/// Accepts an upgrade to the `echo` protocol and sends back every byte it receives.
async fn tunnel(mut request: Request) -> Response {
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let (mut reader, mut writer) = tokio::io::split(&mut io);
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "upgrade"), (header::UPGRADE, "echo")],
    )
        .into_response()
}

/// Starts the upstream on a free loopback port; returns its address.
async fn start_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address").to_string();
    let app = Router::new()
        .route("/tunnel", axum::routing::get(tunnel))
        .fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

// === helpers ===

/// One request to the gateway at `gateway` for [`HOST`]: status, head and body.
fn to_gateway(
    gateway: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut all = vec![("X-Forwarded-Host", HOST)];
    all.extend_from_slice(headers);
    http::exchange(gateway, method, path, &all, body)
}

/// Polls `check` every 200 ms until it holds or `within` passes.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The environment `name` in the list of the service at `api`.
fn environment(api: &str, name: &str) -> serde_json::Value {
    let (_, body) = http::get(api, "/api/v1/environments");
    let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    list["environments"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// The value of the sample of `/metrics` at `api` that starts with `series`, if any.
fn metric(api: &str, series: &str) -> Option<f64> {
    let (_, body) = http::get(api, "/metrics");
    body.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Starts `curfew run --at MONDAY_NIGHT` on configuration `yaml` in `dir` (its log in
/// `dir/curfew.log`); returns the process and the API's and the gateway's addresses.
fn start_run(dir: &Path, yaml: &str) -> (Running, String, String) {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, yaml).expect("writes");
    let mut command =
        crate::support::process::curfew(crate::support::process::run_args(&config, dir));
    command.args(["--at", MONDAY_NIGHT]);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("curfew.log")).expect("log"))
        .spawn()
        .expect("starts");
    let lines = announced_lines(&mut child, 2);
    let running = Running(child);
    let api = address_after(&lines, "listening on").expect("the API's address");
    let gateway = address_after(&lines, "wake gateway").expect("the gateway's address");
    (running, api, gateway)
}

fn read_state(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

// === proxy mode ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_sleeping_environment_wakes_it_and_is_forwarded_once_ready() {
    let upstream = start_upstream().await;
    let gateway_port = free_port();
    let yaml = format!(
        r#"
timezone: Europe/Berlin
schedules:
  office-hours: {{ uptime: ["Mon-Fri 07:00-20:00"] }}
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: {{ namespaces: [shop] }}
    wake:
      hosts: [{HOST}]
      upstream: http://{upstream}
      auto: true
      keep_up_for: 2h
server:
  listen: 127.0.0.1:0
  wake_listen: 127.0.0.1:{gateway_port}
"#
    );
    let h = KubeHarness::start(&yaml, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).expect("writes");
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, &yaml).expect("writes");
    let state = dir.path().join("state");
    let child = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(["run", "--at", MONDAY_NIGHT, "-c"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("curfew.log")).expect("log"))
        .spawn()
        .expect("starts");
    let _running = Running(child);
    let gateway = format!("127.0.0.1:{gateway_port}");
    let log = || std::fs::read_to_string(dir.path().join("curfew.log")).unwrap_or_default();

    // Night: the workload goes down, and the gateway answers for it.
    eventually(Duration::from_secs(30), "the night scale-down", || {
        h.replicas("deployments", "shop", "web").0 == 0 && TcpStream::connect(&gateway).is_ok()
    });

    // Probes, bots, HEAD and ignored paths never wake it.
    /// Method, path and headers of a request.
    type Probe<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let probes: [Probe; 4] = [
        ("GET", "/", &[("User-Agent", "kube-probe/1.33")]),
        (
            "GET",
            "/",
            &[(
                "User-Agent",
                "Googlebot/2.1 (+http://www.google.com/bot.html)",
            )],
        ),
        ("HEAD", "/", &[("User-Agent", BROWSER)]),
        ("GET", "/healthz", &[("User-Agent", BROWSER)]),
    ];
    for (method, path, headers) in probes {
        let (status, _, body) = to_gateway(&gateway, method, path, headers, "");
        assert_eq!(status, 503, "{method} {path} {headers:?}: {body}");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.replicas("deployments", "shop", "web").0, 0, "{}", log());
    assert!(!read_state(&state, "overrides.json").contains("wake:"));

    // An API client wakes it: 503 with Retry-After and JSON, then the answer once ready.
    let client = [
        ("User-Agent", "curl/8.5.0"),
        ("Accept", "application/json"),
        ("X-Test", "abc"),
    ];
    let (status, head, body) = to_gateway(&gateway, "GET", "/cart?id=7", &client, "");
    assert_eq!(status, 503, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 10"),
        "{head}"
    );
    let answer: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(answer["error"], "waking", "{answer}");
    assert_eq!(answer["environment"], "staging");
    let mut served = String::new();
    eventually(
        Duration::from_secs(30),
        "the request served after the wake",
        || {
            let (status, _, body) = to_gateway(&gateway, "GET", "/cart?id=7", &client, "");
            served = body;
            status == 200
        },
    );
    assert_eq!(
        served,
        format!("upstream: GET /cart?id=7 x-test=abc host={gateway} body=0\n"),
        "the method, URI and headers (Host included) pass unchanged"
    );
    assert_eq!(h.replicas("deployments", "shop", "web").0, 3);

    // The wake is an ordinary, audited override.
    let overrides = read_state(&state, "overrides.json");
    assert!(overrides.contains("wake:127.0.0.1"), "{overrides}");
    let audit = read_state(&state, "audit.json");
    assert!(
        audit.contains("override_created") && audit.contains("wake:127.0.0.1"),
        "{audit}"
    );

    // Bodies stream through.
    let upload = "x".repeat(1 << 20);
    let (status, _, body) = to_gateway(&gateway, "POST", "/upload", &client, &upload);
    assert_eq!(status, 200);
    assert!(body.contains("body=1048576"), "{body}");

    // Upgraded connections are tunnelled.
    let mut stream = TcpStream::connect(&gateway).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /tunnel HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: curl/8.5.0\r\n\
         Connection: Upgrade\r\nUpgrade: echo\r\n\r\n"
    )
    .expect("writes");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("reads the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
        .write_all(b"ping through the tunnel")
        .expect("writes");
    let mut echoed = [0u8; 23];
    stream.read_exact(&mut echoed).expect("reads the echo");
    assert_eq!(&echoed, b"ping through the tunnel");
}

// === idle from the proxy's traffic, in the demo ===

#[test]
fn the_demo_preview_sleeps_when_idle_wakes_on_a_request_and_sleeps_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Monday 09:00 in Berlin: inside preview's uptime; 45 quiet minutes are 4.5 s at 600x.
    let demo = Demo::launch(
        &dir.path().join("state"),
        "600",
        Some("2026-11-30T08:00:00Z"),
    );
    demo.wait_ready();
    let (_, page) = demo.get("/");
    assert!(
        page.contains(&format!(
            "Wake gateway: <a href=\"http://{}/\">",
            demo.gateway
        )),
        "the status page shows the gateway"
    );
    let idle = |demo: &Demo| {
        let preview = environment(&demo.addr, "preview");
        preview["state"] == "down"
            && preview["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("idle since"))
    };
    eventually(Duration::from_secs(30), "preview idle", || idle(&demo));
    assert_eq!(
        metric(
            &demo.addr,
            "curfew_idle_sleeps_total{environment=\"preview\"}"
        ),
        Some(1.0)
    );
    // staging-eu, without `wake`, stays up through the same quiet spell.
    assert_eq!(environment(&demo.addr, "staging-eu")["state"], "up");

    // A request wakes it; it is served once ready.
    let curl = [("User-Agent", "curl/8.5.0")];
    let (status, _, _) = http::exchange(&demo.gateway, "GET", "/", &curl, "");
    assert_eq!(status, 503);
    let mut served = String::new();
    eventually(Duration::from_secs(30), "preview served", || {
        let (status, _, body) = http::exchange(&demo.gateway, "GET", "/hello", &curl, "");
        served = body;
        status == 200
    });
    assert_eq!(
        served,
        "hello from the preview environment: you asked for /hello\n"
    );
    let preview = environment(&demo.addr, "preview");
    assert_eq!(preview["state"], "up");
    assert_eq!(preview["override_count"], 1, "{preview}");
    let audit = read_state(&dir.path().join("state"), "audit.json");
    assert!(audit.contains("\"actor\":\"wake:127.0.0.1\""), "{audit}");
    assert_eq!(
        metric(
            &demo.addr,
            "curfew_wakes_total{environment=\"preview\",how=\"auto\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &demo.addr,
            "curfew_wake_ready_seconds_count{environment=\"preview\"}"
        ),
        Some(1.0)
    );

    // The wake's two hours end, 45 quiet minutes pass: asleep again (16.5 s at 600x).
    eventually(Duration::from_secs(60), "preview idle again", || {
        idle(&demo)
            && metric(
                &demo.addr,
                "curfew_idle_sleeps_total{environment=\"preview\"}",
            ) == Some(2.0)
    });
    let saved = metric(
        &demo.addr,
        "curfew_idle_savings_dollars_total{environment=\"preview\"}",
    );
    assert!(saved.is_some_and(|dollars| dollars > 0.0), "{saved:?}");
}

// === idle from a Prometheus query ===

/// A Prometheus exposition of one gauge, `test_traffic`, whose value the test sets.
async fn start_exporter(traffic: std::sync::Arc<std::sync::atomic::AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address").to_string();
    let app = Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let value = traffic.load(std::sync::atomic::Ordering::SeqCst);
            async move { format!("# TYPE test_traffic gauge\ntest_traffic {value}\n") }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn start_prometheus(dir: &Path, target: &str) -> (Running, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("writes");
    let binary = std::env::var("CURFEW_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "{binary} does not start ({err}): run the suite with ./tests/run, which installs it"
            )
        });
    let running = Running(child);
    let address = format!("127.0.0.1:{port}");
    eventually(Duration::from_secs(30), "Prometheus ready", || {
        TcpStream::connect(&address).is_ok() && http::get(&address, "/-/ready").0 == 200
    });
    (running, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_sleeps_when_a_prometheus_query_says_it_is_idle_and_wakes_on_a_request() {
    let traffic = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let exporter = start_exporter(traffic.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prometheus, prometheus) = start_prometheus(dir.path(), &exporter);
    eventually(Duration::from_secs(30), "a first scrape", || {
        let (_, body) = http::get(&prometheus, "/api/v1/query?query=max(test_traffic)");
        body.contains("\"1\"]")
    });
    let yaml = format!(
        r#"
schedules:
  always-up: {{ uptime: always }}
environments:
  staging:
    schedule: always-up
    targets:
      - kubernetes: {{ namespaces: [app] }}
    wake:
      hosts: [{HOST}]
      auto: true
      idle_after: 4s
      idle:
        prometheus:
          url: http://{prometheus}
          query: max(test_traffic)
          below: 0.5
          interval: 1s
server:
  listen: 127.0.0.1:0
  wake_listen: 127.0.0.1:0
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096, min: 1, max: 3, desired: 1, pods_per_node: 20 }}
  namespaces:
    - {{ name: app, node_group: nodes, deployments: 2 }}
"#
    );
    let (_running, api, gateway) = start_run(dir.path(), &yaml);
    let process_log = || std::fs::read_to_string(dir.path().join("curfew.log")).unwrap_or_default();

    // Traffic: up for longer than the idle spell.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        environment(&api, "staging")["state"],
        "up",
        "{}",
        process_log()
    );

    // Quiet: down, "idle since".
    traffic.store(0, std::sync::atomic::Ordering::SeqCst);
    eventually(Duration::from_secs(30), "idle by the query", || {
        let staging = environment(&api, "staging");
        staging["state"] == "down"
            && staging["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("idle since"))
    });

    // The next request wakes it (error-backend mode: the ingress sends what finds no backend).
    let (status, _, body) = to_gateway(
        &gateway,
        "GET",
        "/",
        &[
            ("User-Agent", "curl/8.5.0"),
            ("X-Original-URI", "/orders/42"),
        ],
        "",
    );
    assert_eq!(status, 503, "{body}");
    eventually(Duration::from_secs(20), "woken", || {
        environment(&api, "staging")["state"] == "up"
    });
    // A browser that asks meanwhile sees the progress, reloading the URL it asked for.
    let browser = [
        ("User-Agent", BROWSER),
        ("Accept", "text/html"),
        ("X-Original-URI", "/orders/42"),
    ];
    let (status, _, body) = to_gateway(&gateway, "GET", "/", &browser, "");
    assert_eq!(status, 503);
    assert!(
        body.contains("staging is waking up")
            && body.contains("<meta http-equiv=\"refresh\" content=\"3; url=/orders/42\">"),
        "{body}"
    );
}

// === waking when asked ===

#[test]
fn without_auto_a_browser_is_asked_and_a_token_holder_wakes_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = crate::support::process::tokens_file(
        dir.path(),
        &[
            ("otto", "operator", "[staging]", "otto-secret"),
            ("vera", "viewer", "[staging]", "vera-secret"),
        ],
    );
    let yaml = format!(
        r#"
timezone: Europe/Berlin
schedules:
  office-hours: {{ uptime: ["Mon-Fri 07:00-20:00"] }}
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: {{ namespaces: [app] }}
    wake: {{ hosts: [{HOST}], keep_up_for: 3h }}
server:
  listen: 127.0.0.1:0
  wake_listen: 127.0.0.1:0
  tokens_file: {}
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096, min: 1, max: 3, desired: 1, pods_per_node: 20 }}
  namespaces:
    - {{ name: app, node_group: nodes, deployments: 2 }}
"#,
        tokens.display()
    );
    let (_running, api, gateway) = start_run(dir.path(), &yaml);
    eventually(Duration::from_secs(20), "the first pass", || {
        http::get(&api, "/readyz").0 == 200
    });

    // A browser gets the page that asks; an API client the JSON 503.
    let browser = [("User-Agent", BROWSER), ("Accept", "text/html")];
    let (status, head, page) = to_gateway(&gateway, "GET", "/cart", &browser, "");
    assert_eq!(status, 503);
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert!(
        page.contains("staging is asleep (since Mon 2026-11-30 20:00 CET, next scheduled wake Tue 2026-12-01 07:00 CET)")
            && page.contains("Wake it for 3h")
            && page.contains("name=\"token\""),
        "{page}"
    );
    let api_client = [("User-Agent", "curl/8.5.0"), ("Accept", "application/json")];
    let (status, _, body) = to_gateway(&gateway, "GET", "/cart", &api_client, "");
    assert_eq!(status, 503);
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["error"], "asleep");
    assert!(!read_state(&dir.path().join("state"), "overrides.json").contains("wake:"));

    // A viewer may not wake it; an operator's token does, and goes back to the page asked for.
    let form = |token: &str| format!("token={token}&return_to=%2Fcart");
    let form_headers = [
        ("User-Agent", BROWSER),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (status, _, body) = to_gateway(
        &gateway,
        "POST",
        "/.curfew/wake",
        &form_headers,
        &form("vera-secret"),
    );
    assert_eq!(status, 403, "{body}");
    let (status, head, _) = to_gateway(
        &gateway,
        "POST",
        "/.curfew/wake",
        &form_headers,
        &form("otto-secret"),
    );
    assert_eq!(status, 303, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("location: /cart"),
        "{head}"
    );
    let overrides = read_state(&dir.path().join("state"), "overrides.json");
    assert!(overrides.contains("wake:otto"), "{overrides}");
    eventually(Duration::from_secs(20), "up", || {
        environment(&api, "staging")["state"] == "up"
    });
}

#[test]
fn a_person_signed_in_through_the_trusted_proxy_wakes_without_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
timezone: Europe/Berlin
schedules:
  office-hours: {{ uptime: ["Mon-Fri 07:00-20:00"] }}
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: {{ namespaces: [app] }}
    wake: {{ hosts: [{HOST}] }}
server:
  listen: 127.0.0.1:0
  wake_listen: 127.0.0.1:0
  auth:
    proxy:
      user_header: X-Forwarded-User
      trusted_sources: [127.0.0.1/32]
      users:
        - {{ name: alice@example.com, role: operator, environments: [staging] }}
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096, min: 1, max: 3, desired: 1, pods_per_node: 20 }}
  namespaces:
    - {{ name: app, node_group: nodes, deployments: 2 }}
"#
    );
    let (_running, api, gateway) = start_run(dir.path(), &yaml);
    eventually(Duration::from_secs(20), "the first pass", || {
        http::get(&api, "/readyz").0 == 200
    });
    let alice = [
        ("User-Agent", BROWSER),
        ("Accept", "text/html"),
        ("X-Forwarded-User", "alice@example.com"),
    ];
    let (status, _, page) = to_gateway(&gateway, "GET", "/", &alice, "");
    assert_eq!(status, 503);
    assert!(
        page.contains("Acting as alice@example.com") && !page.contains("type=\"password\""),
        "{page}"
    );
    let form = [
        ("User-Agent", BROWSER),
        ("X-Forwarded-User", "alice@example.com"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let (status, head, _) = to_gateway(
        &gateway,
        "POST",
        "/.curfew/wake",
        &form,
        "token=&return_to=%2F",
    );
    assert_eq!(status, 303, "{head}");
    // The same form sent from another site acts for nobody.
    let cross_site = [
        ("User-Agent", BROWSER),
        ("X-Forwarded-User", "alice@example.com"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    let (status, _, _) = to_gateway(
        &gateway,
        "POST",
        "/.curfew/wake",
        &cross_site,
        "token=&return_to=%2F",
    );
    assert_eq!(status, 403);
    let overrides = read_state(&dir.path().join("state"), "overrides.json");
    assert!(overrides.contains("wake:alice@example.com"), "{overrides}");
}
