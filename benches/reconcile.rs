//! Reconcile passes over a large simulated estate: 10,000 workloads in 500 namespaces and 200
//! node groups. Converged (no action expected) and with every target changing.
//!
//! Run with `cargo bench --bench reconcile`.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use curfew::clock::ManualClock;
use curfew::config::Config;
use curfew::overrides::FileOverrideStore;
use curfew::providers::sim::{Estate, Faults, SimProvider};
use curfew::reconciler::{Reconciler, RetryPolicy, Settings};
use curfew::state::StateDir;

const GROUPS: usize = 200;
const NAMESPACES: usize = 500;
const DEPLOYMENTS_PER_NAMESPACE: usize = 20;

fn estate_config() -> String {
    let mut yaml = String::from(
        "schedules:\n  office: { uptime: [\"Mon-Fri 07:00-20:00\"] }\n\
         environments:\n  staging:\n    schedule: office\n    targets:\n\
         \x20     - kubernetes: { namespaces: [\"*\"] }\n\
         \x20     - aws_asg:\n          region: eu-central-1\n          names:\n",
    );
    for group in 0..GROUPS {
        writeln!(yaml, "            - group-{group}").unwrap();
    }
    yaml.push_str("simulation:\n  node_groups:\n");
    for group in 0..GROUPS {
        writeln!(
            yaml,
            "    - {{ name: group-{group}, kind: auto_scaling_group, instance_type: m6i.large, \
             hourly_price: 0.096, min: 1, max: 10, desired: 3, pods_per_node: 30 }}"
        )
        .unwrap();
    }
    yaml.push_str("  namespaces:\n");
    for namespace in 0..NAMESPACES {
        writeln!(
            yaml,
            "    - {{ name: ns-{namespace}, node_group: group-{}, deployments: {DEPLOYMENTS_PER_NAMESPACE}, replicas: 2 }}",
            namespace % GROUPS
        )
        .unwrap();
    }
    yaml
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn reconcile_passes(c: &mut Criterion) {
    let _ = curfew::telemetry::install_prometheus();
    let config = Arc::new(Config::from_yaml(&estate_config(), Path::new("bench.yaml")).unwrap());
    let night = at("2026-12-01T22:00:00Z");
    let morning = at("2026-12-02T08:00:00Z");
    let clock = Arc::new(ManualClock::new(night));
    let simulation = config.simulation.clone().unwrap();
    let estate = Estate::from_config(&simulation, config.environments.values(), night).unwrap();
    let provider = Arc::new(SimProvider::new(estate, clock.clone(), Faults::default()));
    let dir = tempfile::tempdir().unwrap();
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let settings = Settings {
        concurrency: 64,
        retry: RetryPolicy {
            attempts: 1,
            base: StdDuration::from_millis(1),
            max: StdDuration::from_millis(1),
        },
        ..Settings::default()
    };
    let reconciler = Reconciler::new(config, provider, clock.clone(), overrides, settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Converge once; afterwards a pass at the same instant must plan nothing.
    let first = runtime.block_on(reconciler.reconcile()).unwrap();
    assert_eq!(
        first.targets,
        GROUPS + NAMESPACES * DEPLOYMENTS_PER_NAMESPACE
    );
    assert!(first.converged());

    let mut group = c.benchmark_group("reconcile_10k_workloads_200_groups");
    group.sample_size(20);
    group.bench_function("converged", |b| {
        b.iter(|| {
            let report = runtime.block_on(reconciler.reconcile()).unwrap();
            assert!(report.outcomes.is_empty());
        })
    });
    let mut wake = true;
    group.sample_size(10);
    group.measurement_time(StdDuration::from_secs(20));
    group.bench_function("every_target_changing", |b| {
        b.iter(|| {
            clock.set(if wake { morning } else { night });
            wake = !wake;
            let report = runtime.block_on(reconciler.reconcile()).unwrap();
            assert_eq!(
                report.outcomes.len(),
                GROUPS + NAMESPACES * DEPLOYMENTS_PER_NAMESPACE
            );
        })
    });
    group.finish();
}

criterion_group!(benches, reconcile_passes);
criterion_main!(benches);
