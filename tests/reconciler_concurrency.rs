//! Writes within a tier run concurrently, bounded by `reconciler.concurrency`: never two at
//! once on the same object, tiers still one after the other (databases, node groups,
//! StatefulSets, the rest on waking; the reverse on sleeping), and an override preempts the
//! writes not started yet.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use curfew::config::Config;
use curfew::domain::Action;
use curfew::overrides::{FileOverrideStore, OverrideStore};
use curfew::providers::sim::SimProvider;
use curfew::providers::{Discovery, Provider};
use curfew::reconciler::{Reconciler, Settings};
use curfew::state::StateDir;
use parking_lot::Mutex;

/// One environment with databases, node groups, StatefulSets and many Deployments.
const ESTATE: &str = r#"
timezone: Europe/Berlin
schedules:
  berlin: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  eu:
    schedule: berlin
    targets:
      - aws_rds: { instances: [orders], clusters: [ledger], region: eu-central-1 }
      - aws_asg: { names: [nodes-a, nodes-b], region: eu-central-1 }
      - kubernetes: { namespaces: [shop, pay] }
simulation:
  node_join_seconds: 0
  node_groups:
    - { name: nodes-a, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 8, desired: 4, pods_per_node: 30 }
    - { name: nodes-b, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 8, desired: 4, pods_per_node: 30 }
  databases:
    - { name: orders, kind: db_instance, instance_class: db.t4g.medium, storage_gib: 20,
        start_seconds: 0 }
    - { name: ledger, kind: db_cluster, instance_class: db.r6g.large, instances: 2,
        storage_gib: 50, start_seconds: 0 }
  namespaces:
    - { name: shop, node_group: nodes-a, deployments: 30, statefulsets: 4, replicas: 1 }
    - { name: pay, node_group: nodes-b, deployments: 30, statefulsets: 4, replicas: 1 }
"#;

/// Monday 21:00 in Berlin (down) and Tuesday 08:00 (up).
const NIGHT: &str = "2026-11-30T20:00:00Z";
const MORNING: &str = "2026-12-01T07:00:00Z";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// One write as the provider saw it: its target and when it started and ended.
#[derive(Debug, Clone)]
struct Write {
    target: String,
    started: Instant,
    ended: Instant,
}

/// The simulated estate, each write taking a few real milliseconds, recording every write and
/// the writes in flight (all of them, and per object).
struct Recording {
    inner: Arc<SimProvider>,
    write_time: StdDuration,
    writes: Mutex<Vec<Write>>,
    in_flight: Mutex<HashMap<String, usize>>,
    most_in_flight: Mutex<usize>,
    same_object_at_once: Mutex<Vec<String>>,
}

impl Recording {
    fn new(inner: Arc<SimProvider>, write_time: StdDuration) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            write_time,
            writes: Mutex::default(),
            in_flight: Mutex::default(),
            most_in_flight: Mutex::default(),
            same_object_at_once: Mutex::default(),
        })
    }

    fn writes(&self) -> Vec<Write> {
        self.writes.lock().clone()
    }
}

#[async_trait::async_trait]
impl Provider for Recording {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn discover(&self) -> curfew::providers::Result<Discovery> {
        self.inner.discover().await
    }

    async fn apply(&self, action: &Action) -> curfew::providers::Result<()> {
        let target = action.target().to_string();
        {
            let mut in_flight = self.in_flight.lock();
            let here = in_flight.entry(target.clone()).or_default();
            *here += 1;
            if *here > 1 {
                self.same_object_at_once.lock().push(target.clone());
            }
            let total: usize = in_flight.values().sum();
            let mut most = self.most_in_flight.lock();
            *most = (*most).max(total);
        }
        let started = Instant::now();
        tokio::time::sleep(self.write_time).await;
        let result = self.inner.apply(action).await;
        let ended = Instant::now();
        *self.in_flight.lock().entry(target.clone()).or_default() -= 1;
        self.writes.lock().push(Write {
            target,
            started,
            ended,
        });
        result
    }

    async fn ready(&self, target: &str) -> curfew::providers::Result<bool> {
        self.inner.ready(target).await
    }
}

struct Harness {
    clock: Arc<curfew::clock::ManualClock>,
    provider: Arc<Recording>,
    overrides: Arc<FileOverrideStore>,
    reconciler: Arc<Reconciler>,
    _dir: tempfile::TempDir,
}

fn harness(concurrency: usize, write_time: StdDuration) -> Harness {
    let config = Arc::new(
        Config::from_yaml(ESTATE, Path::new("test.yaml")).unwrap_or_else(|e| panic!("{e}")),
    );
    let dir = tempfile::tempdir().unwrap();
    let (clock, sim) = crate::support::sim_provider(&config, utc(NIGHT));
    let provider = Recording::new(sim, write_time);
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let settings = Settings {
        concurrency,
        ..crate::support::fast_settings()
    };
    let reconciler = Arc::new(Reconciler::new(
        config,
        provider.clone(),
        clock.clone(),
        overrides.clone(),
        settings,
    ));
    Harness {
        clock,
        provider,
        overrides,
        reconciler,
        _dir: dir,
    }
}

/// The tier of a simulated target, from its id, in waking order.
fn tier(target: &str) -> u8 {
    match target.split('/').next() {
        Some("db_instance" | "db_cluster") => 0,
        Some("auto_scaling_group") => 1,
        Some("stateful_set") => 2,
        _ => 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_within_a_tier_run_concurrently_up_to_the_bound_and_never_twice_on_one_object() {
    let h = harness(8, StdDuration::from_millis(10));
    let report = h.reconciler.reconcile().await.unwrap();
    assert!(report.converged(), "{:?}", report.failures());
    let writes = h.provider.writes();
    assert_eq!(writes.len(), 2 + 2 + 8 + 60, "every target once");
    let most = *h.provider.most_in_flight.lock();
    assert!(most > 1, "writes overlap: at most {most} in flight");
    assert!(most <= 8, "the bound holds: {most} in flight");
    assert!(
        h.provider.same_object_at_once.lock().is_empty(),
        "two writes at once on {:?}",
        h.provider.same_object_at_once.lock()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_stay_in_order_under_concurrency_sleeping_and_waking() {
    let h = harness(16, StdDuration::from_millis(5));
    h.reconciler.reconcile().await.unwrap();
    let night = h.provider.writes();
    h.clock.set(utc(MORNING));
    h.reconciler.reconcile().await.unwrap();
    let morning: Vec<Write> = h.provider.writes()[night.len()..].to_vec();
    assert_eq!(morning.len(), night.len(), "everything woke");

    // Every write of a tier ends before any write of the next tier starts.
    let check = |writes: &[Write], order: [u8; 4], when: &str| {
        for pair in order.windows(2) {
            let last_end = writes
                .iter()
                .filter(|w| tier(&w.target) == pair[0])
                .map(|w| w.ended)
                .max()
                .expect("the tier wrote");
            let first_start = writes
                .iter()
                .filter(|w| tier(&w.target) == pair[1])
                .map(|w| w.started)
                .min()
                .expect("the tier wrote");
            assert!(
                last_end <= first_start,
                "{when}: tier {} started before tier {} ended",
                pair[1],
                pair[0]
            );
        }
    };
    check(
        &night,
        [3, 2, 1, 0],
        "sleeping: workloads, StatefulSets, nodes, databases",
    );
    check(
        &morning,
        [0, 1, 2, 3],
        "waking: databases, nodes, StatefulSets, workloads",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_during_the_writes_of_a_tier_preempts_the_writes_not_started() {
    // 60 Deployments at 2 in flight and 20 ms each: about 600 ms of writes.
    let h = harness(2, StdDuration::from_millis(20));
    let pass = {
        let reconciler = h.reconciler.clone();
        tokio::spawn(async move { reconciler.reconcile().await })
    };
    while h.provider.writes().len() < 6 {
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    h.overrides
        .put(curfew::domain::Override {
            id: "keep-up".into(),
            environment: "eu".into(),
            state: curfew::calendar::State::Up,
            created_at: utc(NIGHT),
            until: utc(NIGHT) + chrono::Duration::hours(2),
            reason: "late release".into(),
            created_by: "otto".into(),
        })
        .await
        .unwrap();
    let triggered = Instant::now();
    h.reconciler.trigger().notify_one();
    let report = pass.await.unwrap().unwrap();
    assert!(report.replan, "the pass asks to plan again");
    let writes = h.provider.writes();
    // A write that ended just as the trigger fired may have handed its place on before the
    // pass saw the trigger: at most one per place in flight.
    let started_after = writes.iter().filter(|w| w.started > triggered).count();
    assert!(
        started_after <= 2,
        "{started_after} writes started after the override"
    );
    assert!(
        writes.len() < 60,
        "the rest of the tier was dropped: {} writes",
        writes.len()
    );
    assert!(
        writes.iter().all(|w| tier(&w.target) == 3),
        "no later tier went down"
    );

    // The next pass follows the override: what went down comes back up.
    let again = h.reconciler.reconcile().await.unwrap();
    assert!(again.converged(), "{:?}", again.failures());
    let ups = again
        .outcomes
        .iter()
        .filter(|o| o.planned.action.direction() == "up")
        .count();
    assert_eq!(ups, writes.len(), "every write of the night is undone");
}
