//! The metrics and the Grafana dashboards against a real Prometheus: `curfew demo` runs at
//! speed, Prometheus scrapes it on loopback, and every panel's query must return series.
//! `promtool check metrics` must find nothing wrong with `/metrics`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::demo::Demo;
use crate::support::http::{self, encode};
use crate::support::port::free_port;

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(variable: &str, default: &str) -> String {
    let path = std::env::var(variable).unwrap_or_else(|_| default.to_string());
    let found = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{path} is not installed: run the suite with ./tests/run, which installs it (or set {variable})"
    );
    path
}

fn start_prometheus(dir: &Path, target: &str) -> (Running, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: curfew\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let child = Command::new(tool("CURFEW_PROMETHEUS", "prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let address = format!("127.0.0.1:{port}");
    // Prometheus takes a while to open its storage on a busy machine: wait until it listens
    // and says it is ready, so that no query meets a closed port.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err()
        || http::get(&address, "/-/ready").0 != 200
    {
        assert!(Instant::now() < deadline, "Prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    (running, address)
}

/// Runs an instant query; returns the number of series or the error.
fn query(prometheus: &str, expr: &str) -> Result<usize, String> {
    let (status, body) = http::get(prometheus, &format!("/api/v1/query?query={}", encode(expr)));
    let answer: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
    if answer["status"] != "success" {
        return Err(format!("HTTP {status}: {answer}"));
    }
    Ok(answer["data"]["result"].as_array().map_or(0, Vec::len))
}

/// The value of a query that returns one series, if it does.
fn scalar(prometheus: &str, expr: &str) -> Option<f64> {
    let (_, body) = http::get(prometheus, &format!("/api/v1/query?query={}", encode(expr)));
    let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// Every panel expression of a dashboard with its variables substituted.
fn panel_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$environment", ".*")
                .replace("$__rate_interval", "15s")
                .replace("$__range", "2m");
            queries.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    queries
}

fn dashboards() -> Vec<(PathBuf, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, json)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn every_dashboard_declares_datasource_and_environment_variables() {
    let dashboards = dashboards();
    let titles: Vec<&str> = dashboards
        .iter()
        .map(|(_, d)| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Staging cost & savings",
            "Scaler health",
            "Schedule & uptime"
        ]
    );
    for (path, dashboard) in &dashboards {
        let names: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["datasource", "environment"], "{}", path.display());
    }
}

#[test]
fn prometheus_scraping_the_demo_answers_every_panel_and_promtool_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("state"), "3600");
    let demo_addr = demo.addr.clone();
    let (_prometheus, prometheus) = start_prometheus(dir.path(), &demo_addr);

    // promtool on the raw exposition.
    let (status, metrics) = http::get(&demo_addr, "/metrics");
    assert_eq!(status, 200);
    let mut promtool = Command::new(tool("CURFEW_PROMTOOL", "promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Let Prometheus collect about 20 scrapes (20 simulated hours of the demo).
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(&prometheus, "count_over_time(up{job=\"curfew\"}[1m])").unwrap_or(0.0) < 20.0 {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the demo"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let mut failures = Vec::new();
    for (path, dashboard) in dashboards() {
        for (title, expr) in panel_queries(&dashboard) {
            match query(&prometheus, &expr) {
                Ok(0) => {
                    failures.push(format!("{}: {title}: no series for {expr}", path.display()))
                }
                Ok(_) => {}
                Err(err) => failures.push(format!("{}: {title}: {expr}: {err}", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
