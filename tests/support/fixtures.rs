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

/// A Deployment as a real cluster stores it after `kubectl apply` and a controller's status
/// updates: the last-applied annotation, `managedFields` of both writers, probes, environment
/// and resources. About 4 KB of JSON, for measuring what watch caches hold.
pub fn applied_deployment(namespace: &str, name: &str, replicas: u32) -> Value {
    let mut object = deployment(namespace, name, replicas);
    let labels = json!({"app": name, "app.kubernetes.io/name": name,
                        "app.kubernetes.io/part-of": "shop", "team": "checkout"});
    let container = json!({
        "name": "app", "image": format!("registry.example/{name}:1.42.0"),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "RUST_LOG", "value": "info"}, {"name": "PORT", "value": "8080"},
                {"name": "DATABASE_URL", "value": format!("postgres://{name}-db:5432/{name}")}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 20},
        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    });
    object["metadata"]["labels"] = labels.clone();
    object["spec"]["template"]["metadata"]["labels"] = labels;
    object["spec"]["template"]["spec"]["containers"] = json!([container]);
    object["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    let applied = object.to_string();
    object["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": applied,
        "deployment.kubernetes.io/revision": "7",
    });
    let fields = |manager: &str, operation: &str, sub: Option<&str>, fields: Value| {
        let mut entry = json!({"manager": manager, "operation": operation,
                               "apiVersion": "apps/v1", "time": "2026-11-02T09:14:07Z",
                               "fieldsType": "FieldsV1", "fieldsV1": fields});
        if let Some(sub) = sub {
            entry["subresource"] = json!(sub);
        }
        entry
    };
    let spec_fields = json!({
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                       "f:labels": {".": {}, "f:app": {}, "f:app.kubernetes.io/name": {},
                                    "f:app.kubernetes.io/part-of": {}, "f:team": {}}},
        "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
                   "f:selector": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {},
                   "f:maxUnavailable": {}}, "f:type": {}},
                   "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {},
                   "f:image": {}, "f:imagePullPolicy": {}, "f:livenessProbe": {}, "f:name": {},
                   "f:ports": {}, "f:readinessProbe": {}, "f:resources": {}, "f:securityContext": {}}},
                   "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                   "f:terminationGracePeriodSeconds": {}}}},
    });
    let status_fields = json!({
        "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
        "f:status": {"f:availableReplicas": {}, "f:conditions": {".": {},
                     "k:{\"type\":\"Available\"}": {".": {}, "f:lastTransitionTime": {},
                     "f:lastUpdateTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                     "k:{\"type\":\"Progressing\"}": {".": {}, "f:lastTransitionTime": {},
                     "f:lastUpdateTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                     "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {},
                     "f:updatedReplicas": {}},
    });
    object["metadata"]["managedFields"] = json!([
        fields("kubectl-client-side-apply", "Update", None, spec_fields),
        fields(
            "kube-controller-manager",
            "Update",
            Some("status"),
            status_fields
        ),
    ]);
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

/// curfew's own `Override` CustomResourceDefinition, as deployed.
pub fn override_crd() -> Value {
    serde_saphyr::from_str(include_str!("../../deploy/kubernetes/base/crd.yaml"))
        .expect("the CRD is YAML")
}

/// An `Override` resource named `id` in `namespace` keeping `environment` in `state` (`up` or
/// `down`) from `created_at` until `until` (RFC 3339).
pub fn override_resource(
    namespace: &str,
    id: &str,
    environment: &str,
    state: &str,
    (created_at, until): (&str, &str),
) -> Value {
    json!({
        "apiVersion": "curfew.dev/v1", "kind": "Override",
        "metadata": {"name": id, "namespace": namespace},
        "spec": {"environment": environment, "state": state, "createdAt": created_at,
                 "until": until, "reason": "release rehearsal", "createdBy": "otto"},
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
