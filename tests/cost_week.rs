//! Cost over a simulated week: the ledger against hand-computed savings, and the `simulate`
//! forecast against the simulated estate's own bill.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use curfew::clock::Clock;
use curfew::config::Config;
use curfew::cost::forecast;
use curfew::cost::ledger::Totals;
use curfew::cost::tracker::CostTracker;
use curfew::domain::{Action, Capacity};
use curfew::overrides::FileOverrideStore;
use curfew::providers::Provider;
use curfew::providers::sim::SimProvider;
use curfew::reconciler::Reconciler;
use curfew::state::StateDir;
use tokio_util::sync::CancellationToken;

/// One environment on Berlin office hours (65 hours up a week): four m6i.large nodes in
/// eu-central-1 at the catalog's list price, 0.115 dollars an hour each.
const ONE_GROUP: &str = r#"
timezone: Europe/Berlin
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office
    targets:
      - aws_asg: { names: [nodes], region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
simulation:
  node_groups:
    - { name: nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.115,
        min: 2, max: 8, desired: 4, pods_per_node: 10 }
  namespaces:
    - { name: shop, node_group: nodes, deployments: 5, statefulsets: 1, replicas: 2 }
"#;

/// Two environments in two zones with on-demand and spot groups priced like the catalog
/// (spot at the simulated cloud's own spot price).
const TWO_ENVIRONMENTS: &str = r#"
timezone: Europe/Berlin
schedules:
  berlin: { uptime: ["Mon-Fri 07:00-20:00"] }
  new-york: { timezone: America/New_York, uptime: ["Mon-Fri 08:00-19:00", "Sat 10:00-14:00"] }
environments:
  eu:
    schedule: berlin
    targets:
      - aws_asg: { names: [eu-general], region: eu-central-1 }
      - aws_eks_nodegroup: { cluster: staging, names: [eu-spot], region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
  us:
    schedule: new-york
    targets:
      - aws_asg: { names: [us-general], region: us-east-1, down: { min: 1, max: 1, desired: 1 } }
simulation:
  node_groups:
    - { name: eu-general, kind: auto_scaling_group, instance_type: m6i.xlarge, hourly_price: 0.23,
        min: 2, max: 8, desired: 4, pods_per_node: 8 }
    - { name: eu-spot, kind: eks_nodegroup, instance_type: m6i.large, lifecycle: spot,
        hourly_price: 0.045, min: 1, max: 6, desired: 3, pods_per_node: 6 }
    - { name: us-general, kind: auto_scaling_group, instance_type: c6i.2xlarge, hourly_price: 0.34,
        min: 2, max: 8, desired: 3, pods_per_node: 8 }
  namespaces:
    - { name: shop, node_group: eu-general, deployments: 6, statefulsets: 1, replicas: 2 }
"#;

/// One environment on Berlin office hours whose only target is an Aurora cluster of two
/// db.r6g.large instances (0.31 dollars an hour each in eu-central-1) and 200 GiB of storage
/// (0.12 dollars per GiB-month), which it pays for while stopped too.
const ONE_DATABASE: &str = r#"
timezone: Europe/Berlin
schedules:
  office: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office
    targets:
      - aws_rds: { clusters: [orders], region: eu-central-1 }
simulation:
  databases:
    - { name: orders, kind: db_cluster, instance_class: db.r6g.large, instances: 2,
        storage_gib: 200, start_seconds: 1 }
"#;

/// Asserts the books within 1% of the hand-computed counterfactual, actual cost and savings.
fn assert_books(books: &Totals, counterfactual: f64, actual: f64, savings: f64) {
    let off = |got: f64, want: f64| (got - want).abs() / want;
    for (what, got, want) in [
        ("counterfactual", books.counterfactual, counterfactual),
        ("actual", books.actual, actual),
        ("savings", books.savings(), savings),
    ] {
        assert!(off(got, want) < 0.01, "{what} {got} vs {want}");
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Week {
    config: Arc<Config>,
    provider: Arc<SimProvider>,
    cost: Arc<CostTracker>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Runs the reconciler over the simulated estate for a week, as fast as the CPU allows.
async fn run_week(yaml: &str) -> Week {
    let config = Arc::new(Config::from_yaml(yaml, Path::new("test.yaml")).unwrap());
    // Monday 00:00 in Berlin.
    let start = utc("2026-11-29T23:00:00Z");
    let end = start + Duration::days(7);
    let (clock, provider) = crate::support::sim_provider(&config, start);
    let cost = Arc::new(CostTracker::new(config.cost.clone(), None).unwrap());
    cost.set_spot_prices(provider.spot_prices().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let shutdown = CancellationToken::new();
    let settings = crate::support::fast_settings();
    let reconciler = Arc::new(
        Reconciler::new(
            config.clone(),
            provider.clone(),
            clock.clone(),
            overrides,
            settings,
        )
        .with_cost(cost.clone())
        .with_shutdown(shutdown.clone()),
    );
    let looping = reconciler.clone();
    let task = tokio::spawn(async move { looping.run().await });
    while clock.now() < end {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    Week {
        config,
        provider,
        cost,
        start,
        end,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_saves_within_one_percent_of_the_hand_computed_figure() {
    let week = run_week(ONE_GROUP).await;
    let books = week.cost.ledger().total("staging");
    // Always on: 4 nodes × 0.115 $/h × 168 h. Scheduled: 4 × 0.115 × 65 h (Mon-Fri 07-20).
    let counterfactual = 4.0 * 0.115 * 168.0;
    let actual = 4.0 * 0.115 * 65.0;
    assert_books(&books, counterfactual, actual, counterfactual - actual);
    assert!(
        (books.uptime_seconds / 3600.0 - 65.0).abs() < 0.1,
        "uptime {} h",
        books.uptime_seconds / 3600.0
    );
}

/// The simulated cloud's own bill per environment: every group's desired size over time at
/// its own price, replayed from the actions it applied.
fn ground_truth(week: &Week) -> HashMap<String, f64> {
    let simulation = week.config.simulation.as_ref().unwrap();
    let mut groups: HashMap<String, (u32, f64)> = simulation
        .node_groups
        .iter()
        .map(|g| (g.id(), (g.desired, g.hourly_price)))
        .collect();
    let environment_of: HashMap<String, String> = week
        .provider
        .with_estate(|estate| estate.targets(week.end))
        .into_iter()
        .map(|t| (t.id, t.environment))
        .collect();
    let mut bill = HashMap::new();
    let mut since = week.start;
    for (at, action) in week.provider.applied() {
        let to = match &action {
            Action::ScaleDown { to, .. } | Action::ScaleUp { to, .. } => *to,
        };
        let Capacity::Group { desired, .. } = to else {
            continue;
        };
        let at = at.clamp(week.start, week.end);
        charge(&mut bill, &groups, &environment_of, since, at);
        since = at;
        if let Some(group) = groups.get_mut(action.target()) {
            group.0 = desired;
        }
    }
    charge(&mut bill, &groups, &environment_of, since, week.end);
    bill
}

/// Adds every group's cost over `[from, to)` at its current size to its environment's bill.
fn charge(
    bill: &mut HashMap<String, f64>,
    groups: &HashMap<String, (u32, f64)>,
    environment_of: &HashMap<String, String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let hours = (to - from).num_seconds() as f64 / 3600.0;
    for (id, (count, price)) in groups {
        let environment = environment_of[id].clone();
        *bill.entry(environment).or_default() += f64::from(*count) * price * hours;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_forecast_matches_the_simulated_estates_own_bill() {
    let week = run_week(TWO_ENVIRONMENTS).await;
    let truth = ground_truth(&week);
    let forecasts =
        forecast::forecast(&week.config, &week.config.cost, week.start, week.end).unwrap();
    assert_eq!(forecasts.len(), 2);
    for forecast in forecasts {
        let billed = truth[&forecast.name];
        let off = (forecast.cost_with_schedule - billed).abs() / billed;
        assert!(
            off < 0.01,
            "{}: forecast {} vs billed {billed}",
            forecast.name,
            forecast.cost_with_schedule
        );
        assert!(forecast.savings > 0.0);
        assert!(forecast.hours_up + forecast.hours_down - 168.0 < 1e-9);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_asleep_saves_its_instance_hours_and_keeps_paying_for_its_storage() {
    let week = run_week(ONE_DATABASE).await;
    let books = week.cost.ledger().total("staging");
    let instances = 2.0 * 0.31;
    let storage = 200.0 * 0.12 / 730.0;
    let counterfactual = (instances + storage) * 168.0;
    let actual = instances * 65.0 + storage * 168.0;
    // Storage is billed all week; the savings are the instance hours only.
    assert_books(&books, counterfactual, actual, instances * 103.0);
}
