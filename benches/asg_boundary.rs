//! 500 Auto Scaling groups in `moto_server`, found by tag, through a down and an up boundary (a
//! Saturday noon and the Monday morning after it, days after moto's clock so that no group is
//! young enough to be spared): the release binary runs `curfew run --once` at each, talking to
//! moto through a loopback proxy that counts every AWS API call by operation. Prints the calls
//! per boundary, the time each pass took and moto's CPU time meanwhile, and checks that every
//! group went to 0 and came back exactly.
//!
//! Run it against the release binary, with `CURFEW_MOTO_SERVER` as `./tests/run` sets it:
//!
//! ```text
//! cargo build --release --bin curfew
//! CURFEW_BIN=${CARGO_TARGET_DIR:-target}/release/curfew cargo bench --profile dev --bench asg_boundary
//! ```

// Shared with the integration tests, which use more of them than this program does.
#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;
#[path = "../tests/support/port.rs"]
mod port;
#[allow(dead_code)]
#[path = "../tests/support/proc_stat.rs"]
mod proc_stat;
#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

use std::process::Command;
use std::time::Instant;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};
use moto::Moto;
use proxy::Proxy;

const GROUPS: usize = 500;
const REGION: &str = "eu-central-1";
/// Each group's capacity before the night: min, max, desired.
const CAPACITY: (i32, i32, i32) = (1, 4, 2);

const CONFIG: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - aws_asg: { tags: { "curfew:environment": staging }, region: eu-central-1 }
"#;

async fn create_groups(moto: &Moto) {
    let config = moto.sdk_config(REGION).await;
    let template = moto::create_template(moto, REGION, "nodes").await;
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    for n in 0..GROUPS {
        let name = format!("nodes-{n:03}");
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(CAPACITY.0)
            .max_size(CAPACITY.1)
            .desired_capacity(CAPACITY.2)
            .availability_zones(format!("{REGION}a"))
            .tags(
                Tag::builder()
                    .key("curfew:environment")
                    .value("staging")
                    .propagate_at_launch(false)
                    .build(),
            )
            .send()
            .await
            .expect("creates a group");
    }
}

/// Every group's (min, max, desired), read from moto directly.
async fn capacities(moto: &Moto) -> Vec<(i32, i32, i32)> {
    let config = moto.sdk_config(REGION).await;
    let mut pages = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .max_records(100)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        for group in page.expect("describes").auto_scaling_groups() {
            found.push((
                group.min_size().unwrap_or(-1),
                group.max_size().unwrap_or(-1),
                group.desired_capacity().unwrap_or(-1),
            ));
        }
    }
    found
}

/// The wall time of a pass, process included, and the CPU time moto used meanwhile.
struct Timed {
    wall: f64,
    moto_cpu: f64,
}

/// Runs `curfew run --once --at AT` against the proxy.
fn run_once(moto: &Moto, proxy: &Proxy, dir: &std::path::Path, at: &str) -> Timed {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, CONFIG).expect("writes");
    let moto_cpu = proc_stat::cpu_seconds(moto.pid()).unwrap_or_default();
    let started = Instant::now();
    let output = Command::new(curfew_binary())
        .args(["run", "--once", "--at", at, "-c"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .output()
        .expect("runs curfew");
    let elapsed = started.elapsed().as_secs_f64();
    let moto_cpu = proc_stat::cpu_seconds(moto.pid()).unwrap_or_default() - moto_cpu;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Timed {
        wall: elapsed,
        moto_cpu,
    }
}

fn report(boundary: &str, timed: &Timed, proxy: &Proxy) {
    let counts = proxy.tally(true).calls;
    let total: usize = counts.values().sum();
    println!(
        "{boundary}: {:.2} s, {total} calls, moto's CPU time meanwhile {:.2} s",
        timed.wall, timed.moto_cpu
    );
    for (operation, count) in counts {
        println!("  {operation}: {count}");
    }
}

/// The binary measured: `CURFEW_BIN` (the release build), else the one cargo built with this
/// program.
fn curfew_binary() -> String {
    std::env::var("CURFEW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_curfew").to_string())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        let started = Instant::now();
        create_groups(&moto).await;
        println!(
            "{GROUPS} groups created in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let proxy = Proxy::start(&moto.endpoint).await;
        let (down_at, up_at) = moto.weekend();

        let timed = run_once(&moto, &proxy, dir.path(), &down_at);
        report("night boundary", &timed, &proxy);
        let down = capacities(&moto).await;
        assert_eq!(down.len(), GROUPS);
        assert!(down.iter().all(|c| *c == (0, 0, 0)), "every group is down");

        let timed = run_once(&moto, &proxy, dir.path(), &up_at);
        report("morning boundary", &timed, &proxy);
        let up = capacities(&moto).await;
        assert!(up.iter().all(|c| *c == CAPACITY), "every group is restored");

        let timed = run_once(&moto, &proxy, dir.path(), &up_at);
        report("converged (same instant again)", &timed, &proxy);
    });
}
