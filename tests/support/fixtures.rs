//! Kubernetes objects for tests, as JSON the fake API server accepts.

use serde_json::{Value, json};

/// A namespace.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn pod_template(name: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "app:1",
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]},
    })
}

/// A Deployment with `replicas`.
pub fn deployment(namespace: &str, name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": pod_template(name)},
    })
}

/// A StatefulSet with `replicas`.
pub fn stateful_set(namespace: &str, name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "serviceName": name,
                 "selector": {"matchLabels": {"app": name}}, "template": pod_template(name)},
    })
}

/// An active CronJob.
pub fn cron_job(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "0 * * * *", "suspend": false,
                 "jobTemplate": {"spec": {"template": pod_template(name)}}},
    })
}

/// `object` with these labels added.
pub fn labelled(mut object: Value, labels: &[(&str, &str)]) -> Value {
    for (key, value) in labels {
        object["metadata"]["labels"][*key] = json!(value);
    }
    object
}

/// `object` with these annotations added.
pub fn annotated(mut object: Value, annotations: &[(&str, &str)]) -> Value {
    for (key, value) in annotations {
        object["metadata"]["annotations"][*key] = json!(value);
    }
    object
}

/// The CustomResourceDefinition of `kind` (plural `plural`) in `group`, served as `v1alpha1`.
pub fn crd(group: &str, plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true}]},
    })
}

/// A HorizontalPodAutoscaler of the Deployment `target` with `min` replicas.
pub fn hpa(namespace: &str, name: &str, target: &str, min: u32) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"minReplicas": min, "maxReplicas": 10,
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}},
    })
}

/// A KEDA ScaledObject of the Deployment `target` (needs the keda.sh CRD).
pub fn scaled_object(namespace: &str, name: &str, target: &str) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 10},
    })
}

/// An Argo Rollout with `replicas` (needs the argoproj.io CRD).
pub fn rollout(namespace: &str, name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": pod_template(name),
                 "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
    })
}
