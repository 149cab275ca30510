//! Mapping Kubernetes objects to [`Target`]s and [`Action`]s to merge patches.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::annotations::{self, Annotations, Source};
use super::projection::{Cached, Identity, PodRequests};
use crate::domain::{Action, Capacity, Footprint, Kind, Target, TargetRules};

/// What curfew needs to know of a Deployment, StatefulSet or CronJob.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid, if known.
    pub uid: Option<String>,
    /// Its resourceVersion, if known.
    pub resource_version: Option<String>,
    /// Its annotations.
    pub annotations: Annotations,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// `spec.replicas` (default 1) or `spec.suspend` (default false).
    pub capacity: Capacity,
    /// Ready replicas (`status.readyReplicas`, absent means 0); 0 for CronJobs.
    pub ready_replicas: u32,
    /// CPU requested per pod, in millicores.
    pub cpu_millis: u32,
    /// Memory requested per pod, in MiB.
    pub memory_mib: u32,
    /// For an object that steers a workload (a ScaledObject): whether that workload is ready.
    pub workload_ready: Option<bool>,
}

/// How a target id names an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectId {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Parses a target id (`deployment/shop/web`).
pub fn parse_id(id: &str) -> Option<ObjectId> {
    let mut parts = id.splitn(3, '/');
    let kind = match parts.next()? {
        "deployment" => Kind::Deployment,
        "stateful_set" => Kind::StatefulSet,
        "cron_job" => Kind::CronJob,
        "horizontal_pod_autoscaler" => Kind::HorizontalPodAutoscaler,
        "scaled_object" => Kind::ScaledObject,
        "rollout" => Kind::Rollout,
        _ => return None,
    };
    let namespace = parts.next().filter(|n| !n.is_empty())?.to_string();
    let name = parts.next().filter(|n| !n.is_empty())?.to_string();
    Some(ObjectId {
        kind,
        namespace,
        name,
    })
}

/// Whether `capacity` is something a workload of `kind` can have.
pub fn fits(kind: Kind, capacity: Capacity) -> bool {
    matches!(
        (kind, capacity),
        (
            Kind::Deployment
                | Kind::StatefulSet
                | Kind::Rollout
                | Kind::HorizontalPodAutoscaler
                | Kind::ScaledObject,
            Capacity::Replicas(_)
        ) | (Kind::CronJob, Capacity::Suspended(_))
    )
}

/// The `apiVersion` and `kind` of objects of `kind`.
pub fn api_version_and_kind(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::StatefulSet => ("apps/v1", "StatefulSet"),
        Kind::CronJob => ("batch/v1", "CronJob"),
        Kind::HorizontalPodAutoscaler => ("autoscaling/v2", "HorizontalPodAutoscaler"),
        Kind::ScaledObject => ("keda.sh/v1alpha1", "ScaledObject"),
        Kind::Rollout => ("argoproj.io/v1alpha1", "Rollout"),
        _ => ("apps/v1", "Deployment"),
    }
}

/// A k8s-openapi time as a chrono instant.
pub fn to_chrono(time: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(
        time.0.as_second(),
        time.0.subsec_nanosecond().try_into().ok()?,
    )
}

fn to_u32(value: Option<i32>, default: u32) -> u32 {
    value.map_or(default, |v| u32::try_from(v).unwrap_or(0))
}

// === impl Observed ===

impl Observed {
    fn new(kind: Kind, identity: &Identity, capacity: Capacity) -> Self {
        Observed {
            kind,
            namespace: identity.namespace.to_string(),
            name: identity.name.to_string(),
            uid: identity.uid.as_deref().map(str::to_string),
            resource_version: identity.resource_version.as_deref().map(str::to_string),
            annotations: Annotations::new(),
            created_at: identity.creation_timestamp.as_ref().and_then(to_chrono),
            capacity,
            ready_replicas: 0,
            cpu_millis: 0,
            memory_mib: 0,
            workload_ready: None,
        }
    }

    /// An object whose whole metadata is at hand, annotations included.
    fn from_metadata(kind: Kind, metadata: &ObjectMeta, capacity: Capacity) -> Self {
        let mut metadata = metadata.clone();
        let annotations = metadata.annotations.take().unwrap_or_default();
        let mut observed = Observed::new(kind, &Identity::of(metadata), capacity);
        observed.annotations = annotations;
        observed
    }

    /// A Deployment.
    pub fn from_deployment(deployment: &Cached<Deployment>) -> Self {
        Observed::replicated(Kind::Deployment, deployment)
    }

    /// A StatefulSet.
    pub fn from_stateful_set(set: &Cached<StatefulSet>) -> Self {
        Observed::replicated(Kind::StatefulSet, set)
    }

    /// A workload with `spec.replicas` (default 1) and a pod template.
    fn replicated<K>(kind: Kind, object: &Cached<K>) -> Self {
        let replicas = to_u32(object.spec.replicas, 1);
        let mut observed = Observed::new(kind, &object.identity, Capacity::Replicas(replicas));
        observed.annotations = object.annotations.to_map();
        observed.ready_replicas = to_u32(object.status.ready_replicas, 0);
        observed.set_requests(object.spec.requests);
        observed
    }

    fn set_requests(&mut self, requests: PodRequests) {
        self.cpu_millis = requests.cpu_millis;
        self.memory_mib = requests.memory_mib;
    }

    /// A CronJob.
    pub fn from_cron_job(job: &Cached<CronJob>) -> Self {
        let suspended = job.spec.suspend.unwrap_or(false);
        let mut observed =
            Observed::new(Kind::CronJob, &job.identity, Capacity::Suspended(suspended));
        observed.annotations = job.annotations.to_map();
        observed
    }

    /// An Argo Rollout (a dynamic object): `spec.replicas` like a Deployment.
    pub fn from_rollout(rollout: &DynamicObject) -> Self {
        let count = |value: &Value, default: u32| {
            value
                .as_u64()
                .map_or(default, |n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let spec = &rollout.data["spec"];
        let mut observed = Observed::from_metadata(
            Kind::Rollout,
            &rollout.metadata,
            Capacity::Replicas(count(&spec["replicas"], 1)),
        );
        observed.ready_replicas = count(&rollout.data["status"]["readyReplicas"], 0);
        observed.set_requests(PodRequests::of_template(&spec["template"]));
        observed
    }

    /// A HorizontalPodAutoscaler: its capacity is `spec.minReplicas` (default 1), always
    /// ready.
    pub fn from_hpa(hpa: &HorizontalPodAutoscaler) -> Self {
        let min = to_u32(hpa.spec.as_ref().and_then(|s| s.min_replicas), 1);
        let mut observed = Observed::from_metadata(
            Kind::HorizontalPodAutoscaler,
            &hpa.metadata,
            Capacity::Replicas(min),
        );
        observed.ready_replicas = min;
        observed
    }

    /// A KEDA ScaledObject steering `workload`: its capacity is the replica count it pauses
    /// the workload at, or the workload's replicas when not paused; it is ready when the
    /// workload is.
    pub fn from_scaled_object(
        object: &DynamicObject,
        workload: Option<&Observed>,
    ) -> Result<Self, annotations::Error> {
        let notes = object.metadata.annotations.clone().unwrap_or_default();
        let paused = annotations::replicas(&notes, annotations::KEDA_PAUSED_REPLICAS)?;
        let current = match workload.map(|w| w.capacity) {
            Some(Capacity::Replicas(n)) => n,
            _ => 0,
        };
        let mut observed = Observed::from_metadata(
            Kind::ScaledObject,
            &object.metadata,
            Capacity::Replicas(paused.unwrap_or(current)),
        );
        if let Some(workload) = workload {
            observed.ready_replicas = workload.ready_replicas;
            observed.cpu_millis = workload.cpu_millis;
            observed.memory_mib = workload.memory_mib;
        }
        observed.workload_ready = Some(workload.is_some_and(Observed::ready));
        Ok(observed)
    }

    /// Its target id, e.g. `deployment/shop/web`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind.as_str(), self.namespace, self.name)
    }

    /// Whether all wanted replicas are ready (CronJobs always are; a ScaledObject is when
    /// its workload is).
    pub fn ready(&self) -> bool {
        if let Some(ready) = self.workload_ready {
            return ready;
        }
        match self.capacity {
            Capacity::Replicas(wanted) => self.ready_replicas == wanted,
            _ => true,
        }
    }

    /// The target, with `down_replicas` while down (CronJobs are suspended instead).
    pub fn to_target(
        &self,
        environment: &str,
        down_replicas: u32,
    ) -> Result<Target, annotations::Error> {
        let original = annotations::original(self.kind, &self.annotations)?.map(|(c, _)| c);
        let (down, footprint) = match self.kind {
            Kind::CronJob => (Capacity::Suspended(true), Footprint::Nothing),
            _ => (
                Capacity::Replicas(down_replicas),
                Footprint::Pods {
                    count: self.ready_replicas,
                    cpu_millis: self.cpu_millis,
                    memory_mib: self.memory_mib,
                },
            ),
        };
        Ok(Target {
            id: self.id(),
            kind: self.kind,
            environment: environment.to_string(),
            capacity: self.capacity,
            original,
            down,
            ready: self.ready(),
            created_at: self.created_at,
            footprint,
            rules: TargetRules::default(),
        })
    }

    /// The merge patch that applies `action`, with this object's resourceVersion as a
    /// precondition; `None` when the action already holds.
    ///
    /// Scaling down stores the original in the same patch; scaling up removes it. A
    /// kube-downscaler original is removed in either case, so curfew takes over.
    pub fn patch_for(&self, action: &Action) -> Option<Value> {
        let stored = annotations::original(self.kind, &self.annotations)
            .ok()
            .flatten();
        let has_downscaler = self
            .annotations
            .contains_key(annotations::DOWNSCALER_ORIGINAL_REPLICAS);
        let (to, original) = match action {
            Action::ScaleDown { original, to, .. } => {
                if self.capacity == *to && stored == Some((*original, Source::Curfew)) {
                    return None;
                }
                (*to, Some(annotations::encode_original(*original)?))
            }
            Action::ScaleUp { to, .. } => {
                if self.capacity == *to && stored.is_none() {
                    return None;
                }
                (*to, None)
            }
        };
        let mut notes = serde_json::Map::new();
        notes.insert(annotations::ORIGINAL_REPLICAS.to_string(), json!(original));
        if has_downscaler {
            notes.insert(
                annotations::DOWNSCALER_ORIGINAL_REPLICAS.to_string(),
                Value::Null,
            );
        }
        let spec = match (self.kind, to) {
            (Kind::CronJob, Capacity::Suspended(suspend)) => json!({"suspend": suspend}),
            (Kind::Deployment | Kind::StatefulSet | Kind::Rollout, Capacity::Replicas(n)) => {
                json!({"replicas": n})
            }
            (Kind::HorizontalPodAutoscaler, Capacity::Replicas(n)) => json!({"minReplicas": n}),
            (Kind::ScaledObject, Capacity::Replicas(n)) => {
                self.pause_notes(action, n, stored.is_some(), &mut notes);
                return Some(json!({
                    "metadata": {"resourceVersion": self.resource_version, "annotations": notes},
                }));
            }
            _ => return None,
        };
        Some(json!({
            "metadata": {"resourceVersion": self.resource_version, "annotations": notes},
            "spec": spec,
        }))
    }

    /// A ScaledObject's pause annotations for `action`: going down pauses it at `replicas`
    /// and remembers a pause that was there before curfew's (unless curfew's own original is
    /// already `stored`); waking restores that pause or removes it.
    fn pause_notes(
        &self,
        action: &Action,
        replicas: u32,
        stored: bool,
        notes: &mut serde_json::Map<String, Value>,
    ) {
        let paused = annotations::KEDA_PAUSED_REPLICAS.to_string();
        let before = annotations::ORIGINAL_PAUSED_REPLICAS.to_string();
        match action {
            Action::ScaleDown { .. } => {
                notes.insert(paused.clone(), json!(replicas.to_string()));
                if let (false, Some(value)) = (stored, self.annotations.get(&paused)) {
                    notes.insert(before, json!(value));
                }
            }
            Action::ScaleUp { .. } => {
                let restored = self
                    .annotations
                    .get(&before)
                    .map_or(Value::Null, |v| json!(v));
                notes.insert(paused, restored);
                notes.insert(before, Value::Null);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::projection::Projected;
    use super::*;

    fn mk_deployment(
        replicas: i32,
        ready: Option<i32>,
        annotations: &[(&str, &str)],
    ) -> Cached<Deployment> {
        serde_json::from_value::<Projected<Deployment>>(json!({
            "metadata": {
                "name": "web", "namespace": "shop", "resourceVersion": "42",
                "creationTimestamp": "2026-11-01T10:00:00Z",
                "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [
                    {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                    {"name": "sidecar", "resources": {"requests": {"cpu": "0.1", "memory": "64Mi"}}},
                    {"name": "bare"}
                ]}},
            },
            "status": {"readyReplicas": ready},
        }))
        .expect("valid deployment")
        .into()
    }

    fn down(original: u32) -> Action {
        Action::ScaleDown {
            target: "deployment/shop/web".into(),
            original: Capacity::Replicas(original),
            to: Capacity::Replicas(0),
        }
    }

    #[test]
    fn a_deployment_becomes_a_target_with_its_footprint() {
        let observed = Observed::from_deployment(&mk_deployment(3, Some(2), &[]));
        let target = observed.to_target("staging", 0).expect("valid");
        assert_eq!(target.id, "deployment/shop/web");
        assert_eq!(target.capacity, Capacity::Replicas(3));
        assert!(!target.ready, "2 of 3 ready");
        assert_eq!(
            target.footprint,
            Footprint::Pods {
                count: 2,
                cpu_millis: 350,
                memory_mib: 576
            }
        );
        assert_eq!(
            target.created_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-01T10:00:00+00:00")
        );
    }

    #[test]
    fn absent_ready_replicas_count_as_zero() {
        let observed = Observed::from_deployment(&mk_deployment(0, None, &[]));
        assert!(observed.ready());
        let waking = Observed::from_deployment(&mk_deployment(2, None, &[]));
        assert!(!waking.ready());
    }

    #[test]
    fn scaling_down_writes_the_original_in_the_same_patch() {
        let observed = Observed::from_deployment(&mk_deployment(3, Some(3), &[]));
        let patch = observed.patch_for(&down(3)).expect("differs");
        assert_eq!(
            patch,
            json!({
                "metadata": {"resourceVersion": "42", "annotations": {"curfew.dev/original-replicas": "3"}},
                "spec": {"replicas": 0},
            })
        );
    }

    #[test]
    fn scaling_up_removes_both_originals() {
        let observed = Observed::from_deployment(&mk_deployment(
            0,
            None,
            &[("downscaler/original-replicas", "4")],
        ));
        let up = Action::ScaleUp {
            target: "deployment/shop/web".into(),
            to: Capacity::Replicas(4),
        };
        let patch = observed.patch_for(&up).expect("differs");
        assert_eq!(
            patch["metadata"]["annotations"],
            json!({"curfew.dev/original-replicas": null, "downscaler/original-replicas": null})
        );
        assert_eq!(patch["spec"], json!({"replicas": 4}));
    }

    #[test]
    fn an_action_that_already_holds_needs_no_patch() {
        let down_already = Observed::from_deployment(&mk_deployment(
            0,
            None,
            &[("curfew.dev/original-replicas", "3")],
        ));
        assert_eq!(down_already.patch_for(&down(3)), None);
        let up_already = Observed::from_deployment(&mk_deployment(3, Some(3), &[]));
        let up = Action::ScaleUp {
            target: "deployment/shop/web".into(),
            to: Capacity::Replicas(3),
        };
        assert_eq!(up_already.patch_for(&up), None);
    }

    fn mk_scaled_object(annotations: &[(&str, &str)]) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {
                "name": "web", "namespace": "shop", "resourceVersion": "7",
                "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            },
            "spec": {"scaleTargetRef": {"name": "web"}},
        }))
        .expect("valid object")
    }

    fn scaled(action: &str, original: u32, to: u32) -> Action {
        let target = "scaled_object/shop/web".to_string();
        match action {
            "down" => Action::ScaleDown {
                target,
                original: Capacity::Replicas(original),
                to: Capacity::Replicas(to),
            },
            _ => Action::ScaleUp {
                target,
                to: Capacity::Replicas(original),
            },
        }
    }

    #[test]
    fn a_scaled_object_is_paused_with_the_original_in_the_same_patch() {
        let web = Observed::from_deployment(&mk_deployment(3, Some(3), &[]));
        let object =
            Observed::from_scaled_object(&mk_scaled_object(&[]), Some(&web)).expect("valid");
        assert_eq!(
            object.capacity,
            Capacity::Replicas(3),
            "the workload's replicas"
        );
        assert!(object.ready());
        let patch = object.patch_for(&scaled("down", 3, 0)).expect("differs");
        assert_eq!(
            patch,
            json!({"metadata": {"resourceVersion": "7", "annotations": {
                "curfew.dev/original-replicas": "3",
                "autoscaling.keda.sh/paused-replicas": "0",
            }}})
        );
    }

    #[test]
    fn a_pause_that_was_there_before_is_kept_and_put_back() {
        let before = mk_scaled_object(&[("autoscaling.keda.sh/paused-replicas", "2")]);
        let object = Observed::from_scaled_object(&before, None).expect("valid");
        assert_eq!(object.capacity, Capacity::Replicas(2));
        let patch = object.patch_for(&scaled("down", 2, 0)).expect("differs");
        assert_eq!(
            patch["metadata"]["annotations"]["curfew.dev/original-paused-replicas"],
            "2"
        );
        let asleep = mk_scaled_object(&[
            ("autoscaling.keda.sh/paused-replicas", "0"),
            ("curfew.dev/original-paused-replicas", "2"),
            ("curfew.dev/original-replicas", "2"),
        ]);
        let object = Observed::from_scaled_object(&asleep, None).expect("valid");
        let patch = object.patch_for(&scaled("up", 2, 0)).expect("differs");
        assert_eq!(
            patch["metadata"]["annotations"],
            json!({
                "curfew.dev/original-replicas": null,
                "autoscaling.keda.sh/paused-replicas": "2",
                "curfew.dev/original-paused-replicas": null,
            })
        );
        let garbled = mk_scaled_object(&[("autoscaling.keda.sh/paused-replicas", "many")]);
        assert!(Observed::from_scaled_object(&garbled, None).is_err());
    }

    #[test]
    fn an_hpa_patch_sets_min_replicas() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "9"},
            "spec": {"minReplicas": 3, "maxReplicas": 10,
                     "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
        }))
        .expect("valid HPA");
        let observed = Observed::from_hpa(&hpa);
        let down = Action::ScaleDown {
            target: observed.id(),
            original: Capacity::Replicas(3),
            to: Capacity::Replicas(1),
        };
        assert_eq!(
            observed.patch_for(&down),
            Some(json!({
                "metadata": {"resourceVersion": "9", "annotations": {"curfew.dev/original-replicas": "3"}},
                "spec": {"minReplicas": 1},
            }))
        );
    }

    #[test]
    fn target_ids_round_trip() {
        let id = parse_id("stateful_set/shop/db").expect("valid");
        assert_eq!(
            (id.kind, id.namespace.as_str(), id.name.as_str()),
            (Kind::StatefulSet, "shop", "db")
        );
        assert_eq!(
            parse_id("scaled_object/shop/web").map(|id| id.kind),
            Some(Kind::ScaledObject)
        );
        assert_eq!(parse_id("auto_scaling_group/x"), None);
        assert_eq!(parse_id("deployment//web"), None);
    }
}
