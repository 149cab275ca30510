//! The Kubernetes provider driven by the reconciler through the real kube client against the
//! fake API server: a day cycle, wake order, manual scale-ups, restarts, kube-downscaler
//! migration, faults, and the cost of a converged tick.

use std::time::Duration;

use crate::support::fake_apiserver::{Fault, Verb};
use crate::support::fixtures::{annotated, cron_job, deployment, namespace, stateful_set};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, MONDAY_NOON, OFFICE_HOURS, TUESDAY_MORNING};
use curfew::domain::Capacity;
use serde_json::Value;

fn shop() -> Vec<Value> {
    vec![
        namespace("shop"),
        deployment("shop", "web", 3),
        deployment("shop", "api", 2),
        stateful_set("shop", "db", 1),
        cron_job("shop", "report"),
    ]
}

fn body(request: &crate::support::fake_apiserver::Request) -> Value {
    serde_json::from_str(&request.body).expect("patch bodies are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_cycle_scales_down_at_night_with_originals_in_the_same_patch_and_restores_them_in_the_morning()
 {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NOON).await;
    h.add(shop());
    let reconciler = h.reconciler(h.provider().await);

    let noon = h.pass_at(&reconciler, MONDAY_NOON).await;
    assert_eq!(noon.targets, 4);
    assert!(h.patches().is_empty(), "nothing to do while up");

    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("3".into()))
    );
    assert_eq!(
        h.replicas("deployments", "shop", "api"),
        (0, Some("2".into()))
    );
    assert_eq!(
        h.replicas("statefulsets", "shop", "db"),
        (0, Some("1".into()))
    );
    let report = h
        .server
        .get("batch", "v1", "cronjobs", "shop", "report")
        .expect("exists");
    assert_eq!(report["spec"]["suspend"], true);
    assert_eq!(
        report["metadata"]["annotations"]["curfew.dev/original-replicas"],
        "1"
    );
    let patches = h.patches();
    assert_eq!(patches.len(), 4, "one write per workload: {patches:?}");
    for patch in &patches {
        let body = body(patch);
        assert!(
            body["metadata"]["annotations"]["curfew.dev/original-replicas"].is_string(),
            "original in the same patch: {body}"
        );
        assert!(
            body["spec"].is_object(),
            "capacity in the same patch: {body}"
        );
        assert!(
            body["metadata"]["resourceVersion"].is_string(),
            "a precondition: {body}"
        );
    }
    assert_eq!(h.events("ScaledDown"), 4);

    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
    assert_eq!(h.replicas("deployments", "shop", "api"), (2, None));
    assert_eq!(h.replicas("statefulsets", "shop", "db"), (1, None));
    let report = h
        .server
        .get("batch", "v1", "cronjobs", "shop", "report")
        .expect("exists");
    assert_eq!(report["spec"]["suspend"], false);
    assert!(
        report["metadata"]["annotations"]
            .get("curfew.dev/original-replicas")
            .is_none()
    );
    assert_eq!(h.patches().len(), 8);
    assert_eq!(h.events("ScaledUp"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_wake_and_become_ready_before_deployments_are_patched() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add(shop());
    let reconciler = h.reconciler(h.provider().await);
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    let ready_delay = Duration::from_millis(300);
    h.server.store().set_ready_delay(ready_delay);
    h.server.clear_requests();

    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    let patches = h.patches();
    let paths: Vec<&str> = patches.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths.len(), 4, "{paths:?}");
    assert!(paths[0].contains("/statefulsets/db"), "{paths:?}");
    let stateful_at = patches[0].at;
    for later in &patches[1..] {
        assert!(!later.path.contains("/statefulsets/"), "{paths:?}");
        assert!(
            later.at.duration_since(stateful_at) >= ready_delay,
            "{} patched before the StatefulSet was ready",
            later.path
        );
    }
    assert_eq!(h.replicas("statefulsets", "shop", "db"), (1, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_scale_up_during_downtime_is_left_alone_and_keeps_the_original() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add(shop());
    let provider = h.provider().await;
    let reconciler = h.reconciler(provider.clone());
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    h.server.merge_patch(
        "apps",
        "v1",
        "deployments",
        "shop",
        "web",
        serde_json::json!({"spec": {"replicas": 1}}),
    );
    h.observe(&provider, "deployment/shop/web", Capacity::Replicas(1))
        .await;
    h.server.clear_requests();

    let report = h.pass_at(&reconciler, "2026-11-30T22:00:00Z").await;
    assert!(h.patches().is_empty(), "{:?}", h.patches());
    assert!(
        report
            .plan
            .skipped
            .iter()
            .any(|s| s.implicit_override && s.target == "deployment/shop/web")
    );
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (1, Some("3".into()))
    );

    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_picks_up_from_the_annotations_alone() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add(shop());
    // The first instance was killed mid-pass: it had scaled down `web` only.
    h.add([annotated(
        deployment("shop", "half-done", 0),
        &[("curfew.dev/original-replicas", "4")],
    )]);
    let first = h.reconciler(h.provider().await);
    h.pass_at(&first, MONDAY_NIGHT).await;
    drop(first);
    let patched: Vec<String> = h.patches().iter().map(|p| p.path.clone()).collect();
    assert!(
        !patched.iter().any(|p| p.ends_with("/half-done")),
        "{patched:?}"
    );
    assert_eq!(
        h.replicas("deployments", "shop", "half-done"),
        (0, Some("4".into()))
    );
    h.server.clear_requests();

    let second = h.reconciler(h.provider().await);
    h.pass_at(&second, "2026-11-30T23:00:00Z").await;
    assert!(
        h.patches().is_empty(),
        "a new instance sees the estate converged"
    );
    h.pass_at(&second, TUESDAY_MORNING).await;
    assert_eq!(h.replicas("deployments", "shop", "half-done"), (4, None));
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
    assert_eq!(h.replicas("statefulsets", "shop", "db"), (1, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_downscaler_originals_are_taken_over_in_mid_downtime_without_losing_the_count() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        annotated(
            deployment("shop", "web", 0),
            &[("downscaler/original-replicas", "5")],
        ),
        annotated(
            stateful_set("shop", "db", 0),
            &[("downscaler/original-replicas", "2")],
        ),
    ]);
    let reconciler = h.reconciler(h.provider().await);
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert!(h.patches().is_empty(), "already down: nothing to write");

    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    for (plural, name, replicas) in [("deployments", "web", 5), ("statefulsets", "db", 2)] {
        let object = h
            .server
            .get("apps", "v1", plural, "shop", name)
            .expect("exists");
        assert_eq!(object["spec"]["replicas"], replicas);
        assert!(
            object["metadata"]["annotations"]
                .get("downscaler/original-replicas")
                .is_none(),
            "{object}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_throttling_and_server_errors_are_retried_until_converged() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add(shop());
    let reconciler = h.reconciler(h.provider().await);
    h.server
        .inject(Some(Verb::Patch), Fault::ServerError, Some(2));
    h.server.inject(
        Some(Verb::Patch),
        Fault::TooManyRequests {
            retry_after_secs: 0,
        },
        Some(2),
    );
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("3".into()))
    );
    assert_eq!(
        h.replicas("statefulsets", "shop", "db"),
        (0, Some("1".into()))
    );
    assert_eq!(h.patches().len(), 4 + 4, "each fault cost one more PATCH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_tick_costs_zero_writes_and_zero_lists() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add(shop());
    let reconciler = h.reconciler(h.provider().await);
    assert_eq!(
        h.server.count(Verb::List),
        5,
        "one initial list per kind: namespaces, Deployments, StatefulSets, CronJobs, HPAs"
    );
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    h.server.clear_requests();
    for minute in 1..=10 {
        h.pass_at(&reconciler, &format!("2026-11-30T21:{minute:02}:00Z"))
            .await;
    }
    let requests = h.server.requests();
    let counted: Vec<_> = requests.iter().filter(|r| r.verb != Verb::Watch).collect();
    assert!(
        counted.is_empty(),
        "converged ticks made requests: {counted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_waited_out_before_the_write_is_tried_again() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    // The harness retries after 5 to 50 ms; the API server asks for a second.
    let reconciler = h.reconciler(h.provider().await);
    h.server.inject(
        Some(Verb::Patch),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Some(1),
    );
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    let patches = h.patches();
    assert_eq!(patches.len(), 2, "one refused, one accepted");
    let waited = patches[1].at - patches[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "the retry came {waited:?} after the 429"
    );
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("3".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_event_queue_never_delays_a_scale_write() {
    let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
    h.add([namespace("shop")]);
    for n in 0..30 {
        h.add([deployment("shop", &format!("app-{n}"), 2)]);
    }
    // One Event may wait, and after the first the next may be written in 1,000 s.
    let provider = h
        .provider_with(curfew::providers::kube::Settings {
            event_queue: 1,
            event_qps: 0.001,
            sync_timeout: Duration::from_secs(10),
            ..curfew::providers::kube::Settings::default()
        })
        .await;
    let reconciler = h.reconciler(provider.clone());
    h.clock.jump(crate::support::kube::utc(MONDAY_NIGHT));
    let report = tokio::time::timeout(Duration::from_secs(60), reconciler.reconcile())
        .await
        .expect("the pass does not wait for Events")
        .expect("the pass runs");
    assert!(report.converged(), "{:?}", report.failures());
    assert_eq!(h.patches().len(), 30, "every workload written");
    for n in 0..30 {
        assert_eq!(h.replicas("deployments", "shop", &format!("app-{n}")).0, 0);
    }
    let dropped = provider.flush_events(Duration::from_millis(50)).await;
    assert!(
        h.events("ScaledDown") + dropped < 30,
        "the full queue dropped Events instead of holding up writes"
    );
    assert!(h.events("ScaledDown") <= 1, "Events keep their own rate");
}
