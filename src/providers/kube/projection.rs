//! [`Projected`]: the few fields of a Deployment, StatefulSet or CronJob that curfew reads,
//! deserialized straight from the API server's JSON, so the watch caches keep a few hundred
//! bytes per object instead of the whole typed object.
//!
//! A projection keeps the metadata curfew and the watch read (name, namespace, uid,
//! resourceVersion, creationTimestamp), the labels and the annotations curfew reads (its own
//! and kube-downscaler's, never the last-applied configuration) in lists of their exact size
//! beside the metadata rather than in maps within it, `spec.replicas`, `spec.suspend`, the
//! pod template's requests summed over its containers, and `status.readyReplicas`.
//! Everything else (`managedFields`, the pod template, probes, environment) is skipped while
//! parsing and never allocated for long.
//! `Projected<K>` has the group, version, kind and plural of `K`, so `Api` and watchers
//! treat it as `K`. The watch caches keep it as a [`Cached`]: the same fields with the
//! metadata in strings of their exact size instead of an [`ObjectMeta`], most of whose
//! third of a kilobyte is fields curfew never reads.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{annotations, quantity};
use crate::config::selector::Labels;

/// The annotation `kubectl apply` keeps a whole copy of the object in; never read by curfew.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The fields curfew reads of an object of kind `K` (a workload with a pod template or a
/// CronJob).
#[derive(Deserialize)]
#[serde(bound = "", from = "Parsed")]
pub struct Projected<K> {
    /// Its metadata, reduced to what curfew reads; its labels and annotations are beside it.
    pub metadata: ObjectMeta,
    /// Its labels.
    pub labels: CompactMap,
    /// The annotations curfew reads.
    pub annotations: CompactMap,
    /// Its spec, reduced to what curfew reads.
    pub spec: Spec,
    /// Its status, reduced to what curfew reads.
    pub status: Status,
    kind: PhantomData<fn() -> K>,
}

/// A projection as a watch cache keeps it.
pub struct Cached<K> {
    /// The metadata curfew reads.
    pub identity: Identity,
    /// Its labels.
    pub labels: CompactMap,
    /// The annotations curfew reads.
    pub annotations: CompactMap,
    /// Its spec, reduced to what curfew reads.
    pub spec: Spec,
    /// Its status, reduced to what curfew reads.
    pub status: Status,
    kind: PhantomData<fn() -> K>,
}

/// The metadata curfew reads of a cached object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `metadata.namespace`, empty when unset.
    pub namespace: Box<str>,
    /// `metadata.name`, empty when unset.
    pub name: Box<str>,
    /// `metadata.uid`.
    pub uid: Option<Box<str>>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<Box<str>>,
    /// `metadata.creationTimestamp`.
    pub creation_timestamp: Option<Time>,
}

/// A projection as parsed, its labels and annotations not yet set beside its metadata.
#[derive(Deserialize)]
struct Parsed {
    #[serde(default, deserialize_with = "metadata")]
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: Status,
}

/// Metadata as parsed: the [`ObjectMeta`] without labels and annotations, then those.
type Metadata = (ObjectMeta, CompactMap, CompactMap);

/// A map of strings in a list of its exact size, sorted by key: a cached workload's four
/// labels or one annotation keep their strings and a pointer pair each, instead of a map's
/// node of about half a kilobyte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactMap(Box<[(Box<str>, Box<str>)]>);

/// What curfew reads of a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Spec {
    /// `spec.replicas` (Deployments, StatefulSets), absent when unset.
    pub replicas: Option<i32>,
    /// `spec.suspend` (CronJobs), absent when unset.
    pub suspend: Option<bool>,
    /// The requests of one pod of `spec.template`.
    #[serde(rename = "template")]
    pub requests: PodRequests,
}

/// What curfew reads of a status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    /// `status.readyReplicas`, absent when unset.
    pub ready_replicas: Option<i32>,
}

/// The requests of one pod: the sum over its containers. Deserializes from a pod template
/// (`{"spec": {"containers": [...]}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodRequests {
    /// CPU, in millicores.
    pub cpu_millis: u32,
    /// Memory, in MiB.
    pub memory_mib: u32,
}

/// The metadata fields curfew and the watch read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataFields {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    creation_timestamp: Option<Time>,
    labels: Option<CompactMap>,
    #[serde(default, deserialize_with = "read_annotations")]
    annotations: CompactMap,
}

/// A pod template, down to the containers' requests.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TemplateFields {
    spec: Option<PodFields>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PodFields {
    containers: Vec<ContainerFields>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ContainerFields {
    resources: Option<ResourceFields>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ResourceFields {
    requests: Option<BTreeMap<String, Quantity>>,
}

/// Reads the metadata fields curfew uses into an [`ObjectMeta`] without labels and
/// annotations, its labels, and the annotations curfew reads.
fn metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Metadata, D::Error> {
    let fields = MetadataFields::deserialize(deserializer)?;
    let metadata = ObjectMeta {
        name: fields.name,
        namespace: fields.namespace,
        uid: fields.uid,
        resource_version: fields.resource_version,
        creation_timestamp: fields.creation_timestamp,
        ..ObjectMeta::default()
    };
    Ok((
        metadata,
        fields.labels.unwrap_or_default(),
        fields.annotations,
    ))
}

/// Reads the annotations curfew reads on a workload ([`annotations::read_on_workloads`]) and
/// skips the others without keeping their values: the last-applied configuration, often
/// kilobytes of escaped JSON, is never unescaped into a string.
fn read_annotations<'de, D: Deserializer<'de>>(deserializer: D) -> Result<CompactMap, D::Error> {
    struct Annotations;

    impl<'de> Visitor<'de> for Annotations {
        type Value = CompactMap;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a map of annotations")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(CompactMap::default())
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(CompactMap::default())
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if annotations::read_on_workloads(&key) {
                    kept.insert(key, map.next_value::<String>()?);
                } else {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
            Ok(CompactMap::from(kept))
        }
    }

    deserializer.deserialize_option(Annotations)
}

// === impl Projected ===

impl<K> From<Parsed> for Projected<K> {
    fn from(parsed: Parsed) -> Self {
        let (metadata, labels, annotations) = parsed.metadata;
        Projected {
            metadata,
            labels,
            annotations,
            spec: parsed.spec,
            status: parsed.status,
            kind: PhantomData,
        }
    }
}

impl<K> Clone for Projected<K> {
    fn clone(&self) -> Self {
        Projected {
            metadata: self.metadata.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            spec: self.spec.clone(),
            status: self.status.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: k8s_openapi::Resource> fmt::Debug for Projected<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::KIND)
            .field("metadata", &self.metadata)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("spec", &self.spec)
            .field("status", &self.status)
            .finish()
    }
}

impl<K: k8s_openapi::Resource> k8s_openapi::Resource for Projected<K> {
    const API_VERSION: &'static str = K::API_VERSION;
    const GROUP: &'static str = K::GROUP;
    const KIND: &'static str = K::KIND;
    const VERSION: &'static str = K::VERSION;
    const URL_PATH_SEGMENT: &'static str = K::URL_PATH_SEGMENT;
    type Scope = K::Scope;
}

impl<K: k8s_openapi::Resource> k8s_openapi::Metadata for Projected<K> {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

// === impl Cached ===

impl<K> From<Projected<K>> for Cached<K> {
    fn from(projected: Projected<K>) -> Self {
        Cached {
            identity: Identity::of(projected.metadata),
            labels: projected.labels,
            annotations: projected.annotations,
            spec: projected.spec,
            status: projected.status,
            kind: PhantomData,
        }
    }
}

// === impl Identity ===

impl Identity {
    /// The fields of `metadata` curfew reads.
    pub fn of(metadata: ObjectMeta) -> Self {
        let boxed = |text: Option<String>| text.map(String::into_boxed_str);
        Identity {
            namespace: metadata.namespace.unwrap_or_default().into_boxed_str(),
            name: metadata.name.unwrap_or_default().into_boxed_str(),
            uid: boxed(metadata.uid),
            resource_version: boxed(metadata.resource_version),
            creation_timestamp: metadata.creation_timestamp,
        }
    }
}

// === impl CompactMap ===

impl CompactMap {
    /// The entries as a map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
}

impl Labels for CompactMap {
    fn label(&self, key: &str) -> Option<&str> {
        let index = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[index].1)
    }
}

impl<'de> Deserialize<'de> for CompactMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(CompactMap::from)
    }
}

impl From<BTreeMap<String, String>> for CompactMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        CompactMap(
            map.into_iter()
                .map(|(key, value)| (key.into_boxed_str(), value.into_boxed_str()))
                .collect(),
        )
    }
}

// === impl PodRequests ===

impl PodRequests {
    /// The requests of a pod template given as JSON (a custom resource's `spec.template`);
    /// zero when it is not one.
    pub fn of_template(template: &serde_json::Value) -> Self {
        PodRequests::deserialize(template).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for PodRequests {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let template = TemplateFields::deserialize(deserializer)?;
        let containers = template.spec.into_iter().flat_map(|spec| spec.containers);
        let mut sum = PodRequests::default();
        for requests in containers.filter_map(|c| c.resources?.requests) {
            let read = |key: &str, parse: fn(&str) -> Option<u32>| {
                requests.get(key).and_then(|q| parse(&q.0)).unwrap_or(0)
            };
            sum.cpu_millis = sum
                .cpu_millis
                .saturating_add(read("cpu", quantity::cpu_millis));
            sum.memory_mib = sum
                .memory_mib
                .saturating_add(read("memory", quantity::memory_mib));
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_projection_keeps_what_curfew_reads_and_drops_the_rest() {
        let projected: Projected<Deployment> = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                "creationTimestamp": "2026-11-01T10:00:00Z", "generation": 3,
                "labels": {"app": "web"},
                "annotations": {LAST_APPLIED: "{\"big\": true}", "curfew.dev/exclude": "true",
                                "deployment.kubernetes.io/revision": "7", "downscaler/exclude": "false"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {
                "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "web:1", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                    {"name": "sidecar", "resources": {"requests": {"cpu": "0.1", "memory": "64Mi"}}},
                    {"name": "bare"},
                ]}},
            },
            "status": {"readyReplicas": 2, "replicas": 3},
        }))
        .expect("a valid Deployment");
        let meta = &projected.metadata;
        assert_eq!(meta.name.as_deref(), Some("web"));
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
        assert_eq!(meta.uid.as_deref(), Some("u-1"));
        assert_eq!(meta.resource_version.as_deref(), Some("42"));
        assert!(meta.creation_timestamp.is_some());
        assert_eq!((&meta.labels, &meta.annotations), (&None, &None));
        assert_eq!(
            projected.labels.to_map(),
            BTreeMap::from([("app".into(), "web".into())])
        );
        assert_eq!(projected.labels.label("app"), Some("web"));
        assert_eq!(projected.labels.label("tier"), None);
        assert_eq!(
            projected.annotations.to_map(),
            BTreeMap::from([
                ("curfew.dev/exclude".into(), "true".into()),
                ("downscaler/exclude".into(), "false".into()),
            ])
        );
        assert_eq!(
            (meta.managed_fields.as_ref(), meta.generation),
            (None, None)
        );
        assert_eq!(projected.spec.replicas, Some(3));
        assert_eq!(
            projected.spec.requests,
            PodRequests {
                cpu_millis: 350,
                memory_mib: 576
            }
        );
        assert_eq!(projected.status.ready_replicas, Some(2));

        let cached = Cached::from(projected);
        let identity = &cached.identity;
        assert_eq!((&*identity.namespace, &*identity.name), ("shop", "web"));
        assert_eq!(identity.uid.as_deref(), Some("u-1"));
        assert_eq!(identity.resource_version.as_deref(), Some("42"));
        assert!(identity.creation_timestamp.is_some());
        assert_eq!(cached.labels.label("app"), Some("web"));
        assert_eq!(cached.annotations.label("curfew.dev/exclude"), Some("true"));
        assert_eq!(cached.spec.replicas, Some(3));
        assert_eq!(cached.status.ready_replicas, Some(2));
    }

    #[test]
    fn labels_are_found_by_key_and_selectors_match_them() {
        let projected: Projected<Deployment> = serde_json::from_value(json!({"metadata": {
            "name": "web",
            "labels": {"team": "checkout", "app": "web", "tier": "front", "app.kubernetes.io/name": "web"},
        }}))
        .expect("valid");
        let labels = &projected.labels;
        for (key, value) in [
            ("app", "web"),
            ("app.kubernetes.io/name", "web"),
            ("team", "checkout"),
            ("tier", "front"),
        ] {
            assert_eq!(labels.label(key), Some(value), "{key}");
        }
        assert_eq!(labels.label("zone"), None);
        let selector = |text: &str| {
            text.parse::<crate::config::selector::LabelSelector>()
                .expect("a selector")
        };
        assert!(selector("app=web,tier in (front,back),!legacy").matches(labels));
        assert!(!selector("team!=checkout").matches(labels));
        assert!(!selector("zone").matches(labels));
    }

    #[test]
    fn a_projection_has_the_group_version_and_plural_of_its_kind() {
        use kube::Resource;
        assert_eq!(Projected::<Deployment>::kind(&()), "Deployment");
        assert_eq!(Projected::<Deployment>::api_version(&()), "apps/v1");
        assert_eq!(Projected::<Deployment>::plural(&()), "deployments");
    }

    #[test]
    fn absent_spec_and_status_read_as_unset() {
        let projected: Projected<Deployment> =
            serde_json::from_value(json!({"metadata": {"name": "web"}})).expect("valid");
        assert_eq!(projected.spec, Spec::default());
        assert_eq!(projected.status, Status::default());
    }

    #[test]
    fn annotations_curfew_does_not_read_leave_none_and_a_wrong_type_is_an_error() {
        let annotations_of = |annotations: serde_json::Value| {
            serde_json::from_value::<Projected<Deployment>>(
                json!({"metadata": {"name": "web", "annotations": annotations}}),
            )
            .map(|projected| projected.annotations)
        };
        let unread = json!({LAST_APPLIED: "{}", "deployment.kubernetes.io/revision": "7"});
        assert_eq!(
            annotations_of(unread).expect("valid"),
            CompactMap::default()
        );
        assert_eq!(
            annotations_of(json!(null)).expect("valid"),
            CompactMap::default()
        );
        assert_eq!(
            annotations_of(json!({})).expect("valid"),
            CompactMap::default()
        );
        assert!(annotations_of(json!(["curfew.dev/exclude"])).is_err());
        assert!(annotations_of(json!({"curfew.dev/exclude": 1})).is_err());
    }

    #[test]
    fn a_template_that_is_not_one_requests_nothing() {
        assert_eq!(
            PodRequests::of_template(&json!("nonsense")),
            PodRequests::default()
        );
    }
}
