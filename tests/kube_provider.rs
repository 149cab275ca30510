//! The Kubernetes provider on its own, through the real kube client against the fake API
//! server: selection, annotations and their precedence, targets' fields, conflicts, Events.

use crate::support::fake_apiserver::{Fault, Verb};
use crate::support::fixtures::{
    annotated, cron_job, deployment, labelled, namespace, stateful_set,
};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, utc};
use chrono::Duration;
use curfew::domain::{Action, Capacity, Footprint, Target};
use curfew::providers::kube::annotations::{DOWN_REPLICAS, EXCLUDE, EXCLUDE_UNTIL};
use curfew::providers::{Error, Provider};
use serde_json::json;

const SELECTIVE: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop, "team-*"], exclude_namespaces: [team-secret],
                      selector: "tier!=infra", down_replicas: 1 }
  labelled:
    schedule: office-hours
    targets:
      - kubernetes: { namespace_selector: "env=qa" }
"#;

fn ids(targets: &[Target]) -> Vec<(&str, &str)> {
    targets
        .iter()
        .map(|t| (t.id.as_str(), t.environment.as_str()))
        .collect()
}

fn find<'a>(targets: &'a [Target], id: &str) -> &'a Target {
    targets
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("{id} discovered"))
}

#[tokio::test]
async fn namespaces_are_selected_by_name_glob_and_labels_and_workloads_by_selector() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        namespace("team-a"),
        namespace("team-secret"),
        namespace("payments"),
        labelled(namespace("qa-1"), &[("env", "qa")]),
        deployment("shop", "web", 2),
        labelled(deployment("shop", "proxy", 1), &[("tier", "infra")]),
        deployment("team-a", "web", 1),
        deployment("team-secret", "vault", 1),
        deployment("payments", "ledger", 1),
        stateful_set("qa-1", "db", 1),
    ]);
    let provider = h.provider().await;
    let targets = provider.discover().await.expect("discovers").targets;
    assert_eq!(
        ids(&targets),
        [
            ("deployment/shop/web", "staging"),
            ("deployment/team-a/web", "staging"),
            ("stateful_set/qa-1/db", "labelled"),
        ]
    );
    assert_eq!(
        find(&targets, "deployment/shop/web").down,
        Capacity::Replicas(1)
    );
    assert_eq!(
        find(&targets, "stateful_set/qa-1/db").down,
        Capacity::Replicas(0)
    );
}

#[tokio::test]
async fn workload_annotations_beat_namespace_annotations_beat_the_configuration() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([
        annotated(
            namespace("shop"),
            &[(EXCLUDE, "true"), (DOWN_REPLICAS, "2")],
        ),
        annotated(namespace("team-secret"), &[]),
        namespace("team-a"),
        deployment("shop", "excluded-by-namespace", 3),
        annotated(deployment("shop", "opted-in", 3), &[(EXCLUDE, "false")]),
        annotated(
            deployment("shop", "opted-in-with-own-floor", 3),
            &[(EXCLUDE, "false"), (DOWN_REPLICAS, "0")],
        ),
        annotated(
            deployment("team-secret", "opted-in", 1),
            &[(EXCLUDE, "false")],
        ),
        annotated(
            deployment("team-a", "paused-until-tomorrow", 1),
            &[(EXCLUDE_UNTIL, "2026-12-01T12:00:00Z")],
        ),
        annotated(
            deployment("team-a", "pause-is-over", 1),
            &[(EXCLUDE_UNTIL, "2026-11-29")],
        ),
        annotated(
            deployment("team-a", "garbled", 1),
            &[(DOWN_REPLICAS, "some")],
        ),
    ]);
    let provider = h.provider().await;
    let targets = provider.discover().await.expect("discovers").targets;
    let found: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        found,
        [
            "deployment/shop/opted-in",
            "deployment/shop/opted-in-with-own-floor",
            "deployment/team-a/pause-is-over",
            "deployment/team-secret/opted-in",
        ]
    );
    assert_eq!(
        find(&targets, "deployment/shop/opted-in").down,
        Capacity::Replicas(2)
    );
    assert_eq!(
        find(&targets, "deployment/shop/opted-in-with-own-floor").down,
        Capacity::Replicas(0)
    );
    assert_eq!(
        find(&targets, "deployment/team-a/pause-is-over").down,
        Capacity::Replicas(1)
    );
}

#[tokio::test]
async fn targets_carry_creation_time_readiness_and_pod_footprint() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        deployment("shop", "web", 3),
        cron_job("shop", "report"),
    ]);
    let provider = h.provider().await;
    let targets = provider.discover().await.expect("discovers").targets;
    let web = find(&targets, "deployment/shop/web");
    assert_eq!(web.created_at, Some(utc(MONDAY_NIGHT) - Duration::days(3)));
    assert!(web.ready);
    assert_eq!(
        web.footprint,
        Footprint::Pods {
            count: 3,
            cpu_millis: 250,
            memory_mib: 256
        }
    );
    let report = find(&targets, "cron_job/shop/report");
    assert_eq!(
        (report.capacity, report.down, report.ready),
        (Capacity::Suspended(false), Capacity::Suspended(true), true)
    );
    assert_eq!(report.footprint, Footprint::Nothing);
}

#[tokio::test]
async fn a_write_against_a_stale_cache_is_a_conflict_that_changes_nothing() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let provider = h.provider().await;
    h.server.pause_watches(true);
    h.server.merge_patch(
        "apps",
        "v1",
        "deployments",
        "shop",
        "web",
        json!({"spec": {"replicas": 5}}),
    );
    let down = Action::ScaleDown {
        target: "deployment/shop/web".into(),
        original: Capacity::Replicas(3),
        to: Capacity::Replicas(0),
    };
    let error = provider.apply(&down).await.expect_err("stale");
    assert!(matches!(error, Error::Conflict { .. }), "{error:?}");
    assert_eq!(h.replicas("deployments", "shop", "web"), (5, None));
    provider
        .flush_events(std::time::Duration::from_secs(10))
        .await;
    assert_eq!(h.events("ScaleFailed"), 0, "a conflict is no failure");
    h.server.pause_watches(false);
    h.observe(&provider, "deployment/shop/web", Capacity::Replicas(5))
        .await;
}

#[tokio::test]
async fn a_failed_write_leaves_a_warning_event_and_a_failed_event_write_fails_nothing() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([
        namespace("shop"),
        deployment("shop", "web", 3),
        deployment("shop", "api", 2),
    ]);
    let provider = h.provider().await;
    h.server
        .inject(Some(Verb::Patch), Fault::ServerError, Some(1));
    let down = |name: &str, original| Action::ScaleDown {
        target: format!("deployment/shop/{name}"),
        original: Capacity::Replicas(original),
        to: Capacity::Replicas(0),
    };
    let error = provider.apply(&down("web", 3)).await.expect_err("fails");
    assert!(
        matches!(&error, Error::Server { code, .. } if code == "500"),
        "{error:?}"
    );
    assert!(error.is_retryable());
    provider
        .flush_events(std::time::Duration::from_secs(10))
        .await;
    assert_eq!(h.events("ScaleFailed"), 1);

    h.server
        .inject(Some(Verb::Create), Fault::ServerError, None);
    provider
        .apply(&down("api", 2))
        .await
        .expect("events are best effort");
    assert_eq!(
        h.replicas("deployments", "shop", "api"),
        (0, Some("2".into()))
    );
}

#[tokio::test]
async fn unknown_targets_and_wrong_capacities_are_refused() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([namespace("shop"), cron_job("shop", "report")]);
    let provider = h.provider().await;
    let missing = Action::ScaleUp {
        target: "deployment/shop/nope".into(),
        to: Capacity::Replicas(1),
    };
    let error = provider.apply(&missing).await.expect_err("missing");
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    let wrong = Action::ScaleUp {
        target: "cron_job/shop/report".into(),
        to: Capacity::Replicas(1),
    };
    let error = provider.apply(&wrong).await.expect_err("wrong capacity");
    assert!(matches!(error, Error::Permanent { .. }), "{error:?}");
    assert!(h.patches().is_empty());
}

#[tokio::test]
async fn a_write_that_does_not_answer_in_time_is_a_retryable_timeout() {
    let h = KubeHarness::start(SELECTIVE, MONDAY_NIGHT).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let provider = h
        .provider_with(curfew::providers::kube::Settings {
            write_timeout: std::time::Duration::from_millis(100),
            ..curfew::providers::kube::Settings::default()
        })
        .await;
    h.server.set_latency(std::time::Duration::from_millis(500));
    let down = Action::ScaleDown {
        target: "deployment/shop/web".into(),
        original: Capacity::Replicas(3),
        to: Capacity::Replicas(0),
    };
    let error = provider.apply(&down).await.expect_err("too slow");
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(error.is_retryable());
}
