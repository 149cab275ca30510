//! Autoscalers in front of workloads: HorizontalPodAutoscalers and KEDA ScaledObjects.
//!
//! A workload a ScaledObject steers is scaled through the ScaledObject (KEDA owns its
//! replicas): going down pauses the ScaledObject at the workload's down replicas, waking
//! removes the pause. A workload an HPA steers is scaled itself, and when its down replicas
//! are above zero the HPA's `minReplicas` is lowered to them too (an HPA would otherwise scale
//! the workload back up to its minimum; at zero replicas an HPA stands still). Both follow the
//! workload's annotations, calendar and grace period.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::DynamicObject;

use super::annotations::{self, Error};
use super::workloads::{Observed, api_version_and_kind};
use crate::domain::{Capacity, Footprint, Kind, Target};

/// A workload as a scale target reference names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadRef {
    /// Its namespace (the autoscaler's).
    pub namespace: String,
    /// Its Kubernetes kind, e.g. `Deployment`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

impl WorkloadRef {
    /// The reference to `workload`.
    pub fn of(workload: &Observed) -> Self {
        WorkloadRef {
            namespace: workload.namespace.clone(),
            kind: api_version_and_kind(workload.kind).1.to_string(),
            name: workload.name.clone(),
        }
    }

    /// The workload a ScaledObject's `spec.scaleTargetRef` names (kind `Deployment` when
    /// not given).
    pub fn of_scaled_object(object: &DynamicObject) -> Option<Self> {
        let reference = &object.data["spec"]["scaleTargetRef"];
        Some(WorkloadRef {
            namespace: object.metadata.namespace.clone()?,
            kind: reference["kind"]
                .as_str()
                .unwrap_or("Deployment")
                .to_string(),
            name: reference["name"].as_str()?.to_string(),
        })
    }

    /// The workload an HPA's `spec.scaleTargetRef` names.
    pub fn of_hpa(hpa: &HorizontalPodAutoscaler) -> Option<Self> {
        let reference = &hpa.spec.as_ref()?.scale_target_ref;
        Some(WorkloadRef {
            namespace: hpa.metadata.namespace.clone()?,
            kind: reference.kind.clone(),
            name: reference.name.clone(),
        })
    }
}

/// Which autoscaler steers which workload, from the watch caches of one pass.
#[derive(Debug, Default)]
pub struct Autoscalers {
    hpas: HashMap<WorkloadRef, Arc<HorizontalPodAutoscaler>>,
    scaled_objects: HashMap<WorkloadRef, Arc<DynamicObject>>,
}

// === impl Autoscalers ===

impl Autoscalers {
    /// Indexes `hpas` and `scaled_objects` by the workload each steers; where two steer the
    /// same workload the first wins. HPAs that KEDA made for its ScaledObjects are left out.
    pub fn new(
        hpas: Vec<Arc<HorizontalPodAutoscaler>>,
        scaled_objects: Vec<Arc<DynamicObject>>,
    ) -> Self {
        let mut index = Autoscalers::default();
        for hpa in hpas.into_iter().filter(|hpa| !made_by_keda(hpa)) {
            if let Some(reference) = WorkloadRef::of_hpa(&hpa) {
                index.hpas.entry(reference).or_insert(hpa);
            }
        }
        for object in scaled_objects {
            if let Some(reference) = WorkloadRef::of_scaled_object(&object) {
                index.scaled_objects.entry(reference).or_insert(object);
            }
        }
        index
    }

    /// The ScaledObject steering `workload`, if any.
    pub fn scaled_object(&self, workload: &Observed) -> Option<&Arc<DynamicObject>> {
        if self.scaled_objects.is_empty() {
            return None;
        }
        self.scaled_objects.get(&WorkloadRef::of(workload))
    }

    /// The HPA steering `workload`, if any.
    pub fn hpa(&self, workload: &Observed) -> Option<&Arc<HorizontalPodAutoscaler>> {
        if self.hpas.is_empty() {
            return None;
        }
        self.hpas.get(&WorkloadRef::of(workload))
    }
}

fn made_by_keda(hpa: &HorizontalPodAutoscaler) -> bool {
    hpa.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.kind == "ScaledObject")
}

/// The target of an HPA in front of `workload`'s target: while down, its `minReplicas` goes
/// to the workload's down replicas when those are above zero and below the minimum. `None`
/// when there is nothing to do and nothing to restore.
pub fn hpa_target(hpa: &Observed, workload: &Target) -> Result<Option<Target>, Error> {
    let (Capacity::Replicas(down), Capacity::Replicas(min)) = (workload.down, hpa.capacity) else {
        return Ok(None);
    };
    let original = annotations::original(hpa.kind, &hpa.annotations)?.map(|(c, _)| c);
    if down == 0 && original.is_none() {
        return Ok(None);
    }
    let down = if down == 0 { min } else { down.min(min) };
    Ok(Some(Target {
        id: hpa.id(),
        kind: Kind::HorizontalPodAutoscaler,
        environment: workload.environment.clone(),
        capacity: hpa.capacity,
        original,
        down: Capacity::Replicas(down),
        ready: true,
        created_at: workload.created_at,
        footprint: Footprint::Nothing,
        rules: workload.rules.clone(),
    }))
}

/// The target of a ScaledObject standing in for `workload`'s target: same environment, down
/// replicas, calendar and pods; its capacity is the replica count it pauses the workload at.
pub fn scaled_object_target(object: &Observed, workload: Target) -> Result<Target, Error> {
    let original = annotations::original(object.kind, &object.annotations)?.map(|(c, _)| c);
    Ok(Target {
        id: object.id(),
        kind: Kind::ScaledObject,
        capacity: object.capacity,
        original,
        ready: object.ready(),
        ..workload
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::super::projection::Projected;
    use super::*;
    use crate::domain::testing::mk_target;

    fn mk_hpa(
        min: u32,
        annotations: serde_json::Value,
        owner: Option<&str>,
    ) -> HorizontalPodAutoscaler {
        let owners: Vec<_> = owner
            .map(|kind| json!({"apiVersion": "keda.sh/v1alpha1", "kind": kind, "name": "web", "uid": "1"}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations,
                         "ownerReferences": owners},
            "spec": {"minReplicas": min, "maxReplicas": 10,
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
        }))
        .expect("valid HPA")
    }

    fn mk_workload_target(down: u32) -> Target {
        Target {
            down: Capacity::Replicas(down),
            created_at: None,
            ..mk_target("deployment/shop/web", Kind::Deployment, 4, None)
        }
    }

    fn web() -> Observed {
        let deployment: Projected<Deployment> = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 4, "selector": {}, "template": {}},
        }))
        .expect("valid deployment");
        Observed::from_deployment(&deployment.into())
    }

    #[test]
    fn an_hpa_is_lowered_only_to_down_replicas_above_zero() {
        let hpa = Observed::from_hpa(&mk_hpa(3, json!({}), None));
        let target = hpa_target(&hpa, &mk_workload_target(1))
            .expect("valid")
            .expect("managed");
        assert_eq!(
            (target.capacity, target.down),
            (Capacity::Replicas(3), Capacity::Replicas(1))
        );
        assert_eq!(target.id, "horizontal_pod_autoscaler/shop/web");
        assert_eq!(hpa_target(&hpa, &mk_workload_target(0)), Ok(None));
        let low = Observed::from_hpa(&mk_hpa(1, json!({}), None));
        let target = hpa_target(&low, &mk_workload_target(2))
            .expect("valid")
            .expect("managed");
        assert_eq!(target.down, target.capacity, "never raised");
    }

    #[test]
    fn a_lowered_hpa_is_restored_even_when_the_floor_went_to_zero() {
        let hpa = Observed::from_hpa(&mk_hpa(
            1,
            json!({"curfew.dev/original-replicas": "3"}),
            None,
        ));
        let target = hpa_target(&hpa, &mk_workload_target(0))
            .expect("valid")
            .expect("managed");
        assert_eq!(target.original, Some(Capacity::Replicas(3)));
        assert_eq!(target.down, Capacity::Replicas(1));
    }

    #[test]
    fn autoscalers_are_found_by_the_workload_they_steer_and_keda_hpas_are_ignored() {
        let index = Autoscalers::new(vec![Arc::new(mk_hpa(2, json!({}), None))], Vec::new());
        assert!(index.hpa(&web()).is_some());
        let keda = Autoscalers::new(
            vec![Arc::new(mk_hpa(2, json!({}), Some("ScaledObject")))],
            Vec::new(),
        );
        assert!(keda.hpa(&web()).is_none());
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "web-scaler", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"name": "web"}},
        }))
        .expect("valid object");
        let index = Autoscalers::new(Vec::new(), vec![Arc::new(object)]);
        assert!(index.scaled_object(&web()).is_some());
    }
}
