//! Per-workload and per-namespace calendars from annotations (`curfew.dev/schedule`,
//! `curfew.dev/uptime`, kube-downscaler's `uptime`, `downtime` and `force-*`) and per-target
//! grace periods, through the real kube client against the fake API server.

use crate::support::fixtures::{annotated, deployment, namespace};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, MONDAY_NOON, TUESDAY_MORNING, utc};
use chrono::Duration;
use curfew::providers::Provider;
use curfew::providers::kube::annotations::{
    DOWNSCALER_DOWNTIME, DOWNSCALER_FORCE_UPTIME, DOWNSCALER_ORIGINAL_REPLICAS, DOWNSCALER_UPTIME,
    SCHEDULE, UPTIME,
};

/// Office hours in Berlin for `shop` and `team-*`, and a night shift schedule to name.
const WITH_NIGHT_SHIFT: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
  night-shift: { uptime: ["Mon-Sun 20:00-06:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop, "team-*"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_and_namespace_calendars_decide_their_workloads_through_a_night_and_a_morning() {
    let h = KubeHarness::start(WITH_NIGHT_SHIFT, MONDAY_NOON).await;
    h.add([
        // Late hours for the whole namespace; one workload keeps office hours.
        annotated(
            namespace("shop"),
            &[(DOWNSCALER_UPTIME, "Mon-Fri 07:00-23:00 Europe/Berlin")],
        ),
        deployment("shop", "web", 3),
        annotated(
            deployment("shop", "batch", 2),
            &[(UPTIME, "Mon-Fri 07:00-20:00")],
        ),
        namespace("team-a"),
        deployment("team-a", "plain", 2),
        annotated(
            deployment("team-a", "pinned", 1),
            &[(DOWNSCALER_FORCE_UPTIME, "true")],
        ),
        annotated(
            deployment("team-a", "nightly", 2),
            &[(SCHEDULE, "night-shift")],
        ),
        // Scaled down by kube-downscaler, which kept its original and a downtime.
        annotated(
            deployment("team-a", "legacy", 0),
            &[
                (DOWNSCALER_DOWNTIME, "Mon-Fri 20:00-24:00"),
                (DOWNSCALER_ORIGINAL_REPLICAS, "4"),
            ],
        ),
    ]);
    let reconciler = h.reconciler(h.provider().await);

    // Monday 13:00 in Berlin: the night shift sleeps, everything else is up.
    h.pass_at(&reconciler, MONDAY_NOON).await;
    assert_eq!(
        h.replicas("deployments", "team-a", "nightly"),
        (0, Some("2".into()))
    );
    assert_eq!(h.replicas("deployments", "team-a", "legacy"), (4, None));
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));

    // Monday 22:00: the environment sleeps, but not the late namespace, the pinned workload
    // or the night shift.
    let night = h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
    assert_eq!(
        h.replicas("deployments", "shop", "batch"),
        (0, Some("2".into()))
    );
    assert_eq!(
        h.replicas("deployments", "team-a", "plain"),
        (0, Some("2".into()))
    );
    assert_eq!(h.replicas("deployments", "team-a", "pinned"), (1, None));
    assert_eq!(h.replicas("deployments", "team-a", "nightly"), (2, None));
    assert_eq!(
        h.replicas("deployments", "team-a", "legacy"),
        (0, Some("4".into()))
    );
    let batch = night
        .outcomes
        .iter()
        .find(|o| o.planned.action.target() == "deployment/shop/batch")
        .expect("batch scaled down");
    assert!(
        batch
            .planned
            .reason
            .contains("curfew.dev/uptime on deployment shop/batch"),
        "{}",
        batch.planned.reason
    );
    let environment = night.decisions.iter().find(|d| d.environment == "staging");
    assert_eq!(
        environment.map(|d| d.state),
        Some(curfew::calendar::State::Down),
        "the environment's state is its own calendar's"
    );

    // Tuesday 07:30: office hours again; the night shift goes to sleep.
    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    assert_eq!(h.replicas("deployments", "shop", "batch"), (2, None));
    assert_eq!(h.replicas("deployments", "team-a", "plain"), (2, None));
    assert_eq!(h.replicas("deployments", "team-a", "legacy"), (4, None));
    assert_eq!(
        h.replicas("deployments", "team-a", "nightly"),
        (0, Some("2".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_calendar_annotation_leaves_the_workload_alone_with_one_warning_event() {
    let h = KubeHarness::start(WITH_NIGHT_SHIFT, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        annotated(
            deployment("shop", "garbled", 2),
            &[(DOWNSCALER_UPTIME, "weekdays")],
        ),
        annotated(
            deployment("shop", "unknown-schedule", 2),
            &[(SCHEDULE, "weekends")],
        ),
        deployment("shop", "web", 2),
    ]);
    let provider = h.provider().await;
    let targets = provider.discover().await.expect("discovers").targets;
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["deployment/shop/web"]);
    let reconciler = h.reconciler(provider);
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(h.replicas("deployments", "shop", "garbled"), (2, None));
    assert_eq!(
        h.replicas("deployments", "shop", "unknown-schedule"),
        (2, None)
    );
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("2".into()))
    );
    assert_eq!(
        h.events("InvalidAnnotation"),
        2,
        "one per object, not per pass"
    );
    let store = h.server.store();
    let rt = store.resolve("", "v1", "events").expect("events served");
    let (events, _) = store.list(
        &rt,
        None,
        &crate::support::fake_apiserver::Selection::default(),
    );
    let garbled = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "garbled")
        .expect("an Event on the garbled workload");
    assert_eq!(garbled["type"], "Warning");
    let message = garbled["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(DOWNSCALER_UPTIME) && message.contains("weekdays"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_grace_period_keeps_young_workloads_up() {
    const PATIENT: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop], grace_period: 2h }
      - kubernetes: { namespaces: [team-a] }
"#;
    let h = KubeHarness::start(PATIENT, MONDAY_NIGHT).await;
    h.add([namespace("shop"), namespace("team-a")]);
    h.server.set_now(utc(MONDAY_NIGHT) - Duration::hours(1));
    h.add([deployment("shop", "new", 2), deployment("team-a", "new", 2)]);
    let reconciler = h.reconciler(h.provider().await);
    let report = h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(h.replicas("deployments", "shop", "new"), (2, None));
    assert_eq!(
        h.replicas("deployments", "team-a", "new"),
        (0, Some("2".into()))
    );
    assert!(
        report
            .plan
            .skipped
            .iter()
            .any(|s| s.target == "deployment/shop/new" && s.reason.contains("grace period")),
        "{:?}",
        report.plan.skipped
    );
}
