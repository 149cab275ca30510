//! HorizontalPodAutoscalers, KEDA ScaledObjects and Argo Rollouts through the real kube client
//! against the fake API server: an HPA's minimum follows its workload's floor, a ScaledObject
//! is paused instead of its workload being scaled, Rollouts scale like Deployments, and
//! missing CRDs are normal.

use crate::support::fake_apiserver::Verb;
use crate::support::fixtures::{
    annotated, crd, deployment, hpa, namespace, rollout, scaled_object,
};
use crate::support::kube::{KubeHarness, MONDAY_NIGHT, MONDAY_NOON, TUESDAY_MORNING};
use curfew::domain::Capacity;
use curfew::providers::Provider;
use curfew::providers::kube::annotations::{KEDA_PAUSED_REPLICAS, ORIGINAL_PAUSED_REPLICAS};
use serde_json::Value;

/// Office hours; `shop` keeps one replica while down, `team-*` none.
const FLOORS: &str = r#"
timezone: Europe/Berlin
schedules:
  office-hours: { uptime: ["Mon-Fri 07:00-20:00"] }
environments:
  staging:
    schedule: office-hours
    targets:
      - kubernetes: { namespaces: [shop], down_replicas: 1 }
      - kubernetes: { namespaces: ["team-*"] }
"#;

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn body(request: &crate::support::fake_apiserver::Request) -> Value {
    serde_json::from_str(&request.body).expect("patch bodies are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_minimum_follows_a_floor_above_zero_and_is_restored_on_waking() {
    let h = KubeHarness::start(FLOORS, MONDAY_NOON).await;
    h.add([
        namespace("shop"),
        deployment("shop", "web", 4),
        hpa("shop", "web", "web", 3),
        namespace("team-a"),
        deployment("team-a", "api", 2),
        hpa("team-a", "api", "api", 2),
    ]);
    let reconciler = h.reconciler(h.provider().await);
    h.pass_at(&reconciler, MONDAY_NOON).await;
    assert!(h.patches().is_empty(), "nothing to do while up");

    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    let hpa_of = |namespace: &str, name: &str| {
        h.server
            .get(
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                namespace,
                name,
            )
            .expect("exists")
    };
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (1, Some("4".into()))
    );
    let lowered = hpa_of("shop", "web");
    assert_eq!(lowered["spec"]["minReplicas"], 1);
    assert_eq!(
        annotation(&lowered, "curfew.dev/original-replicas"),
        Some("3")
    );
    let hpa_patch = h
        .patches()
        .into_iter()
        .find(|p| p.path.contains("horizontalpodautoscalers"))
        .expect("the HPA was patched");
    let patch = body(&hpa_patch);
    assert_eq!(patch["spec"]["minReplicas"], 1, "{patch}");
    assert_eq!(
        patch["metadata"]["annotations"]["curfew.dev/original-replicas"], "3",
        "the original in the same patch: {patch}"
    );
    // At zero replicas an HPA stands still: it is left alone.
    assert_eq!(
        h.replicas("deployments", "team-a", "api"),
        (0, Some("2".into()))
    );
    let untouched = hpa_of("team-a", "api");
    assert_eq!(untouched["spec"]["minReplicas"], 2);
    assert_eq!(annotation(&untouched, "curfew.dev/original-replicas"), None);

    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    let restored = hpa_of("shop", "web");
    assert_eq!(restored["spec"]["minReplicas"], 3);
    assert_eq!(annotation(&restored, "curfew.dev/original-replicas"), None);
    assert_eq!(h.replicas("deployments", "shop", "web"), (4, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaled_object_is_paused_instead_of_its_workload_being_scaled() {
    let h = KubeHarness::start(FLOORS, MONDAY_NIGHT).await;
    h.add([crd("keda.sh", "scaledobjects", "ScaledObject")]);
    h.add([
        namespace("team-a"),
        deployment("team-a", "worker", 3),
        scaled_object("team-a", "worker", "worker"),
        deployment("team-a", "paused", 5),
        annotated(
            scaled_object("team-a", "paused", "paused"),
            &[(KEDA_PAUSED_REPLICAS, "2")],
        ),
        deployment("team-a", "plain", 1),
    ]);
    let provider = h.provider().await;
    let targets = provider.discover().await.expect("discovers").targets;
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "deployment/team-a/plain",
            "scaled_object/team-a/paused",
            "scaled_object/team-a/worker",
        ],
        "a workload KEDA steers is not a target of its own"
    );
    let paused = targets
        .iter()
        .find(|t| t.id == "scaled_object/team-a/paused");
    assert_eq!(paused.map(|t| t.capacity), Some(Capacity::Replicas(2)));

    let reconciler = h.reconciler(provider);
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    let object = |name: &str| {
        h.server
            .get("keda.sh", "v1alpha1", "scaledobjects", "team-a", name)
            .expect("exists")
    };
    let worker = object("worker");
    assert_eq!(annotation(&worker, KEDA_PAUSED_REPLICAS), Some("0"));
    assert_eq!(
        annotation(&worker, "curfew.dev/original-replicas"),
        Some("3")
    );
    assert_eq!(
        h.replicas("deployments", "team-a", "worker"),
        (3, None),
        "curfew leaves the replicas to KEDA"
    );
    let before = object("paused");
    assert_eq!(annotation(&before, KEDA_PAUSED_REPLICAS), Some("0"));
    assert_eq!(annotation(&before, ORIGINAL_PAUSED_REPLICAS), Some("2"));
    assert_eq!(h.events("ScaledDown"), 3);

    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    let worker = object("worker");
    assert_eq!(annotation(&worker, KEDA_PAUSED_REPLICAS), None);
    assert_eq!(annotation(&worker, "curfew.dev/original-replicas"), None);
    let before = object("paused");
    assert_eq!(
        annotation(&before, KEDA_PAUSED_REPLICAS),
        Some("2"),
        "restored"
    );
    assert_eq!(annotation(&before, ORIGINAL_PAUSED_REPLICAS), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_rollouts_scale_like_deployments_when_their_crd_exists() {
    let h = KubeHarness::start(FLOORS, MONDAY_NIGHT).await;
    h.add([crd("argoproj.io", "rollouts", "Rollout")]);
    h.add([namespace("team-a"), rollout("team-a", "checkout", 2)]);
    let reconciler = h.reconciler(h.provider().await);
    let rollout_of = || {
        h.server
            .get("argoproj.io", "v1alpha1", "rollouts", "team-a", "checkout")
            .expect("exists")
    };
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    let night = rollout_of();
    assert_eq!(night["spec"]["replicas"], 0);
    assert_eq!(
        annotation(&night, "curfew.dev/original-replicas"),
        Some("2")
    );
    let morning = h.pass_at(&reconciler, TUESDAY_MORNING).await;
    let woken = rollout_of();
    assert_eq!(woken["spec"]["replicas"], 2);
    assert_eq!(annotation(&woken, "curfew.dev/original-replicas"), None);
    assert!(morning.outcomes.iter().all(|o| o.error.is_none()));
    assert_eq!(h.events("ScaledUp"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_crds_are_normal_and_never_listed() {
    let h = KubeHarness::start(FLOORS, MONDAY_NIGHT).await;
    h.add([namespace("team-a"), deployment("team-a", "api", 1)]);
    let provider = h.provider().await;
    let targets = provider.discover().await.expect("discovers").targets;
    assert_eq!(targets.len(), 1);
    let lists: Vec<String> = h
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb == Verb::List)
        .map(|r| r.path)
        .collect();
    assert!(
        lists
            .iter()
            .all(|path| !path.contains("scaledobjects") && !path.contains("rollouts")),
        "{lists:?}"
    );
    assert!(
        lists
            .iter()
            .any(|path| path.contains("horizontalpodautoscalers")),
        "{lists:?}"
    );
}
