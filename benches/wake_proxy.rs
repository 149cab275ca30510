//! What the wake gateway's proxy costs, at default settings: an upstream on loopback answers
//! small requests and a 1 MiB download; the same requests go to it directly and through
//! `curfew run`'s wake gateway (`wake.upstream`, the environment up), over keep-alive
//! connections. Prints the latency of sequential requests (median, 90th and 99th percentile)
//! and the throughput of 16 clients at once, each both ways, and the ratios.
//!
//! ```text
//! cargo build --release --bin curfew
//! CURFEW_BIN=${CARGO_TARGET_DIR:-target}/release/curfew cargo bench --profile dev --bench wake_proxy
//! ```

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Sequential requests per way.
const SEQUENTIAL: usize = 3_000;
/// Clients at once in the throughput run.
const CLIENTS: usize = 16;
/// How long each throughput run lasts.
const THROUGHPUT_FOR: Duration = Duration::from_secs(5);
/// Downloads of 1 MiB per way.
const DOWNLOADS: usize = 200;

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curfew_bin() -> String {
    std::env::var("CURFEW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_curfew").to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("address")
        .port()
}

type HttpClient = Client<HttpConnector, Body>;

/// `GET http://{address}{path}` with the wake host; the body's length.
async fn fetch(client: &HttpClient, address: &str, path: &str) -> usize {
    let request = http::Request::get(format!("http://{address}{path}"))
        .header("host", "shop.staging.test")
        .header("user-agent", "bench/1")
        .body(Body::empty())
        .expect("a request");
    let response = client.request(request).await.expect("an answer");
    assert_eq!(response.status(), 200);
    response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .len()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Latencies of `count` sequential requests for `path`, sorted.
async fn sequential(client: &HttpClient, address: &str, path: &str, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        fetch(client, address, path).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

/// Requests per second of [`CLIENTS`] clients at once for [`THROUGHPUT_FOR`].
async fn throughput(client: &HttpClient, address: &str) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + THROUGHPUT_FOR;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, address, done) = (client.clone(), address.to_string(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                fetch(&client, &address, "/").await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a client");
    }
    done.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64()
}

fn row(name: &str, direct: &[Duration], proxied: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<22} direct p50 {:>7.3} ms p90 {:>7.3} ms p99 {:>7.3} ms | gateway p50 {:>7.3} ms p90 {:>7.3} ms p99 {:>7.3} ms | p50 ratio {:.2}",
        ms(percentile(direct, 0.5)),
        ms(percentile(direct, 0.9)),
        ms(percentile(direct, 0.99)),
        ms(percentile(proxied, 0.5)),
        ms(percentile(proxied, 0.9)),
        ms(percentile(proxied, 0.99)),
        ms(percentile(proxied, 0.5)) / ms(percentile(direct, 0.5)),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let upstream = listener.local_addr().expect("address").to_string();
        let big = Arc::new(vec![b'x'; 1 << 20]);
        let app = Router::new()
            .route("/big", axum::routing::get(move || {
                let big = big.clone();
                async move { big.as_ref().clone() }
            }))
            .fallback(|| async { "ok\n" });
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().expect("temp dir");
        let gateway = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("curfew.yaml");
        std::fs::write(
            &config,
            format!(
                r#"
schedules:
  always-up: {{ uptime: always }}
environments:
  staging:
    schedule: always-up
    targets:
      - kubernetes: {{ namespaces: [app] }}
    wake: {{ hosts: [shop.staging.test], upstream: "http://{upstream}" }}
server: {{ listen: 127.0.0.1:0, wake_listen: "{gateway}" }}
simulation:
  node_groups:
    - {{ name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096, min: 1, max: 3, desired: 1, pods_per_node: 20 }}
  namespaces:
    - {{ name: app, node_group: nodes, deployments: 2 }}
"#
            ),
        )
        .expect("writes");
        let child = Command::new(curfew_bin())
            .args(["run", "--at", "2026-11-30T12:00:00Z", "-c"])
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("curfew starts");
        let _curfew = Running(child);
        let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let request = http::Request::get(format!("http://{gateway}/"))
                .header("host", "shop.staging.test")
                .header("user-agent", "bench/1")
                .body(Body::empty())
                .expect("a request");
            if let Ok(response) = client.request(request).await
                && response.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "the gateway never forwarded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Warm both ways' connections.
        sequential(&client, &upstream, "/", 200).await;
        sequential(&client, &gateway, "/", 200).await;

        let direct = sequential(&client, &upstream, "/", SEQUENTIAL).await;
        let proxied = sequential(&client, &gateway, "/", SEQUENTIAL).await;
        row("GET / (3 bytes)", &direct, &proxied);
        let direct = sequential(&client, &upstream, "/big", DOWNLOADS).await;
        let proxied = sequential(&client, &gateway, "/big", DOWNLOADS).await;
        row("GET /big (1 MiB)", &direct, &proxied);
        let direct = throughput(&client, &upstream).await;
        let proxied = throughput(&client, &gateway).await;
        println!(
            "{CLIENTS} clients at once    direct {direct:>8.0} req/s | gateway {proxied:>8.0} req/s | ratio {:.2}",
            proxied / direct
        );
    });
}
