//! The Kubernetes manifests in deploy/kubernetes/base: each resource is a valid object of its
//! kind, RBAC grants what curfew does, and the shipped configuration validates.

use std::path::{Path, PathBuf};

use curfew::config::Config;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/base")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every resource the kustomization lists, parsed.
fn resources() -> Vec<(String, Value)> {
    let kustomization = yaml(&base().join("kustomization.yaml"));
    let files = kustomization["resources"]
        .as_array()
        .expect("resources listed");
    files
        .iter()
        .map(|file| {
            let name = file.as_str().expect("a file name").to_string();
            let object = yaml(&base().join(&name));
            (name, object)
        })
        .collect()
}

fn one<K: DeserializeOwned>(kind: &str) -> K {
    let found: Vec<Value> = resources()
        .into_iter()
        .map(|(_, object)| object)
        .filter(|object| object["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind}");
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn check<K: DeserializeOwned>(name: &str, object: &Value) {
    if let Err(error) = serde_json::from_value::<K>(object.clone()) {
        panic!("{name}: not a valid {}: {error}", object["kind"]);
    }
}

#[test]
fn every_listed_resource_is_a_valid_object_in_the_curfew_namespace() {
    let resources = resources();
    assert_eq!(resources.len(), 10);
    for (name, object) in &resources {
        match object["kind"].as_str() {
            Some("Namespace") => check::<Namespace>(name, object),
            Some("ServiceAccount") => check::<ServiceAccount>(name, object),
            Some("ClusterRole") => check::<ClusterRole>(name, object),
            Some("ClusterRoleBinding") => check::<ClusterRoleBinding>(name, object),
            Some("Role") => check::<Role>(name, object),
            Some("RoleBinding") => check::<RoleBinding>(name, object),
            Some("ConfigMap") => check::<ConfigMap>(name, object),
            Some("Deployment") => check::<Deployment>(name, object),
            Some("Service") => check::<Service>(name, object),
            Some("CustomResourceDefinition") => check::<CustomResourceDefinition>(name, object),
            other => panic!("{name}: unexpected kind {other:?}"),
        }
        let cluster_scoped = [
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
        ];
        if !cluster_scoped.iter().any(|k| object["kind"] == *k) {
            assert_eq!(object["metadata"]["namespace"], "curfew", "{name}");
        }
    }
}

fn grants(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|rule| {
        rule.api_groups.iter().flatten().any(|g| g == group)
            && rule.resources.iter().flatten().any(|r| r == resource)
            && rule.verbs.iter().any(|v| v == verb)
    })
}

#[test]
fn rbac_grants_every_call_the_provider_and_the_leader_election_make() {
    let cluster: ClusterRole = one("ClusterRole");
    let rules = cluster.rules.unwrap_or_default();
    let needed = [
        ("", "namespaces", &["list", "watch"][..]),
        ("apps", "deployments", &["list", "watch", "patch"]),
        ("apps", "statefulsets", &["list", "watch", "patch"]),
        ("batch", "cronjobs", &["list", "watch", "patch"]),
        ("", "events", &["create"]),
    ];
    for (group, resource, verbs) in needed {
        for verb in verbs {
            assert!(
                grants(&rules, group, resource, verb),
                "{verb} {group}/{resource}"
            );
        }
    }
    let role: Role = one("Role");
    let rules = role.rules.unwrap_or_default();
    for verb in ["get", "create", "update"] {
        assert!(
            grants(&rules, "coordination.k8s.io", "leases", verb),
            "{verb} leases"
        );
    }
    let account: ServiceAccount = one("ServiceAccount");
    let binding: ClusterRoleBinding = one("ClusterRoleBinding");
    let subject = binding.subjects.unwrap_or_default();
    assert_eq!(subject[0].name, account.metadata.name.unwrap_or_default());
}

#[test]
fn the_deployment_runs_the_shipped_configuration_with_leader_election() {
    let config_map: ConfigMap = one("ConfigMap");
    let text = config_map
        .data
        .and_then(|d| d.get("curfew.yaml").cloned())
        .expect("curfew.yaml in the ConfigMap");
    let config = Config::from_yaml(&text, Path::new("curfew.yaml"));
    assert!(config.is_ok(), "{:?}", config.err().map(|e| e.to_string()));

    let deployment: Deployment = one("Deployment");
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap_or_default();
    let config_path = args
        .iter()
        .skip_while(|a| *a != "-c")
        .nth(1)
        .expect("-c FILE");
    let mounted = container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| config_path.starts_with(&m.mount_path) && m.name == "config");
    assert!(mounted, "{config_path} is on the config volume");
    let pod_namespace = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAMESPACE")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone());
    assert_eq!(pod_namespace.as_deref(), Some("metadata.namespace"));
    assert_eq!(pod.service_account_name.as_deref(), Some("curfew"));
}
