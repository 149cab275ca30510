//! The Kubernetes provider over 10,000 Deployments in 500 namespaces, through the real kube
//! client against the fake API server: start-up, a whole night transition, and converged
//! passes (which must make no request at all).
//!
//! Run with `cargo bench --bench kube`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use curfew::providers::Provider;
use curfew::providers::kube::Settings as KubeSettings;
use support::fake_apiserver::Verb;
use support::fixtures::{deployment, namespace};
use support::kube::{KubeHarness, MONDAY_NIGHT};

const NAMESPACES: usize = 500;
const DEPLOYMENTS_PER_NAMESPACE: usize = 20;

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

fn kube_passes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (h, provider, reconciler) = runtime.block_on(async {
        let h = KubeHarness::start(CONFIG, MONDAY_NIGHT).await;
        for n in 0..NAMESPACES {
            let ns = format!("ns-{n}");
            h.server.add(namespace(&ns));
            for d in 0..DEPLOYMENTS_PER_NAMESPACE {
                h.server.add(deployment(&ns, &format!("app-{d}"), 2));
            }
        }
        let started = Instant::now();
        let provider = h
            .provider_with(KubeSettings {
                sync_timeout: Duration::from_secs(120),
                events: false,
                ..KubeSettings::default()
            })
            .await;
        println!(
            "start-up: {:?}, {} LIST requests",
            started.elapsed(),
            h.server.count(Verb::List)
        );
        let reconciler = h.reconciler(provider.clone());
        let started = Instant::now();
        let night = h.pass_at(&reconciler, MONDAY_NIGHT).await;
        println!(
            "night transition: {} actions in {:?}, {} PATCH requests",
            night.outcomes.len(),
            started.elapsed(),
            h.server.count(Verb::Patch)
        );
        (h, provider, reconciler)
    });
    h.server.clear_requests();
    c.bench_function("kube/discover_10k_deployments", |b| {
        b.iter(|| {
            let targets = runtime
                .block_on(provider.discover())
                .expect("discovers")
                .targets;
            assert_eq!(targets.len(), NAMESPACES * DEPLOYMENTS_PER_NAMESPACE);
        })
    });
    c.bench_function("kube/converged_10k_deployments", |b| {
        b.iter(|| {
            let report = runtime.block_on(reconciler.reconcile()).expect("pass runs");
            assert!(report.plan.actions.is_empty());
        })
    });
    let requests: Vec<_> = h
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb != Verb::Watch)
        .collect();
    assert!(
        requests.is_empty(),
        "converged passes made {} requests",
        requests.len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = kube_passes
}
criterion_main!(benches);
