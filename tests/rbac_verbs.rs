//! The RBAC rules in deploy/kubernetes/base grant exactly what curfew requests: every
//! scenario below runs a real code path against a fresh fake API server, which records each
//! request as the API server's authorizer sees it (group, resource/subresource, verb,
//! namespace, name). The union of those is compared with the rules of the roles bound to
//! curfew's service account: a request no rule allows fails the test, and so does a granted
//! (group, resource, verb) that no scenario uses.
//!
//! To cover a new code path, add a `Scenario` to `SCENARIOS`: a name and an async function
//! that drives the path on the harness it is given (its own fake API server; the namespace
//! `curfew` exists, and curfew's own objects such as the Lease live there; the configuration is
//! `OFFICE_HOURS`, selecting `shop` and `team-*`). Assert in it that
//! the path did its work, so that a scenario cannot pass by doing nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fake_apiserver::{Access, FakeApiServer, Fault, Verb};
use crate::support::fixtures::{
    annotated, crd, cron_job, deployment, hpa, namespace, override_crd, rollout, scaled_object,
    stateful_set,
};
use crate::support::kube::{
    ALWAYS_DOWN, KubeHarness, MONDAY_NIGHT, OFFICE_HOURS, TUESDAY_MORNING, log_of, replica,
    terminate, utc, wait_for_holder,
};
use curfew::audit::{AuditEntry, AuditLog};
use curfew::overrides::{KubeOverrideStore, OverrideStore, conformance};
use curfew::state::{ConfigMapStore, DocumentStore};
use futures::future::BoxFuture;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The service account curfew runs as.
const ACCOUNT: (&str, &str) = ("curfew", "curfew");

/// One code path of curfew that talks to Kubernetes.
struct Scenario {
    /// What it does, for failure messages.
    name: &'static str,
    /// Drives the path against the harness's fake API server.
    run: for<'a> fn(&'a KubeHarness) -> BoxFuture<'a, ()>,
}

/// Every code path that talks to Kubernetes. Extend this table when adding one.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "the provider starts: a list and a watch per kind",
        run: |h| Box::pin(provider_starts(h)),
    },
    Scenario {
        name: "a night and a morning over every kind, with Events",
        run: |h| Box::pin(night_and_morning_over_every_kind(h)),
    },
    Scenario {
        name: "a night and a morning over HPAs, KEDA ScaledObjects and Argo Rollouts",
        run: |h| Box::pin(night_and_morning_over_autoscalers_and_rollouts(h)),
    },
    Scenario {
        name: "a failed write leaves a ScaleFailed Event",
        run: |h| Box::pin(failed_write_leaves_an_event(h)),
    },
    Scenario {
        name: "leader election: create, renew, wait, release",
        run: |h| Box::pin(leader_election(h)),
    },
    Scenario {
        name: "the binary as a replica in the cluster: leads, reconciles, releases on SIGTERM",
        run: |h| Box::pin(replica_in_the_cluster(h)),
    },
    Scenario {
        name: "the Kubernetes state backend: Override resources and the audit ConfigMap",
        run: |h| Box::pin(kubernetes_state_backend(h)),
    },
];

// === scenarios ===

/// Waits until the fake has seen `count` requests with `verb` (watches open after their lists).
async fn wait_for(h: &KubeHarness, verb: Verb, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.server.count(verb) < count {
        assert!(
            Instant::now() < deadline,
            "{count} {verb:?} requests expected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn provider_starts(h: &KubeHarness) {
    h.add([namespace("team-a"), deployment("team-a", "web", 2)]);
    let _provider = h.provider().await;
    wait_for(h, Verb::Watch, 4).await;
}

async fn night_and_morning_over_every_kind(h: &KubeHarness) {
    h.add([
        namespace("team-a"),
        deployment("team-a", "web", 2),
        stateful_set("team-a", "db", 1),
        cron_job("team-a", "report"),
    ]);
    let provider = h.provider().await;
    let reconciler = h.reconciler(provider.clone());
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(h.events("ScaledDown"), 3);
    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    assert_eq!(h.events("ScaledUp"), 3);
}

async fn night_and_morning_over_autoscalers_and_rollouts(h: &KubeHarness) {
    h.add([
        crd("keda.sh", "scaledobjects", "ScaledObject"),
        crd("argoproj.io", "rollouts", "Rollout"),
    ]);
    h.add([
        namespace("team-a"),
        annotated(
            deployment("team-a", "web", 4),
            &[("curfew.dev/down-replicas", "1")],
        ),
        hpa("team-a", "web", "web", 3),
        deployment("team-a", "worker", 2),
        scaled_object("team-a", "worker", "worker"),
        rollout("team-a", "canary", 2),
    ]);
    let provider = h.provider().await;
    let reconciler = h.reconciler(provider);
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(
        h.events("ScaledDown"),
        4,
        "web, its HPA, the ScaledObject, the Rollout"
    );
    h.pass_at(&reconciler, TUESDAY_MORNING).await;
    assert_eq!(h.events("ScaledUp"), 4);
}

async fn failed_write_leaves_an_event(h: &KubeHarness) {
    h.add([namespace("team-a"), deployment("team-a", "web", 2)]);
    let provider = h.provider().await;
    let reconciler = h.reconciler(provider);
    h.server
        .inject(Some(Verb::Patch), Fault::ServerError, Some(1));
    h.pass_at(&reconciler, MONDAY_NIGHT).await;
    assert_eq!(h.events("ScaleFailed"), 1);
}

async fn leader_election(h: &KubeHarness) {
    use curfew::leadership::{LeaderElector, LeaseSettings};
    let elector =
        |identity| LeaderElector::new(h.server.client(), LeaseSettings::new(ACCOUNT.0, identity));
    let (a, b) = (elector("a"), elector("b"));
    let t0 = utc(MONDAY_NIGHT);
    assert!(a.try_acquire(t0).await.expect("creates"));
    assert!(
        a.try_acquire(t0 + chrono::Duration::seconds(5))
            .await
            .expect("renews")
    );
    assert!(!b.try_acquire(t0).await.expect("waits"));
    a.release().await.expect("releases");
    assert!(b.try_acquire(t0).await.expect("takes over"));
}

async fn replica_in_the_cluster(h: &KubeHarness) {
    h.add([namespace("shop"), deployment("shop", "web", 2)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).expect("writes");
    let config = dir.path().join("staging.yaml");
    std::fs::write(&config, ALWAYS_DOWN).expect("writes");
    let state = dir.path().join("a");
    let child = replica("replica-a", MONDAY_NIGHT, &config, &kubeconfig, &state);
    let holder = wait_for_holder(h, Some("replica-a"), Duration::from_secs(20)).await;
    assert!(holder.is_some(), "{}", log_of(&state));
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.replicas("deployments", "shop", "web").0 != 0 {
        assert!(Instant::now() < deadline, "{}", log_of(&state));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = terminate(child).await;
    assert!(status.success(), "{status:?}: {}", log_of(&state));
    assert_eq!(wait_for_holder(h, None, Duration::from_secs(5)).await, None);
}

async fn kubernetes_state_backend(h: &KubeHarness) {
    h.add([override_crd()]);
    let client = h.server.client();
    conformance::check_store(&|| {
        Arc::new(KubeOverrideStore::start(
            client.clone(),
            ACCOUNT.0,
            Arc::new(Notify::new()),
        )) as Arc<dyn OverrideStore>
    })
    .await;
    let documents: Arc<dyn DocumentStore> = Arc::new(ConfigMapStore::new(client, ACCOUNT.0));
    let log = AuditLog::load(documents.clone()).await.expect("loads");
    for n in 0..2 {
        let entry = AuditEntry {
            at: utc(MONDAY_NIGHT) + chrono::Duration::seconds(n),
            actor: "otto".into(),
            event: "override_created".into(),
            environment: "staging".into(),
            target: Some(format!("override/{n}")),
            before: None,
            after: None,
            reason: "release rehearsal".into(),
            result: "ok".into(),
        };
        log.record([entry]).await.expect("records");
    }
    let reloaded = AuditLog::load(documents).await.expect("loads");
    assert_eq!(reloaded.len(), 2, "created, then replaced");
}

/// Every resource access of every scenario, each scenario on its own fake API server, and the
/// non-resource paths they requested.
async fn recorded() -> (BTreeSet<Access>, BTreeSet<String>) {
    let mut accesses = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for scenario in SCENARIOS {
        let h = KubeHarness::start(OFFICE_HOURS, MONDAY_NIGHT).await;
        h.add([namespace(ACCOUNT.0)]);
        (scenario.run)(&h).await;
        let seen = h.server.accesses();
        assert!(!seen.is_empty(), "{}: no request recorded", scenario.name);
        accesses.extend(seen);
        paths.extend(h.server.non_resource_paths());
    }
    (accesses, paths)
}

// === the rules ===

/// One granted (group, resource, verb), limited to a namespace and to names as its rule is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    group: String,
    resource: String,
    verb: String,
    /// `None`: cluster-wide (a ClusterRole bound by a ClusterRoleBinding).
    namespace: Option<String>,
    /// Empty: every name.
    names: Vec<String>,
    /// The role and rule it comes from.
    from: String,
}

impl Grant {
    fn allows(&self, access: &Access) -> bool {
        self.group == access.group
            && self.resource == access.resource
            && self.verb == access.verb
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| access.namespace.as_ref() == Some(ns))
            && (self.names.is_empty()
                || access.name.as_ref().is_some_and(|n| self.names.contains(n)))
    }
}

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/base")
}

/// The objects of `kind` in the base.
fn objects<K: serde::de::DeserializeOwned>(kind: &str) -> Vec<K> {
    let kustomization: Value = read(&base().join("kustomization.yaml"));
    kustomization["resources"]
        .as_array()
        .expect("resources listed")
        .iter()
        .map(|file| read::<Value>(&base().join(file.as_str().expect("a file name"))))
        .filter(|object| object["kind"] == kind)
        .map(|object| serde_json::from_value(object).unwrap_or_else(|e| panic!("{kind}: {e}")))
        .collect()
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn binds_the_account(subjects: Option<&Vec<k8s_openapi::api::rbac::v1::Subject>>) -> bool {
    subjects.into_iter().flatten().any(|s| {
        s.kind == "ServiceAccount"
            && s.name == ACCOUNT.1
            && s.namespace.as_deref() == Some(ACCOUNT.0)
    })
}

fn expand(rules: &[PolicyRule], namespace: Option<&str>, role: &str) -> Vec<Grant> {
    let mut grants = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        assert!(
            rule.non_resource_urls.is_none(),
            "{role}: curfew needs no non-resource URL beyond the default discovery role"
        );
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        for value in groups.iter().chain(&resources).chain(&rule.verbs) {
            assert_ne!(value, "*", "{role}: no wildcards in a least-privilege role");
        }
        for group in &groups {
            for resource in &resources {
                for verb in &rule.verbs {
                    grants.push(Grant {
                        group: group.clone(),
                        resource: resource.clone(),
                        verb: verb.clone(),
                        namespace: namespace.map(str::to_string),
                        names: rule.resource_names.clone().unwrap_or_default(),
                        from: format!("{role} rule {index}"),
                    });
                }
            }
        }
    }
    grants
}

/// Every grant the roles bound to curfew's service account make.
fn grants() -> Vec<Grant> {
    let cluster_roles: Vec<ClusterRole> = objects("ClusterRole");
    let roles: Vec<Role> = objects("Role");
    let cluster_role = |name: &str| {
        cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("the ClusterRole {name} is in the base"))
    };
    let mut grants = Vec::new();
    for binding in objects::<ClusterRoleBinding>("ClusterRoleBinding") {
        if binds_the_account(binding.subjects.as_ref()) {
            let role = cluster_role(&binding.role_ref.name);
            let rules = role.rules.clone().unwrap_or_default();
            grants.extend(expand(&rules, None, &binding.role_ref.name));
        }
    }
    for binding in objects::<RoleBinding>("RoleBinding") {
        if !binds_the_account(binding.subjects.as_ref()) {
            continue;
        }
        let namespace = binding.metadata.namespace.clone().expect("a namespace");
        let name = &binding.role_ref.name;
        let rules = match binding.role_ref.kind.as_str() {
            "ClusterRole" => cluster_role(name).rules.clone(),
            _ => roles
                .iter()
                .find(|r| {
                    r.metadata.name.as_ref() == Some(name)
                        && r.metadata.namespace.as_ref() == Some(&namespace)
                })
                .unwrap_or_else(|| panic!("the Role {namespace}/{name} is in the base"))
                .rules
                .clone(),
        };
        let role = format!("{namespace}/{name}");
        grants.extend(expand(&rules.unwrap_or_default(), Some(&namespace), &role));
    }
    grants
}

/// Discovery and version paths, which every authenticated client may read through the
/// default `system:discovery` and `system:public-info-viewer` ClusterRoles.
fn is_default_discovery(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ["/api", "/apis", "/version", "/openapi"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_grant_exactly_the_verbs_curfew_uses() {
    let grants = grants();
    assert!(!grants.is_empty(), "the base grants something");
    let (accesses, paths) = recorded().await;

    let denied: Vec<String> = accesses
        .iter()
        .filter(|a| !grants.iter().any(|g| g.allows(a)))
        .map(Access::to_string)
        .collect();
    let unused: Vec<String> = grants
        .iter()
        .filter(|g| !accesses.iter().any(|a| g.allows(a)))
        .map(|g| format!("{} {}/{} ({})", g.verb, g.group, g.resource, g.from))
        .collect();
    assert!(
        denied.is_empty() && unused.is_empty(),
        "curfew makes requests no rule allows:\n  {}\nthe roles grant what curfew never requests:\n  {}",
        denied.join("\n  "),
        unused.join("\n  ")
    );
    let outside: Vec<&String> = paths.iter().filter(|p| !is_default_discovery(p)).collect();
    assert!(outside.is_empty(), "non-resource requests: {outside:?}");
}

// === the recorder ===

#[tokio::test]
async fn the_fake_records_each_request_as_the_authorizer_sees_it() {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = FakeApiServer::start().await;
    server.add(namespace("shop"));
    server.add(deployment("shop", "web", 2));
    let api: Api<Deployment> = Api::namespaced(server.client(), "shop");
    let all: Api<Deployment> = Api::all(server.client());
    let web = api.get("web").await.expect("gets");
    api.list(&ListParams::default()).await.expect("lists");
    let named = ListParams::default().fields("metadata.name=web");
    all.list(&named).await.expect("lists by name");
    let params = WatchParams::default().timeout(1);
    drop(api.watch(&params, "0").await.expect("watches"));
    let mut copy = deployment("shop", "copy", 1);
    copy["metadata"]["namespace"] = json!("shop");
    let copy: Deployment = serde_json::from_value(copy).expect("a Deployment");
    api.create(&PostParams::default(), &copy)
        .await
        .expect("creates");
    api.replace("web", &PostParams::default(), &web)
        .await
        .expect("updates");
    let patch = Patch::Merge(json!({"spec": {"replicas": 1}}));
    api.patch("web", &PatchParams::default(), &patch)
        .await
        .expect("patches");
    api.patch_scale("web", &PatchParams::default(), &patch)
        .await
        .expect("scales");
    api.delete("copy", &DeleteParams::default())
        .await
        .expect("deletes");
    server.client().apiserver_version().await.expect("version");

    let access =
        |verb: &'static str, resource: &str, namespace: Option<&str>, name: Option<&str>| Access {
            group: "apps".to_string(),
            resource: resource.to_string(),
            verb,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
        };
    let expected: BTreeSet<Access> = [
        access("get", "deployments", Some("shop"), Some("web")),
        access("list", "deployments", Some("shop"), None),
        access("list", "deployments", None, Some("web")),
        access("watch", "deployments", Some("shop"), None),
        access("create", "deployments", Some("shop"), None),
        access("update", "deployments", Some("shop"), Some("web")),
        access("patch", "deployments", Some("shop"), Some("web")),
        access("patch", "deployments/scale", Some("shop"), Some("web")),
        access("delete", "deployments", Some("shop"), Some("copy")),
    ]
    .into_iter()
    .collect();
    assert_eq!(server.accesses(), expected);
    assert_eq!(
        server.non_resource_paths(),
        BTreeSet::from(["/version".to_string()])
    );
}
