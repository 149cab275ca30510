//! Resident memory of `curfew run` (the release binary) with its watch caches full: the fake
//! API server holds 500 namespaces with 20 Deployments each, stored as a real cluster stores
//! applied Deployments (`managedFields`, the last-applied annotation, probes, resources). Once
//! curfew has listed everything and finished its first pass (`/readyz`), this reads VmRSS and
//! VmHWM of the curfew process from /proc, settles, and reads them again.
//!
//! Run it against the release binary (the harness itself may be a debug build; only the
//! curfew process is measured):
//!
//! ```text
//! cargo build --release --bin curfew
//! CURFEW_BIN=${CARGO_TARGET_DIR:-target}/release/curfew cargo bench --profile dev --bench kube_memory
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::fake_apiserver::{FakeApiServer, Verb};
use support::fixtures::{applied_deployment, deployment, namespace};

const NAMESPACES: usize = 500;
const DEPLOYMENTS_PER_NAMESPACE: usize = 20;

/// Always up, so the pass that makes curfew ready writes nothing and the caches hold the
/// objects as created.
const CONFIG: &str = r#"
schedules:
  always: { uptime: ["always"] }
environments:
  staging:
    schedule: always
    targets:
      - kubernetes: { namespaces: ["ns-*"] }
"#;

/// `VmRSS` and `VmHWM` of process `pid`, in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads /proc");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map(|kib| kib / 1024.0)
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Whether `GET /readyz` answers 200.
fn ready(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.0 200")
}

/// The binary measured: `CURFEW_BIN` (the release build), else the one cargo built with this
/// program.
fn curfew_binary() -> String {
    std::env::var("CURFEW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_curfew").to_string())
}

/// Starts a fake cluster whose Deployments `make` builds, runs curfew against it until ready,
/// and prints its memory.
fn measure(label: &str, make: fn(&str, &str, u32) -> serde_json::Value) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(FakeApiServer::start());
    let mut bytes = 0;
    for n in 0..NAMESPACES {
        let ns = format!("ns-{n}");
        server.add(namespace(&ns));
        for d in 0..DEPLOYMENTS_PER_NAMESPACE {
            let object = make(&ns, &format!("app-{d}"), 2);
            bytes += object.to_string().len();
            server.add(object);
        }
    }
    let objects = NAMESPACES * DEPLOYMENTS_PER_NAMESPACE;
    println!(
        "{label}: {objects} Deployments, {:.1} KiB of JSON each as created",
        bytes as f64 / objects as f64 / 1024.0
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("writes");
    let config = dir.path().join("curfew.yaml");
    std::fs::write(&config, CONFIG).expect("writes");
    let started = Instant::now();
    let mut child = Command::new(curfew_binary())
        .args(["run", "--listen", "127.0.0.1:0", "-c"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("POD_NAMESPACE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts curfew");
    let pid = child.id();
    let addr = support::http::announced_address(&mut child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(&addr) {
        assert!(Instant::now() < deadline, "curfew never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "ready after {:.2} s, {} LIST and {} WATCH requests",
        started.elapsed().as_secs_f64(),
        server.count(Verb::List),
        server.count(Verb::Watch)
    );
    let (rss, peak) = memory(pid);
    println!("at ready: VmRSS {rss:.1} MiB, VmHWM {peak:.1} MiB");
    std::thread::sleep(Duration::from_secs(10));
    let (rss, peak) = memory(pid);
    println!("10 s later: VmRSS {rss:.1} MiB, VmHWM {peak:.1} MiB");
    let writes = server
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .count();
    println!("writes: {writes}");
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    measure("as applied", applied_deployment);
    measure("minimal", deployment);
}
