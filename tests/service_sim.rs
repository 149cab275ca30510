//! The service over the simulated estate: a simulated week against the plan, faults and
//! retries, and `run --once`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use curfew::calendar::State;
use curfew::clock::{Clock, ManualClock};
use curfew::config::Config;
use curfew::domain::{Action, Kind, Target, Tier};
use curfew::overrides::{FileOverrideStore, OverrideStore};
use curfew::providers::sim::SimProvider;
use curfew::providers::{Discovery, Error, Provider};
use curfew::reconciler::Reconciler;
use curfew::state::StateDir;
use tokio_util::sync::CancellationToken;

const TWO_ZONES: &str = r#"
timezone: Europe/Berlin
schedules:
  berlin: { uptime: ["Mon-Fri 07:00-20:00"] }
  new-york: { timezone: America/New_York, uptime: ["Mon-Fri 08:00-19:00"] }
environments:
  eu:
    schedule: berlin
    targets:
      - aws_asg: { names: [eu-nodes], region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
  us:
    schedule: new-york
    targets:
      - aws_eks_nodegroup: { cluster: staging, names: [us-nodes], region: us-east-1 }
      - kubernetes: { namespaces: [us-shop] }
simulation:
  node_join_seconds: 90
  node_groups:
    - { name: eu-nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 4, desired: 2, pods_per_node: 10 }
    - { name: us-nodes, kind: eks_nodegroup, instance_type: m6i.large, lifecycle: spot,
        hourly_price: 0.04, min: 1, max: 4, desired: 2, pods_per_node: 10 }
  namespaces:
    - { name: shop, node_group: eu-nodes, deployments: 3, statefulsets: 1, cronjobs: 1, replicas: 2 }
    - { name: us-shop, node_group: us-nodes, deployments: 2, statefulsets: 1, replicas: 1 }
"#;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn config(yaml: &str) -> Arc<Config> {
    Arc::new(Config::from_yaml(yaml, Path::new("test.yaml")).unwrap_or_else(|e| panic!("{e}")))
}

struct Harness {
    clock: Arc<ManualClock>,
    provider: Arc<SimProvider>,
    reconciler: Arc<Reconciler>,
    overrides: Arc<FileOverrideStore>,
    _dir: tempfile::TempDir,
}

fn harness(config: Arc<Config>, start: DateTime<Utc>, shutdown: CancellationToken) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (clock, provider) = crate::support::sim_provider(&config, start);
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let reconciler = Reconciler::new(
        config,
        provider.clone(),
        clock.clone(),
        overrides.clone(),
        crate::support::fast_settings(),
    )
    .with_shutdown(shutdown);
    Harness {
        clock,
        provider,
        reconciler: Arc::new(reconciler),
        overrides,
        _dir: dir,
    }
}

/// One environment's transition as seen in the provider's log of applied actions.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    environment: String,
    direction: &'static str,
    first_at: DateTime<Utc>,
    tiers: Vec<Tier>,
}

/// Groups the applied actions into per-environment transitions, in log order.
fn observed_transitions(
    log: &[(DateTime<Utc>, Action)],
    targets: &HashMap<String, Target>,
) -> Vec<Observed> {
    let mut observed: Vec<Observed> = Vec::new();
    for (at, action) in log {
        let target = &targets[action.target()];
        let tier = target.kind.tier();
        match observed.last_mut() {
            Some(last)
                if last.environment == target.environment
                    && last.direction == action.direction() =>
            {
                last.tiers.push(tier)
            }
            _ => observed.push(Observed {
                environment: target.environment.clone(),
                direction: action.direction(),
                first_at: *at,
                tiers: vec![tier],
            }),
        }
    }
    observed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_week_produces_exactly_the_planned_transitions_in_tier_order() {
    let config = config(TWO_ZONES);
    // Monday 00:00 UTC: both environments are asleep, the fresh estate is running.
    let start = utc("2026-11-30T00:00:00Z");
    let end = start + Duration::days(7);
    let shutdown = CancellationToken::new();
    let h = harness(config.clone(), start, shutdown.clone());
    let reconciler = h.reconciler.clone();
    let task = tokio::spawn(async move { reconciler.run().await });
    while h.clock.now() < end {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    shutdown.cancel();
    task.await.unwrap();

    let targets: HashMap<String, Target> = h
        .provider
        .discover()
        .await
        .unwrap()
        .targets
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
    let log: Vec<_> = h
        .provider
        .applied()
        .into_iter()
        .filter(|(at, _)| *at > start && *at < end)
        .collect();
    let observed = observed_transitions(&log, &targets);

    let mut planned: Vec<(DateTime<Utc>, String, &'static str)> = config
        .plan(start, end)
        .into_iter()
        .flat_map(|env| {
            env.transitions.into_iter().map(move |t| {
                (
                    t.at,
                    env.name.clone(),
                    if t.direction == State::Up {
                        "up"
                    } else {
                        "down"
                    },
                )
            })
        })
        .collect();
    planned.sort();
    // Five working days, two environments, one wake and one sleep each.
    assert_eq!(planned.len(), 20, "{planned:#?}");
    let got: Vec<(DateTime<Utc>, String, &'static str)> = observed
        .iter()
        .map(|o| (o.first_at, o.environment.clone(), o.direction))
        .collect();
    assert_eq!(got, planned);

    for transition in &observed {
        let expected_targets = targets
            .values()
            .filter(|t| t.environment == transition.environment)
            .count();
        assert_eq!(transition.tiers.len(), expected_targets, "{transition:?}");
        let mut order = transition.tiers.clone();
        if transition.direction == "up" {
            order.sort();
        } else {
            order.sort_by(|a, b| b.cmp(a));
        }
        assert_eq!(transition.tiers, order, "tier order of {transition:?}");
    }
    // Every target ends the week where it started: its original capacity, nothing stored.
    let estate_targets = h.provider.discover().await.unwrap().targets;
    for target in estate_targets {
        assert!(
            target.original.is_some(),
            "{} should be down on Sunday night",
            target.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waking_waits_for_nodes_before_statefulsets_and_the_rest() {
    let config = config(TWO_ZONES);
    // Sunday night: everything goes down first.
    let start = utc("2026-11-29T22:00:00Z");
    let h = harness(config, start, CancellationToken::new());
    let report = h.reconciler.reconcile().await.unwrap();
    assert!(report.converged(), "{:?}", report.failures());
    // Monday 07:00 Berlin: eu wakes. Nodes take 90 s to join; the StatefulSet is only
    // scaled once they have.
    h.clock.set(utc("2026-11-30T06:00:00Z"));
    let report = h.reconciler.reconcile().await.unwrap();
    assert!(report.converged(), "{:?}", report.failures());
    let log: Vec<_> = h
        .provider
        .applied()
        .into_iter()
        .filter(|(at, _)| *at >= utc("2026-11-30T06:00:00Z"))
        .collect();
    let node_at = log
        .iter()
        .find(|(_, a)| a.target() == "auto_scaling_group/eu-nodes")
        .unwrap()
        .0;
    let stateful_at = log
        .iter()
        .find(|(_, a)| a.target().starts_with("stateful_set/shop/"))
        .unwrap()
        .0;
    assert_eq!(node_at, utc("2026-11-30T06:00:00Z"));
    assert!(
        stateful_at >= node_at + Duration::seconds(90),
        "StatefulSet woke at {stateful_at}, nodes at {node_at}"
    );
    let targets = h.provider.discover().await.unwrap().targets;
    for target in targets.iter().filter(|t| t.environment == "eu") {
        assert!(target.ready, "{} not ready", target.id);
        assert!(target.original.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_are_retried_for_affected_targets_and_the_rest_proceed() {
    let yaml = TWO_ZONES.replace(
        "simulation:\n",
        "simulation:\n  faults: { seed: 7, throttle_rate: 0.3, server_error_rate: 0.2, failing_targets: [deployment/shop/web] }\n",
    );
    let config = config(&yaml);
    let h = harness(
        config,
        utc("2026-11-29T22:00:00Z"),
        CancellationToken::new(),
    );
    let report = h.reconciler.reconcile().await.unwrap();
    assert!(!report.converged());
    let failed = report
        .outcomes
        .iter()
        .find(|o| o.planned.action.target() == "deployment/shop/web")
        .unwrap();
    assert!(
        matches!(failed.error.as_deref(), Some(Error::Permanent { code, .. }) if code == "AccessDenied"),
        "{:?}",
        failed.error
    );
    assert_eq!(failed.attempts, 1, "a permanent failure is not retried");
    // The rest proceed. Concurrent calls take the seeded draws in whatever order they come,
    // so which target meets which fault varies from run to run: a target either ends up
    // scaled, or its last fault is a transient one after every attempt it had.
    let others: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.planned.action.target() != "deployment/shop/web")
        .collect();
    assert_eq!(others.len(), 9);
    for other in &others {
        match other.error.as_deref() {
            None => {}
            Some(error @ (Error::Throttled { .. } | Error::Server { .. })) => {
                assert_eq!(other.attempts, 6, "{error} after every attempt")
            }
            Some(error) => panic!("{}: {error}", other.planned.action.target()),
        }
    }
    assert!(
        others.iter().any(|o| o.error.is_none() && o.attempts > 1),
        "with these rates some calls must have been retried to success"
    );
    // The next pass only retries what is still wrong.
    let still_wrong: Vec<&str> = report
        .failures()
        .into_iter()
        .map(|(target, _)| target)
        .collect();
    let again = h.reconciler.reconcile().await.unwrap();
    assert!(again.outcomes.len() <= still_wrong.len(), "{still_wrong:?}");
    assert!(
        again
            .outcomes
            .iter()
            .all(|o| still_wrong.contains(&o.planned.action.target())),
        "{still_wrong:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_beats_the_calendar_and_the_calendar_returns_when_it_ends() {
    let config = config(TWO_ZONES);
    let night = utc("2026-11-30T21:00:00Z");
    let h = harness(config, night, CancellationToken::new());
    h.reconciler.reconcile().await.unwrap();
    h.overrides
        .put(curfew::domain::Override {
            id: "late-release".into(),
            environment: "eu".into(),
            state: State::Up,
            created_at: night,
            until: night + Duration::hours(2),
            reason: "release rehearsal".into(),
            created_by: "otto".into(),
        })
        .await
        .unwrap();
    let report = h.reconciler.reconcile().await.unwrap();
    let eu = report
        .decisions
        .iter()
        .find(|d| d.environment == "eu")
        .unwrap();
    assert_eq!(eu.state, State::Up);
    assert_eq!(eu.override_id.as_deref(), Some("late-release"));
    let woken = report
        .outcomes
        .iter()
        .filter(|o| o.planned.action.direction() == "up")
        .count();
    assert_eq!(woken, 6, "every eu target wakes");
    h.clock.set(night + Duration::hours(2));
    let report = h.reconciler.reconcile().await.unwrap();
    let slept = report
        .outcomes
        .iter()
        .filter(|o| o.planned.action.direction() == "down")
        .count();
    assert_eq!(
        slept, 6,
        "the calendar decides again when the override ends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_scale_up_during_downtime_is_left_alone_and_keeps_the_original() {
    let config = config(TWO_ZONES);
    let night = utc("2026-11-30T21:00:00Z");
    let h = harness(config, night, CancellationToken::new());
    h.reconciler.reconcile().await.unwrap();
    // Someone scales the web Deployment to 1 by hand while it sleeps.
    h.provider
        .apply(&Action::ScaleDown {
            target: "deployment/shop/web".into(),
            original: curfew::domain::Capacity::Replicas(2),
            to: curfew::domain::Capacity::Replicas(1),
        })
        .await
        .unwrap();
    h.clock.set(night + Duration::minutes(5));
    let report = h.reconciler.reconcile().await.unwrap();
    assert!(report.outcomes.is_empty(), "{:?}", report.outcomes);
    let skipped = &report.plan.skipped;
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].implicit_override);
    let status = h.reconciler.status();
    assert_eq!(status.read().skipped.len(), 1);
    // Next morning the original (2), not the manual 1, is restored.
    h.clock.set(utc("2026-12-01T06:00:00Z"));
    h.reconciler.reconcile().await.unwrap();
    let web = h
        .provider
        .discover()
        .await
        .unwrap()
        .targets
        .into_iter()
        .find(|t| t.id == "deployment/shop/web")
        .unwrap();
    assert_eq!(web.capacity, curfew::domain::Capacity::Replicas(2));
    assert_eq!(web.original, None);
    assert_eq!(web.kind, Kind::Deployment);
}

/// One environment on the simulated estate: a node group and a namespace on it.
const ONE_ENVIRONMENT: &str = r#"
timezone: Europe/Berlin
schedules:
  berlin: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  eu:
    schedule: berlin
    targets:
      - aws_asg: { names: [eu-nodes], region: eu-central-1 }
      - kubernetes: { namespaces: [shop] }
simulation:
  node_groups:
    - { name: eu-nodes, kind: auto_scaling_group, instance_type: m6i.large, hourly_price: 0.096,
        min: 1, max: 4, desired: 2, pods_per_node: 10 }
  namespaces:
    - { name: shop, node_group: eu-nodes, deployments: 2, statefulsets: 1, replicas: 2 }
"#;

/// The simulated estate, except that while `stalled` no target ever becomes ready, and each
/// readiness check takes a few real milliseconds (nodes that never join).
struct StalledReadiness {
    inner: Arc<SimProvider>,
    stalled: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Provider for StalledReadiness {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn discover(&self) -> curfew::providers::Result<Discovery> {
        self.inner.discover().await
    }

    async fn apply(&self, action: &Action) -> curfew::providers::Result<()> {
        self.inner.apply(action).await
    }

    async fn ready(&self, target: &str) -> curfew::providers::Result<bool> {
        if self.stalled.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
            return Ok(false);
        }
        self.inner.ready(target).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_during_a_readiness_wait_ends_the_wait_and_the_pass_plans_again() {
    let config = config(ONE_ENVIRONMENT);
    // Monday 06:00 in Berlin: asleep.
    let dawn = utc("2026-11-30T05:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let (clock, sim) = crate::support::sim_provider(&config, dawn);
    let provider = Arc::new(StalledReadiness {
        inner: sim.clone(),
        stalled: std::sync::atomic::AtomicBool::new(false),
    });
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap());
    let settings = curfew::reconciler::Settings {
        // Without the trigger the wait would last a clock hour (about 3.6 s of real time).
        readiness_timeout: Duration::hours(1),
        ..crate::support::fast_settings()
    };
    let reconciler = Arc::new(Reconciler::new(
        config,
        provider.clone(),
        clock.clone(),
        overrides.clone(),
        settings,
    ));
    reconciler.reconcile().await.unwrap();
    let asleep = sim.applied().len();

    // 07:00 in Berlin: waking starts with the nodes, which never become ready.
    let wake = utc("2026-11-30T06:00:00Z");
    clock.set(wake);
    provider
        .stalled
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let pass = {
        let reconciler = reconciler.clone();
        tokio::spawn(async move { reconciler.reconcile().await })
    };
    while sim.applied().len() == asleep {
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    // While the pass waits for the nodes, someone keeps the environment down.
    overrides
        .put(curfew::domain::Override {
            id: "keep-down".into(),
            environment: "eu".into(),
            state: State::Down,
            created_at: wake,
            until: wake + Duration::hours(4),
            reason: "database migration".into(),
            created_by: "otto".into(),
        })
        .await
        .unwrap();
    reconciler.trigger().notify_one();
    let report = tokio::time::timeout(StdDuration::from_secs(2), pass)
        .await
        .expect("the readiness wait ends when the override arrives")
        .unwrap()
        .unwrap();
    assert!(report.replan, "the pass asks to plan again");
    assert!(!report.converged());
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.planned.tier == Tier::Nodes),
        "no later tier was woken: {:#?}",
        report.outcomes
    );
    assert!(
        clock.now() < wake + Duration::hours(1),
        "ended before the timeout"
    );

    provider
        .stalled
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let again = reconciler.reconcile().await.unwrap();
    let eu = &again.decisions[0];
    assert_eq!(eu.state, State::Down);
    assert_eq!(eu.override_id.as_deref(), Some("keep-down"));
    let woken_after_override: Vec<_> = sim.applied()[asleep..]
        .iter()
        .filter(|(_, action)| matches!(action, Action::ScaleUp { .. }))
        .map(|(_, action)| action.target().to_string())
        .collect();
    assert_eq!(woken_after_override.len(), 1, "{woken_after_override:?}");
    assert!(
        again
            .outcomes
            .iter()
            .any(|o| o.planned.tier == Tier::Nodes && o.planned.action.direction() == "down"),
        "the nodes woken before the override go back down: {:#?}",
        again.outcomes
    );
}

/// The simulated estate, recording every batch of targets whose readiness is asked, and
/// giving one target its own calendar when `own_calendar` is set.
struct Recording {
    inner: Arc<SimProvider>,
    asked: std::sync::Mutex<Vec<Vec<String>>>,
    own_calendar: Option<(String, Arc<curfew::domain::TargetCalendar>)>,
}

impl Recording {
    fn new(inner: Arc<SimProvider>) -> Self {
        Recording {
            inner,
            asked: std::sync::Mutex::default(),
            own_calendar: None,
        }
    }

    fn asked(&self) -> Vec<Vec<String>> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Provider for Recording {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn discover(&self) -> curfew::providers::Result<Discovery> {
        let mut discovery = self.inner.discover().await?;
        if let Some((id, calendar)) = &self.own_calendar {
            for target in discovery.targets.iter_mut().filter(|t| &t.id == id) {
                target.rules.calendar = Some(calendar.clone());
            }
        }
        Ok(discovery)
    }

    async fn apply(&self, action: &Action) -> curfew::providers::Result<()> {
        self.inner.apply(action).await
    }

    async fn ready(&self, target: &str) -> curfew::providers::Result<bool> {
        self.inner.ready(target).await
    }

    async fn ready_many(&self, targets: &[String]) -> Vec<bool> {
        self.asked.lock().unwrap().push(targets.to_vec());
        self.inner.ready_many(targets).await
    }
}

fn observed_reconciler(
    config: Arc<Config>,
    clock: Arc<ManualClock>,
    provider: Arc<Recording>,
    settings: curfew::reconciler::Settings,
    dir: &Path,
) -> Reconciler {
    let overrides = Arc::new(FileOverrideStore::open(StateDir::open(dir).unwrap()).unwrap());
    Reconciler::new(config, provider, clock, overrides, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_asked_once_per_poll_for_a_whole_tier_and_never_for_nodes_going_down_last() {
    let config = config(ONE_ENVIRONMENT);
    let dir = tempfile::tempdir().unwrap();
    let (clock, sim) = crate::support::sim_provider(&config, utc("2026-11-29T22:00:00Z"));
    let provider = Arc::new(Recording::new(sim.clone()));
    let reconciler = observed_reconciler(
        config,
        clock.clone(),
        provider.clone(),
        crate::support::fast_settings(),
        dir.path(),
    );
    // Sunday night: workloads, then the StatefulSet, then the nodes go down.
    let night = reconciler.reconcile().await.unwrap();
    assert!(night.converged(), "{:?}", night.failures());
    let asked_at_night = provider.asked();
    assert!(
        asked_at_night
            .iter()
            .flatten()
            .all(|id| !id.starts_with("auto_scaling_group/")),
        "the nodes go down last and nothing waits on them: {asked_at_night:?}"
    );

    // Monday 07:00 in Berlin: nodes (90 s to join), then the StatefulSet, then the rest.
    clock.set(utc("2026-11-30T06:00:00Z"));
    let morning = reconciler.reconcile().await.unwrap();
    assert!(morning.converged(), "{:?}", morning.failures());
    let asked = provider.asked()[asked_at_night.len()..].to_vec();
    assert!(
        asked.len() > 2,
        "the nodes take several polls to join: {asked:?}"
    );
    assert_eq!(asked[0], ["auto_scaling_group/eu-nodes"]);
    assert_eq!(
        asked.last().unwrap(),
        &["deployment/shop/api", "deployment/shop/web"],
        "workloads are waited for even when last, in one call: {asked:?}"
    );
    assert!(morning.outcomes.iter().all(|o| o.awaited && o.ready));
    for outcome in &night.outcomes {
        let nodes = outcome.planned.tier == Tier::Nodes;
        assert_eq!(outcome.awaited, !nodes, "{outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_wakes_at_a_transition_of_a_target_calendar_between_ticks() {
    let config = config(ONE_ENVIRONMENT);
    let dir = tempfile::tempdir().unwrap();
    // Monday 06:00 in Berlin: the environment is asleep until 07:00.
    let start = utc("2026-11-30T05:00:00Z");
    let (clock, sim) = crate::support::sim_provider(&config, start);
    let schedule = curfew::calendar::Schedule::new(
        chrono_tz::Europe::Berlin,
        curfew::calendar::Base::Uptime("Mon-Fri 07:13-20:00".parse().unwrap()),
    );
    let web = "deployment/shop/web";
    let provider = Arc::new(Recording {
        own_calendar: Some((
            web.to_string(),
            Arc::new(curfew::domain::TargetCalendar {
                source: "curfew.dev/uptime on deployment shop/web".into(),
                schedule,
            }),
        )),
        ..Recording::new(sim.clone())
    });
    let settings = curfew::reconciler::Settings {
        // Ticks far apart: only the calendar's own transition can wake the loop at 07:13.
        tick: Duration::hours(1),
        ..crate::support::fast_settings()
    };
    let shutdown = CancellationToken::new();
    let reconciler = Arc::new(
        observed_reconciler(config, clock.clone(), provider, settings, dir.path())
            .with_shutdown(shutdown.clone()),
    );
    let task = {
        let reconciler = reconciler.clone();
        tokio::spawn(async move { reconciler.run().await })
    };
    let end = utc("2026-11-30T08:00:00Z");
    while clock.now() < end {
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
    shutdown.cancel();
    task.await.unwrap();

    // The loop runs on a clock that jumps when it waits, so by the time it sees the shutdown
    // it may be days on: only the morning up to `end` is judged.
    let web_ups: Vec<DateTime<Utc>> = sim
        .applied()
        .into_iter()
        .filter(|(at, action)| *at < end && action.target() == web && action.direction() == "up")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(
        web_ups,
        [utc("2026-11-30T06:13:00Z")],
        "web wakes at 07:13 in Berlin, its own calendar's transition"
    );
    let api_up = sim
        .applied()
        .into_iter()
        .find(|(_, action)| action.target() == "deployment/shop/api" && action.direction() == "up")
        .map(|(at, _)| at)
        .unwrap();
    assert!(
        api_up < utc("2026-11-30T06:13:00Z"),
        "the rest wakes with the environment"
    );
}
