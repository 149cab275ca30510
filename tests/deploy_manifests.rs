//! The Kubernetes manifests under deploy/kubernetes and the Dockerfile: every manifest passes
//! `kubernetes-validate` (strict, against the Kubernetes version k8s-openapi is built for),
//! custom resources it has no schema for are checked here by hand, every file is listed in its
//! kustomization, the pod runs locked down with the shipped configuration, and the image runs
//! as the same non-root user.
//!
//! The exact RBAC verbs are tested in `rbac_verbs.rs`, against what curfew really requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use curfew::config::Config;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The Kubernetes version the manifests are validated against: the one the `k8s-openapi`
/// feature in Cargo.toml names, and the fake API server reports.
const KUBERNETES_VERSION: &str = "1.33.0";

/// Checks the structure of a custom resource (its file and its object); panics when wrong.
type CustomCheck = fn(&Path, &Value);

/// Kinds `kubernetes-validate` has no schema for, each with the check this file makes instead.
/// A new custom resource in deploy/kubernetes fails the validation test until it is added here
/// with a check of its own (the CRDs themselves are apiextensions/v1 and validated normally).
const CUSTOM_KINDS: &[(&str, &str, CustomCheck)] = &[
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        check_service_monitor,
    ),
    (
        "traefik.io/v1alpha1",
        "Middleware",
        check_traefik_middleware,
    ),
];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn base() -> PathBuf {
    repository().join("deploy/kubernetes/base")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_kustomization(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "kustomization.yaml")
}

/// Every YAML file under `dir`, recursively, in a stable order.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every manifest under deploy/kubernetes (kustomizations are not Kubernetes objects).
fn manifests() -> Vec<PathBuf> {
    yaml_files(&repository().join("deploy/kubernetes"))
        .into_iter()
        .filter(|p| !is_kustomization(p))
        .collect()
}

/// The objects of the base, by kind.
fn objects() -> BTreeMap<String, Vec<Value>> {
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for path in yaml_files(&base()).iter().filter(|p| !is_kustomization(p)) {
        let object = yaml(path);
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        by_kind.entry(kind).or_default().push(object);
    }
    by_kind
}

/// The one object of `kind` in the base, as `K`.
fn one<K: DeserializeOwned>(kind: &str) -> K {
    let objects = objects();
    let found = objects.get(kind).map(Vec::as_slice).unwrap_or_default();
    assert_eq!(found.len(), 1, "one {kind} in the base");
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn pod_spec() -> PodSpec {
    let deployment: Deployment = one("Deployment");
    deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("a pod spec")
}

fn container() -> Container {
    let pod = pod_spec();
    assert_eq!(pod.containers.len(), 1, "one container");
    pod.containers[0].clone()
}

// === kubernetes-validate ===

/// `kubernetes-validate` (PyPI), as `./tests/run` installs it.
fn validator() -> String {
    std::env::var("CURFEW_KUBERNETES_VALIDATE").unwrap_or_else(|_| "kubernetes-validate".into())
}

/// Runs the validator strictly over `files`: its exit status and its output lines.
fn validate(files: &[PathBuf]) -> (bool, Vec<String>) {
    let program = validator();
    let output = Command::new(&program)
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): run the suite with ./tests/run, which installs kubernetes-validate")
        });
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (
        output.status.success(),
        text.lines().map(str::to_string).collect(),
    )
}

#[test]
fn every_manifest_passes_kubernetes_validate_or_the_check_for_its_custom_kind() {
    let files = manifests();
    assert!(files.len() >= 11, "the base has its manifests: {files:?}");
    let (success, lines) = validate(&files);
    assert!(success, "kubernetes-validate failed:\n{}", lines.join("\n"));
    for file in &files {
        let shown = file.display().to_string();
        let about: Vec<&String> = lines
            .iter()
            .filter(|l| l.split_whitespace().nth(1) == Some(shown.as_str()))
            .collect();
        let object = yaml(file);
        let (api_version, kind) = (
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        );
        let passed = format!("passed for resource {}/", kind.to_lowercase());
        if about.len() == 1 && about[0].starts_with("INFO ") && about[0].contains(&passed) {
            continue;
        }
        let custom = CUSTOM_KINDS
            .iter()
            .find(|(v, k, _)| *v == api_version && *k == kind);
        let no_schema = about.len() == 1 && about[0].contains("Couldn't find schema for kind");
        match custom {
            Some((_, _, check)) if no_schema => check(file, &object),
            _ => panic!(
                "{shown}: {api_version} {kind} was not validated: {about:?}; a custom kind needs an entry in CUSTOM_KINDS"
            ),
        }
    }
}

#[test]
fn kubernetes_validate_rejects_a_manifest_with_a_wrong_type_or_an_unknown_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong_type = dir.path().join("wrong-type.yaml");
    let unknown_field = dir.path().join("unknown-field.yaml");
    std::fs::write(
        &wrong_type,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  \
         selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n",
    )
    .expect("writes");
    std::fs::write(
        &unknown_field,
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}], selectr: {a: b}}\n",
    )
    .expect("writes");
    for file in [wrong_type, unknown_field] {
        let (success, lines) = validate(std::slice::from_ref(&file));
        assert!(!success, "{} passed: {lines:?}", file.display());
        assert!(lines.iter().any(|l| l.starts_with("ERROR")), "{lines:?}");
    }
}

/// A ServiceMonitor as the Prometheus Operator reads it: it selects curfew's Service in its
/// namespace and scrapes `/metrics` on one of that Service's named ports.
fn check_service_monitor(file: &Path, monitor: &Value) {
    let at = file.display();
    let service: Service = one("Service");
    let service_labels = service.metadata.labels.clone().unwrap_or_default();
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    assert!(monitor["metadata"]["name"].is_string(), "{at}: a name");
    assert_eq!(monitor["metadata"]["namespace"], namespace.as_str(), "{at}");
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap_or_else(|| panic!("{at}: spec.selector.matchLabels"));
    assert!(
        !selector.is_empty(),
        "{at}: an empty selector matches every Service"
    );
    for (key, value) in selector {
        assert_eq!(
            service_labels.get(key).map(String::as_str),
            value.as_str(),
            "{at}: the selector's {key} matches the Service"
        );
    }
    let namespaces = &monitor["spec"]["namespaceSelector"]["matchNames"];
    assert!(
        namespaces
            .as_array()
            .is_none_or(|n| n.contains(&Value::from(namespace.as_str()))),
        "{at}: namespaceSelector includes {namespace}"
    );
    let ports: Vec<String> = service
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.name)
        .collect();
    let endpoints = monitor["spec"]["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("{at}: spec.endpoints"));
    assert!(!endpoints.is_empty(), "{at}: at least one endpoint");
    let known = ["port", "path", "interval", "scrapeTimeout", "scheme"];
    for endpoint in endpoints {
        let fields = endpoint.as_object().expect("an endpoint is an object");
        for field in fields.keys() {
            assert!(
                known.contains(&field.as_str()),
                "{at}: unknown endpoint field {field}"
            );
        }
        let port = endpoint["port"].as_str().unwrap_or_default();
        assert!(
            ports.iter().any(|p| p == port),
            "{at}: port {port:?} is a Service port"
        );
        assert_eq!(endpoint["path"], "/metrics", "{at}: curfew serves /metrics");
        for duration in ["interval", "scrapeTimeout"] {
            if let Some(text) = endpoint[duration].as_str() {
                let digits = text.trim_end_matches(['s', 'm', 'h']);
                assert!(
                    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()),
                    "{at}: {duration} {text:?} is a Prometheus duration"
                );
            }
        }
    }
    for key in monitor.as_object().expect("an object").keys() {
        assert!(
            ["apiVersion", "kind", "metadata", "spec"].contains(&key.as_str()),
            "{at}: unexpected top-level field {key}"
        );
    }
}

// === the base ===

#[test]
fn every_manifest_in_the_base_is_listed_in_its_kustomization_and_in_the_curfew_namespace() {
    let kustomization = yaml(&base().join("kustomization.yaml"));
    let mut listed: Vec<String> = kustomization["resources"]
        .as_array()
        .expect("resources listed")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_string())
        .collect();
    listed.sort();
    let mut present: Vec<String> = yaml_files(&base())
        .iter()
        .filter(|p| !is_kustomization(p))
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    present.sort();
    assert_eq!(listed, present);
    assert_eq!(kustomization["namespace"], "curfew");
    let cluster_scoped = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
    ];
    for (kind, objects) in objects() {
        for object in objects {
            if !cluster_scoped.contains(&kind.as_str()) {
                assert_eq!(object["metadata"]["namespace"], "curfew", "{kind}");
            }
        }
    }
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ] {
        assert!(objects().contains_key(kind), "the base has a {kind}");
    }
}

#[test]
fn no_secret_is_committed_only_referenced_by_name() {
    for file in manifests() {
        assert_ne!(yaml(&file)["kind"], "Secret", "{}", file.display());
    }
    let volumes = pod_spec().volumes.unwrap_or_default();
    let secrets: Vec<String> = volumes
        .iter()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.secret.as_ref())
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(secrets, ["curfew-tokens"]);
}

#[test]
fn the_pod_runs_as_non_root_on_a_read_only_file_system_without_capabilities() {
    let pod = pod_spec();
    let pod_security = pod.security_context.expect("a pod security context");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    let user = pod_security.run_as_user.expect("a numeric user");
    assert!(user > 0, "user {user}");
    assert_eq!(
        pod_security.seccomp_profile.map(|p| p.type_),
        Some("RuntimeDefault".to_string())
    );
    let security = container()
        .security_context
        .expect("a container security context");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let dropped = security
        .capabilities
        .and_then(|c| c.drop)
        .unwrap_or_default();
    assert_eq!(dropped, ["ALL"]);
    assert_eq!(pod.service_account_name.as_deref(), Some("curfew"));
}

#[test]
fn the_tokens_file_is_mounted_readable_by_the_pods_group_and_no_one_else() {
    let pod = pod_spec();
    let security = pod
        .security_context
        .clone()
        .expect("a pod security context");
    let (user, group) = (security.run_as_user, security.fs_group);
    assert_eq!(
        group, security.run_as_group,
        "volumes belong to the pod's group"
    );
    let item = pod
        .volumes
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.secret.as_ref())
        .flat_map(|s| s.items.iter().flatten())
        .find(|i| i.path == "tokens.yaml")
        .cloned()
        .expect("the tokens file is projected");
    let mode = u32::try_from(item.mode.expect("an explicit mode")).unwrap();
    assert_eq!(mode, 0o440);
    // The kubelet writes the file owned by root; curfew, running as the pod's user, reads
    // it through the group and accepts it.
    let user = user.and_then(|u| u32::try_from(u).ok());
    assert_eq!(curfew::api::auth::too_open(mode, 0, user), None);
}

#[test]
fn the_container_has_probes_on_healthz_and_readyz_and_resource_requests_and_limits() {
    let container = container();
    let path = |probe: Option<&k8s_openapi::api::core::v1::Probe>| {
        let get = probe
            .and_then(|p| p.http_get.clone())
            .expect("an HTTP probe");
        (get.path.unwrap_or_default(), get.port)
    };
    let http = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into());
    assert_eq!(
        path(container.liveness_probe.as_ref()),
        ("/healthz".to_string(), http.clone())
    );
    assert_eq!(
        path(container.readiness_probe.as_ref()),
        ("/readyz".to_string(), http)
    );
    let ports = container.ports.clone().unwrap_or_default();
    assert!(ports.iter().any(|p| p.name.as_deref() == Some("http")));
    let resources = container.resources.expect("resources");
    let requests = resources.requests.unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    assert!(limits.contains_key("memory"));
}

#[test]
fn the_disruption_budget_and_the_service_select_the_pods_of_the_deployment() {
    let deployment: Deployment = one("Deployment");
    let spec = deployment.spec.expect("a spec");
    let pod_labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .unwrap_or_default();
    let matches = |selector: &BTreeMap<String, String>| {
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    let budget: PodDisruptionBudget = one("PodDisruptionBudget");
    let budget = budget.spec.expect("a spec");
    let selector = budget
        .selector
        .and_then(|s| s.match_labels)
        .unwrap_or_default();
    assert!(matches(&selector), "the budget selects the pods");
    assert!(
        budget.max_unavailable.is_some() != budget.min_available.is_some(),
        "one of maxUnavailable and minAvailable"
    );
    let service: Service = one("Service");
    let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
    assert!(matches(&selector), "the Service selects the pods");
}

/// Writes the files of the pod's projected config volume into `dir`: the ConfigMap's keys
/// and, for the Secret it only references, a tokens file of the documented shape.
fn project_config_volume(dir: &Path) {
    let config_map: ConfigMap = one("ConfigMap");
    let data = config_map.data.unwrap_or_default();
    let volumes = pod_spec().volumes.unwrap_or_default();
    let config = volumes
        .iter()
        .find(|v| v.name == "config")
        .and_then(|v| v.projected.clone())
        .expect("a projected config volume");
    for source in config.sources.unwrap_or_default() {
        if let Some(map) = source.config_map {
            assert_eq!(
                map.name,
                config_map.metadata.name.clone().unwrap_or_default()
            );
            for item in map.items.unwrap_or_default() {
                let text = data.get(&item.key).expect("the key is in the ConfigMap");
                std::fs::write(dir.join(&item.path), text).expect("writes");
            }
        }
        if let Some(secret) = source.secret {
            for item in secret.items.unwrap_or_default() {
                let tokens = "tokens:\n  - { name: ci, role: viewer, environments: [\"*\"], \
                              sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae }\n";
                std::fs::write(dir.join(&item.path), tokens).expect("writes");
            }
        }
    }
}

#[test]
fn the_deployment_runs_the_shipped_configuration_with_its_tokens_and_leader_election() {
    let container = container();
    let args = container.args.clone().unwrap_or_default();
    let config_path = args
        .iter()
        .skip_while(|a| *a != "-c")
        .nth(1)
        .expect("-c FILE");
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "config")
        .expect("the config volume is mounted");
    let file = Path::new(config_path)
        .strip_prefix(&mount.mount_path)
        .unwrap_or_else(|_| panic!("{config_path} is on the config volume"));

    let dir = tempfile::tempdir().expect("temp dir");
    project_config_volume(dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("the config file is projected");
    let config = Config::from_yaml(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    let tokens = config.server.tokens_file.clone().expect("a tokens file");
    assert!(tokens.starts_with(dir.path()), "{}", tokens.display());

    let pod_namespace = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAMESPACE")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone());
    assert_eq!(pod_namespace.as_deref(), Some("metadata.namespace"));
    let account: ServiceAccount = one("ServiceAccount");
    let binding: ClusterRoleBinding = one("ClusterRoleBinding");
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
}

/// A file of the overlay `overlay` (under deploy/kubernetes), parsed as `K`.
fn overlay_object<K: DeserializeOwned>(overlay: &str, file: &str) -> K {
    let path = repository()
        .join("deploy/kubernetes")
        .join(overlay)
        .join(file);
    serde_json::from_value(yaml(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that every manifest of `overlay` outside its `examples/` folder is listed in its
/// kustomization, as a resource or a patch.
fn assert_overlay_lists_its_files(overlay: &str) {
    let dir = repository().join("deploy/kubernetes").join(overlay);
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let listed: Vec<String> = ["resources", "patches"]
        .iter()
        .flat_map(|key| kustomization[*key].as_array().cloned().unwrap_or_default())
        .map(|entry| {
            entry["path"]
                .as_str()
                .or(entry.as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    let files: Vec<String> = yaml_files(&dir)
        .iter()
        .filter(|p| !is_kustomization(p))
        .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .filter(|p| !p.starts_with("examples/") || listed.contains(p))
        .collect();
    for file in &files {
        assert!(
            listed.contains(file),
            "{overlay}/{file} is not in the kustomization: {listed:?}"
        );
    }
}

/// The configuration a ConfigMap patch carries, validated as curfew loads it (with an empty
/// tokens file beside it).
fn config_of(config_map: ConfigMap) -> Config {
    assert_eq!(
        config_map.metadata.name,
        one::<ConfigMap>("ConfigMap").metadata.name,
        "patches the base's ConfigMap"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("curfew.yaml");
    std::fs::write(&path, &config_map.data.unwrap()["curfew.yaml"]).unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), "tokens: []\n").unwrap();
    Config::from_yaml(&std::fs::read_to_string(&path).unwrap(), &path)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_sso_overlay_puts_oauth2_proxy_in_the_pod_and_curfew_trusts_only_its_loopback() {
    assert_overlay_lists_its_files("sso");
    let sidecar: Deployment = overlay_object("sso", "oauth2-proxy-sidecar.yaml");
    let base: Deployment = one("Deployment");
    assert_eq!(
        sidecar.metadata.name, base.metadata.name,
        "patches the base's Deployment"
    );
    let proxy = &sidecar.spec.unwrap().template.spec.unwrap().containers[0];
    let args = proxy.args.clone().unwrap_or_default();
    for flag in [
        "--upstream=http://127.0.0.1:8080/",
        "--pass-user-headers=true",
        "--set-xauthrequest=true",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing in {args:?}");
    }

    let config = config_of(overlay_object("sso", "configmap.yaml"));
    let sso = config.server.auth.proxy.expect("server.auth.proxy");
    assert!(sso.trusts("127.0.0.1".parse().unwrap()));
    assert!(
        !sso.trusts("10.42.0.7".parse().unwrap()),
        "pods elsewhere are not trusted"
    );
    assert_eq!(
        (
            sso.user_header.as_str(),
            sso.email_header.as_str(),
            sso.groups_header.as_str()
        ),
        (
            "x-forwarded-user",
            "x-forwarded-email",
            "x-forwarded-groups"
        ),
        "the headers oauth2-proxy passes with --pass-user-headers"
    );
}

#[test]
fn the_wake_overlay_opens_the_gateway_port_and_the_ingress_examples_reach_it() {
    assert_overlay_lists_its_files("wake");
    let config = config_of(overlay_object("wake", "configmap.yaml"));
    assert_eq!(config.server.wake_listen.port(), 8081);
    let wake = config.environments["staging"]
        .wake
        .clone()
        .expect("staging wakes on request");
    assert!(wake.auto && wake.namespaces == ["staging-shop"], "{wake:?}");

    let patch: Deployment = overlay_object("wake", "deployment-wake.yaml");
    let container = &patch.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(container.name, container_name());
    let port = container.ports.clone().unwrap_or_default();
    assert!(
        port.iter()
            .any(|p| p.name.as_deref() == Some("wake") && p.container_port == 8081),
        "{port:?}"
    );
    let service: Service = overlay_object("wake", "service-wake.yaml");
    let target = service.spec.unwrap().ports.unwrap()[0].target_port.clone();
    assert_eq!(
        target,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("wake".into()))
    );

    // ingress-nginx: the default backend is the ExternalName Service for curfew's gateway.
    let ingress = yaml(&repository().join("deploy/kubernetes/wake/examples/ingress-nginx.yaml"));
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/default-backend"],
        "curfew-wake"
    );
    assert!(
        annotations["nginx.ingress.kubernetes.io/custom-http-errors"]
            .as_str()
            .is_some_and(|codes| codes.contains("503"))
    );
    let local: Service = overlay_object("wake", "examples/wake-service.yaml");
    assert_eq!(
        local.metadata.namespace,
        ingress["metadata"]["namespace"].as_str().map(String::from)
    );
    assert_eq!(
        local.spec.and_then(|s| s.external_name).as_deref(),
        Some("curfew-wake.curfew.svc.cluster.local")
    );
    let host = ingress["spec"]["rules"][0]["host"]
        .as_str()
        .unwrap_or_default();
    assert!(
        wake.hosts.iter().any(|h| h == host),
        "{host} is a wake host"
    );

    // Traefik: the Ingress names the middleware in curfew's namespace.
    let traefik = yaml(&repository().join("deploy/kubernetes/wake/examples/traefik-ingress.yaml"));
    assert_eq!(
        traefik["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"],
        "curfew-curfew-wake@kubernetescrd"
    );
}

/// The container name of the base's Deployment.
fn container_name() -> String {
    container().name
}

/// A Traefik errors middleware that sends a sleeping environment's 502-504 to the wake
/// gateway's Service, with the original URL where curfew reads it.
fn check_traefik_middleware(file: &Path, middleware: &Value) {
    let at = file.display();
    let errors = &middleware["spec"]["errors"];
    assert_eq!(middleware["metadata"]["namespace"], "curfew", "{at}");
    assert!(
        errors["status"]
            .as_array()
            .is_some_and(|codes| codes.iter().any(|c| c == "502-504")),
        "{at}: 502-504"
    );
    assert_eq!(errors["query"], "/.curfew/error?url={url}", "{at}");
    let service: Service = overlay_object("wake", "service-wake.yaml");
    assert_eq!(
        errors["service"]["name"].as_str(),
        service.metadata.name.as_deref(),
        "{at}"
    );
    assert_eq!(errors["service"]["port"], 80, "{at}");
    let keys: Vec<&String> = middleware.as_object().unwrap().keys().collect();
    for key in keys {
        assert!(
            ["apiVersion", "kind", "metadata", "spec"].contains(&key.as_str()),
            "{at}: unknown field {key}"
        );
    }
}

// === the Dockerfile ===

/// The Dockerfile's lines that are neither blank nor comments, trimmed.
fn dockerfile_instructions(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_image_is_built_in_stages_carries_current_zone_data_and_runs_as_the_pods_non_root_user() {
    let text = std::fs::read_to_string(repository().join("deploy/Dockerfile")).expect("reads");
    let instructions = dockerfile_instructions(&text);
    let stages = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "a build stage and a runtime stage");
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    let runtime = &instructions[last_from..];
    assert!(
        runtime.iter().any(|l| l.starts_with("COPY --from=")),
        "the runtime stage copies the binary from the build stage"
    );
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets a USER");
    let uid: i64 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("USER {user} is numeric"));
    assert!(uid > 0, "USER {user} is not root");
    let pod_user = pod_spec().security_context.and_then(|s| s.run_as_user);
    assert_eq!(pod_user, Some(uid), "the pod runs as the image's user");
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("ENTRYPOINT") && l.contains("curfew")),
        "the entrypoint is curfew"
    );
    assert!(
        instructions[..last_from]
            .iter()
            .any(|l| l.contains("apt-get install") && l.contains("tzdata")),
        "the build installs the current tz database"
    );
    assert!(
        runtime.iter().any(|l| l.starts_with("COPY --from=")
            && l.ends_with("/usr/share/zoneinfo /usr/share/zoneinfo")),
        "the runtime image carries it where curfew looks for it"
    );
}

#[test]
fn the_docker_build_context_carries_every_input_of_the_build() {
    let ignore = std::fs::read_to_string(repository().join("deploy/Dockerfile.dockerignore"))
        .expect("reads");
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    assert!(
        ignore.lines().any(|l| l.trim() == "*"),
        "everything else stays out"
    );
    // What `cargo build` reads: the manifest and lock file, the build script, the sources,
    // the benchmarks the manifest names, and the schedules the binary embeds.
    let inputs = [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "benches",
        "schedules",
        "deploy/dependency-stubs.sh",
    ];
    for input in inputs {
        assert!(
            repository().join(input).exists(),
            "{input} is in the repository"
        );
        assert!(allowed.contains(&input), "{input} is sent to the build");
    }
}

#[test]
fn the_image_compiles_the_dependencies_in_a_layer_before_the_sources_are_copied() {
    let text = std::fs::read_to_string(repository().join("deploy/Dockerfile")).expect("reads");
    let instructions = dockerfile_instructions(&text);
    let position = |wanted: &dyn Fn(&str) -> bool, what: &str| {
        instructions
            .iter()
            .position(|l| wanted(l))
            .unwrap_or_else(|| panic!("the Dockerfile has {what}"))
    };
    let manifests = position(
        &|l| l == "COPY Cargo.toml Cargo.lock build.rs ./",
        "a COPY of the manifests alone",
    );
    let dependencies = position(
        &|l| l.starts_with("RUN dependency-stubs.sh"),
        "a RUN that builds on stand-in sources",
    );
    let sources = position(&|l| l == "COPY . .", "a COPY of the sources");
    assert!(
        manifests < dependencies && dependencies < sources,
        "manifests, then the dependencies, then the sources: {instructions:?}"
    );
    let stage = &instructions[dependencies..sources];
    assert!(
        stage
            .iter()
            .any(|l| l.contains("target/release/.fingerprint/curfew-*")),
        "the stand-in curfew is forgotten, so the real one is built"
    );

    // The stand-ins satisfy the manifest: cargo finds every target it names.
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        std::fs::copy(repository().join(file), dir.path().join(file)).expect("copies");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // Cargo runs on the real clock: under `tests/faked-hours` libfaketime would stall it.
    let probe = |dir: &Path| {
        Command::new(&cargo)
            .args(["build", "--offline", "--release", "--bin", "no-such-binary"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .output()
            .expect("runs cargo")
    };
    let without = probe(dir.path());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("can't find"),
        "without stand-ins the manifest's targets are missing: {}",
        String::from_utf8_lossy(&without.stderr)
    );
    let status = Command::new("sh")
        .arg(repository().join("deploy/dependency-stubs.sh"))
        .current_dir(dir.path())
        .status()
        .expect("runs the script");
    assert!(status.success());
    let with = probe(dir.path());
    let stderr = String::from_utf8_lossy(&with.stderr);
    assert!(
        stderr.contains("no bin target named `no-such-binary`") && !stderr.contains("can't find"),
        "with stand-ins cargo reads the manifest and knows every target: {stderr}"
    );
}
