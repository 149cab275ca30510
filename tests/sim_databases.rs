//! Databases in the simulated estate: on waking, node groups and workloads wait until the
//! databases are available; a database the cloud starts after seven days stopped is stopped
//! again; the books keep paying for a stopped database's storage.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use curfew::clock::{Clock, ManualClock};
use curfew::config::Config;
use curfew::domain::{Action, Capacity};
use curfew::overrides::FileOverrideStore;
use curfew::providers::sim::SimProvider;
use curfew::reconciler::Reconciler;
use curfew::state::StateDir;

const ESTATE: &str = r#"
timezone: Europe/Berlin
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
  closed: { uptime: never }
environments:
  staging:
    schedule: SCHEDULE
    targets:
      - aws_rds: { clusters: [orders], region: eu-central-1 }
      - aws_asg: { names: [general], region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
simulation:
  node_join_seconds: 90
  node_groups:
    - { name: general, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.115,
        min: 1, max: 4, desired: 2, pods_per_node: 8 }
  databases:
    - { name: orders, kind: db_cluster, instance_class: db.r6g.large, instances: 2,
        storage_gib: 100, start_seconds: 600 }
  namespaces:
    - { name: shop, node_group: general, deployments: 2, replicas: 2 }
"#;

const DATABASE: &str = "db_cluster/orders";
const GROUP: &str = "auto_scaling_group/general";

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

struct Estate {
    clock: Arc<ManualClock>,
    sim: Arc<SimProvider>,
    reconciler: Reconciler,
    _dir: tempfile::TempDir,
}

fn estate(schedule: &str, start: DateTime<Utc>) -> Estate {
    let yaml = ESTATE.replace("SCHEDULE", schedule);
    let config = Arc::new(Config::from_yaml(&yaml, Path::new("staging.yaml")).unwrap());
    let (clock, sim) = crate::support::sim_provider(&config, start);
    let dir = tempfile::tempdir().unwrap();
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let reconciler = Reconciler::new(
        config,
        sim.clone(),
        clock.clone(),
        overrides,
        crate::support::fast_settings(),
    );
    Estate {
        clock,
        sim,
        reconciler,
        _dir: dir,
    }
}

/// When each target was last given an action of `direction` (`up` or `down`).
fn applied_at(sim: &SimProvider, target: &str, up: bool) -> DateTime<Utc> {
    sim.applied()
        .into_iter()
        .filter(|(_, action)| {
            action.target() == target && matches!(action, Action::ScaleUp { .. }) == up
        })
        .map(|(at, _)| at)
        .next_back()
        .unwrap_or_else(|| {
            panic!(
                "{target} was never scaled {}",
                if up { "up" } else { "down" }
            )
        })
}

#[tokio::test]
async fn node_groups_and_workloads_wake_only_once_the_databases_are_available() {
    // Friday 21:00 in Berlin: down.
    let e = estate("office", utc("2026-12-04T20:00:00Z"));
    e.reconciler.reconcile().await.unwrap();
    let database = e
        .sim
        .with_estate(|estate| estate.database(DATABASE).cloned())
        .unwrap();
    assert_eq!(database.scaling.capacity, Capacity::Running(false));
    let asleep = applied_at(&e.sim, DATABASE, false);
    assert!(
        applied_at(&e.sim, "deployment/shop/api", false) <= asleep
            && applied_at(&e.sim, GROUP, false) <= asleep,
        "the database sleeps last"
    );

    // Monday 07:00 in Berlin.
    let morning = utc("2026-12-07T06:00:00Z");
    e.clock.advance_to(morning);
    let report = e.reconciler.reconcile().await.unwrap();
    assert!(report.converged(), "{report:?}");
    let database_up = applied_at(&e.sim, DATABASE, true);
    let nodes_up = applied_at(&e.sim, GROUP, true);
    let workloads_up = applied_at(&e.sim, "deployment/shop/api", true);
    assert_eq!(database_up, morning);
    assert!(
        nodes_up >= database_up + Duration::seconds(600),
        "node groups wait for the database to be available: {database_up} -> {nodes_up}"
    );
    assert!(
        workloads_up >= nodes_up + Duration::seconds(90),
        "workloads wait for the nodes: {nodes_up} -> {workloads_up}"
    );
}

#[tokio::test]
async fn a_database_the_cloud_starts_after_seven_days_stopped_is_stopped_again() {
    let start = utc("2026-12-04T20:00:00Z");
    let e = estate("closed", start);
    e.reconciler.reconcile().await.unwrap();
    assert_eq!(applied_at(&e.sim, DATABASE, false), start);

    // Six days on nothing has happened; a day later the cloud has started it by itself.
    e.clock.advance_to(start + Duration::days(6));
    let report = e.reconciler.reconcile().await.unwrap();
    assert!(report.plan.actions.is_empty(), "{:?}", report.plan);
    let week_later = start + Duration::days(7) + Duration::hours(1);
    e.clock.advance_to(week_later);
    let report = e.reconciler.reconcile().await.unwrap();
    let stop = report
        .plan
        .actions
        .iter()
        .find(|planned| planned.action.target() == DATABASE)
        .expect("the database is stopped again");
    assert!(
        stop.reason
            .starts_with("started again by the cloud after 7 days stopped"),
        "{}",
        stop.reason
    );
    assert_eq!(applied_at(&e.sim, DATABASE, false), week_later);
    let database = e
        .sim
        .with_estate(|estate| estate.database(DATABASE).cloned())
        .unwrap();
    assert_eq!(database.scaling.capacity, Capacity::Running(false));
    assert_eq!(
        database.stopped_at,
        Some(week_later),
        "the new stop is recorded"
    );
    assert_eq!(e.clock.now(), week_later);
}
