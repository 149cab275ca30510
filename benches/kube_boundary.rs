//! A 10,000-Deployment boundary at default settings: the fake API server holds 500 namespaces
//! with 20 Deployments each (stored as a real cluster stores applied ones), and the release
//! binary runs `curfew run --once --at T` at Monday 22:00 in Berlin (down), Tuesday 07:30 (up)
//! and once more at the same instant (converged), with a configuration that sets nothing but
//! the schedule and the selection. For each run it prints the wall time from process start to
//! exit, curfew's CPU time, its peak resident memory (VmHWM, sampled from /proc while it runs),
//! the requests by verb, and the time the fake spent in its handlers (what the fake costs,
//! apart from curfew).
//!
//! Then `curfew simulate --discover --month 2026-12` on the same estate: wall time, CPU and
//! memory of pricing 10,000 discovered Deployments, read-only.
//!
//! Then the long-running service: `curfew run` on a schedule that is always down, so its first
//! pass scales all 10,000 down; while it does, one client reads `GET /api/v1/environments`
//! back to back without a token (latency percentiles), and once 2,000 Deployments are down an
//! override keeps the environment up: the time from its `201` to the first write that restores
//! a Deployment, and the scale-down writes sent after the `201`.
//!
//! ```text
//! cargo build --release --bin curfew
//! CURFEW_BIN=${CARGO_TARGET_DIR:-target}/release/curfew cargo bench --profile dev --bench kube_boundary
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fake_apiserver::{FakeApiServer, Request, Verb};
use support::fixtures::{applied_deployment, namespace};
use support::proc_stat;

const NAMESPACES: usize = 500;
const DEPLOYMENTS_PER_NAMESPACE: usize = 20;
const REPLICAS: u32 = 2;
/// Monday 22:00 in Berlin: down. Tuesday 07:30: up.
const NIGHT: &str = "2026-11-30T21:00:00Z";
const MORNING: &str = "2026-12-01T06:30:00Z";

/// Defaults only: no `reconciler:` or `kubernetes:` section.
const CONFIG: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: ["ns-*"] }
"#;

/// The service's configuration: always down, so its first pass is a boundary at any hour.
const SERVICE_CONFIG: &str = r#"
schedules:
  parked: { uptime: ["never"] }
environments:
  staging:
    schedule: parked
    targets:
      - kubernetes: { namespaces: ["ns-*"] }
server:
  tokens_file: tokens.yaml
"#;

const TOKEN: &str = "bench-operator-token-0123456789";

/// The binary measured: `CURFEW_BIN` (the release build), else the one cargo built with this
/// program.
fn curfew_binary() -> String {
    std::env::var("CURFEW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_curfew").to_string())
}

/// `VmHWM` of process `pid` in MiB and its CPU time (user + system) in seconds, while it runs.
fn sample(pid: u32) -> Option<(f64, f64)> {
    Some((proc_stat::peak_rss_mib(pid)?, proc_stat::cpu_seconds(pid)?))
}

/// Waits for `child`, sampling its memory and CPU time every 2 ms; returns the exit code and
/// the last sample.
fn wait_sampling(child: &mut Child) -> (i32, (f64, f64)) {
    let pid = child.id();
    let mut last = (0.0, 0.0);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return (status.code().unwrap_or(-1), last);
        }
        if let Some(now) = sample(pid) {
            last = now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Requests by verb.
fn by_verb(requests: &[Request]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        *counts.entry(format!("{:?}", request.verb)).or_default() += 1;
    }
    counts
}

/// How many Deployments run at `replicas`.
fn deployments_at(server: &FakeApiServer, replicas: u64) -> usize {
    (0..NAMESPACES)
        .flat_map(|n| (0..DEPLOYMENTS_PER_NAMESPACE).map(move |d| (n, d)))
        .filter(|(n, d)| {
            server
                .get(
                    "apps",
                    "v1",
                    "deployments",
                    &format!("ns-{n}"),
                    &format!("app-{d}"),
                )
                .is_some_and(|o| o["spec"]["replicas"].as_u64() == Some(replicas))
        })
        .count()
}

/// Runs curfew with `args` (then `-c curfew.yaml`) to its end, prints its
/// figures and returns its standard output and the requests by verb.
fn timed(
    server: &FakeApiServer,
    dir: &Path,
    label: &str,
    args: &[&str],
) -> (String, BTreeMap<String, usize>) {
    server.clear_requests();
    let started = Instant::now();
    let mut child = Command::new(curfew_binary())
        .args(args)
        .arg("-c")
        .arg(dir.join("curfew.yaml"))
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts curfew");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).expect("reads");
        text
    });
    let (code, (peak, cpu)) = wait_sampling(&mut child);
    let wall = started.elapsed().as_secs_f64();
    let requests = server.requests();
    let verbs = by_verb(&requests);
    println!(
        "{label}: exit {code}, wall {wall:.2} s, curfew CPU {cpu:.2} s, VmHWM {peak:.1} MiB, \
         fake busy {:.2} s, requests {verbs:?}",
        server.busy().as_secs_f64()
    );
    assert_eq!(code, 0, "{label}: exit status");
    (reader.join().expect("read"), verbs)
}

/// Runs `curfew run --once --at AT` and returns the PATCH requests.
fn boundary(server: &FakeApiServer, dir: &Path, label: &str, at: &str) -> usize {
    let state = dir.join("state").display().to_string();
    let args = ["run", "--once", "--at", at, "--state-dir", &state];
    let (_, verbs) = timed(server, dir, label, &args);
    verbs.get("Patch").copied().unwrap_or(0)
}

/// `curfew simulate --discover --month 2026-12`: what the schedule saves on the 10,000
/// Deployments, discovered read-only.
fn simulate_discover(server: &FakeApiServer, dir: &Path) {
    let args = ["simulate", "--discover", "--month", "2026-12", "--json"];
    let (stdout, verbs) = timed(server, dir, "simulate --discover", &args);
    let writes = server
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .count();
    assert_eq!(writes, 0, "simulate writes nothing: {verbs:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    println!("simulate --discover: {report}");
}

/// `method path` with a JSON `body`, and the bench's token when `authorized`; the status code
/// and the body.
fn http(addr: &str, method: &str, path: &str, body: &str, authorized: bool) -> (u16, String) {
    let bearer = format!("Bearer {TOKEN}");
    let mut headers = vec![("Content-Type", "application/json")];
    if authorized {
        headers.push(("Authorization", bearer.as_str()));
    }
    support::http::send(addr, method, path, &headers, body)
}

/// The service through a boundary: API latency during it, and how soon an override acts.
fn service(server: &FakeApiServer, dir: &Path) {
    server.clear_requests();
    let config = dir.join("service.yaml");
    std::fs::write(&config, SERVICE_CONFIG).expect("writes");
    let hash = curfew::api::auth::sha256_hex(TOKEN);
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "tokens:\n  - {{ name: bench, role: operator, environments: ['*'], sha256: {hash} }}\n"
        ),
    )
    .expect("writes");
    // curfew refuses a tokens file other users can read.
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("restricts the tokens file");
    let mut child = Command::new(curfew_binary())
        .args(["run", "--listen", "127.0.0.1:0", "-c"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("service-state"))
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("POD_NAMESPACE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts curfew");
    let addr = support::http::announced_address(&mut child);
    let patches = || server.count(Verb::Patch);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut latencies = Vec::new();
    let mut override_at = None;
    while Instant::now() < deadline {
        let started = Instant::now();
        // Read as the status page and dashboards do, without a token: a token's requests are
        // rate-limited, and this client reads back to back.
        let (code, answer) = http(&addr, "GET", "/api/v1/environments", "", false);
        latencies.push(started.elapsed());
        assert_eq!(code, 200, "{answer}");
        if override_at.is_none() && patches() >= 2_000 {
            let body =
                r#"{"environment": "staging", "state": "up", "duration": "1h", "reason": "bench"}"#;
            let (code, answer) = http(&addr, "POST", "/api/v1/overrides", body, true);
            assert_eq!(code, 201, "{answer}");
            override_at = Some((Instant::now(), patches()));
        }
        if let Some((at, _)) = override_at
            && at.elapsed() > Duration::from_secs(3)
        {
            break;
        }
    }
    let (at, patches_at_override) = override_at.expect("the boundary reached 2,000 writes");
    let requests = server.requests();
    let after: Vec<&Request> = requests
        .iter()
        .filter(|r| r.verb == Verb::Patch && r.at >= at)
        .collect();
    let restores = |r: &Request| r.body.contains(&format!("\"replicas\":{REPLICAS}"));
    let first_restore = after.iter().find(|r| restores(r)).map(|r| r.at - at);
    let downs_after = after
        .iter()
        .take_while(|r| !restores(r))
        .filter(|r| r.body.contains("\"replicas\":0"))
        .count();
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "service: {} GET /api/v1/environments during the boundary: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(0.5),
        percentile(0.99),
        percentile(1.0)
    );
    println!(
        "service: override at {patches_at_override} writes; first restoring write {:?} after its 201; \
         {downs_after} scale-down writes sent after the 201",
        first_restore
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(FakeApiServer::start());
    // Created a month before the night, so that no grace period spares a workload.
    let created = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
        .expect("an instant")
        .with_timezone(&chrono::Utc);
    server.set_now(created);
    for n in 0..NAMESPACES {
        let ns = format!("ns-{n}");
        server.add(namespace(&ns));
        for d in 0..DEPLOYMENTS_PER_NAMESPACE {
            server.add(applied_deployment(&ns, &format!("app-{d}"), REPLICAS));
        }
    }
    let total = NAMESPACES * DEPLOYMENTS_PER_NAMESPACE;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("kubeconfig"), server.kubeconfig()).expect("writes");
    std::fs::write(dir.path().join("curfew.yaml"), CONFIG).expect("writes");

    let night = boundary(&server, dir.path(), "night (10,000 down)", NIGHT);
    assert_eq!(night, total, "one PATCH per workload");
    assert_eq!(deployments_at(&server, 0), total);
    let morning = boundary(&server, dir.path(), "morning (10,000 up)", MORNING);
    assert_eq!(morning, total, "one PATCH per workload");
    assert_eq!(deployments_at(&server, u64::from(REPLICAS)), total);
    let converged = boundary(&server, dir.path(), "converged (same instant)", MORNING);
    assert_eq!(converged, 0, "a converged pass writes nothing");
    let writes = server
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .count();
    assert_eq!(writes, 0, "no write of any kind when converged");
    simulate_discover(&server, dir.path());

    service(&server, dir.path());
}
