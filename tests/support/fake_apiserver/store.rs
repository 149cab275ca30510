//! The fake's object store: resourceVersions, uids, generations, optimistic concurrency,
//! selectors, a bounded history of changes for watches, and a pretend controller that makes
//! `status` of Deployments and StatefulSets follow `spec.replicas`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use curfew::config::selector::LabelSelector;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::patch;
use super::resources::{self, ResourceType};

/// A failed request, rendered as a `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes reason, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human message.
    pub message: String,
}

impl ApiError {
    /// An error with `code`, `reason` and `message`.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.plural),
        )
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// What a watch event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created (or newly matching).
    Added,
    /// Changed.
    Modified,
    /// Deleted (or no longer matching).
    Deleted,
}

impl EventType {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers (shared, never copied: a
/// boundary sends thousands of changes to every watch).
#[derive(Debug)]
pub struct Record {
    /// The resourceVersion of the change.
    pub rv: u64,
    group: String,
    plural: String,
    namespace: String,
    event: EventType,
    old: Option<Arc<Value>>,
    object: Arc<Value>,
}

/// Label and field selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    labels: LabelSelector,
    fields: Vec<(String, bool, String)>,
}

impl Selection {
    /// Parses `labelSelector` and `fieldSelector` query values.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        let bad = |message: String| ApiError::new(400, "BadRequest", message);
        let labels = labels
            .unwrap_or_default()
            .parse()
            .map_err(|e: curfew::config::selector::Error| bad(e.to_string()))?;
        let mut parsed = Vec::new();
        for part in fields
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let (key, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(bad(format!("bad field selector '{part}'")));
            };
            if key != "metadata.name" && key != "metadata.namespace" {
                return Err(bad(format!("field label not supported: {key}")));
            }
            parsed.push((key.to_string(), equal, value.to_string()));
        }
        Ok(Selection {
            labels,
            fields: parsed,
        })
    }

    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        let labels: BTreeMap<String, String> = object["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        self.labels.matches(&labels)
            && self.fields.iter().all(|(key, equal, value)| {
                let field = match key.as_str() {
                    "metadata.name" => &object["metadata"]["name"],
                    _ => &object["metadata"]["namespace"],
                };
                (field.as_str().unwrap_or_default() == value) == *equal
            })
    }
}

/// Where a watch starts.
pub struct WatchStart {
    /// Events to send first.
    pub initial: Vec<(EventType, Arc<Value>)>,
    /// The resourceVersion the initial events bring the watcher to.
    pub rv: u64,
    /// Later changes (all resource types; filter with [`Store::filter`]).
    pub changes: broadcast::Receiver<Arc<Record>>,
}

/// A subresource addressed by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `/scale`.
    Scale,
    /// `/status`.
    Status,
}

/// How a request body changes an object.
pub enum Change<'a> {
    /// PUT: the body replaces the object (or the subresource).
    Replace(&'a Value),
    /// PATCH with a merge patch (merge, strategic merge and apply are treated alike).
    Merge(&'a Value),
    /// PATCH with a JSON patch.
    Json(&'a Value),
}

type Key = (String, String, String, String);

struct Inner {
    types: Vec<ResourceType>,
    /// Shared with the history and the responses: an object is copied only to be changed.
    objects: BTreeMap<Key, Arc<Value>>,
    rv: u64,
    uids: u64,
    history: VecDeque<Arc<Record>>,
    history_limit: usize,
    /// The newest resourceVersion no longer in the history.
    compacted: u64,
    now: Option<DateTime<Utc>>,
    ready_delay: Duration,
}

/// The fake's state.
pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Record>>,
}

fn key(rt: &ResourceType, namespace: &str, name: &str) -> Key {
    (
        rt.group.clone(),
        rt.plural.clone(),
        namespace.to_string(),
        name.to_string(),
    )
}

fn rv_of(object: &Value) -> Option<&str> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
}

// === impl Store ===

impl Store {
    /// An empty store serving the built-in types.
    pub fn new() -> Arc<Store> {
        let (changes, _) = broadcast::channel(100_000);
        Arc::new(Store {
            inner: Mutex::new(Inner {
                types: resources::builtins(),
                objects: BTreeMap::new(),
                rv: 1,
                uids: 0,
                history: VecDeque::new(),
                history_limit: 10_000,
                compacted: 0,
                now: None,
                ready_delay: Duration::ZERO,
            }),
            changes,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps at most `limit` changes for watches to resume from.
    pub fn set_history_limit(&self, limit: usize) {
        let mut inner = self.lock();
        inner.history_limit = limit.max(1);
        inner.compact();
    }

    /// Stamps new objects with `now` instead of the real time.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = Some(now);
    }

    /// How long replicas take to become ready after `spec.replicas` changes.
    pub fn set_ready_delay(&self, delay: Duration) {
        self.lock().ready_delay = delay;
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every served type.
    pub fn types(&self) -> Vec<ResourceType> {
        self.lock().types.clone()
    }

    /// The type served at `group/version/plural`.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.lock()
            .types
            .iter()
            .find(|rt| rt.group == group && rt.version == version && rt.plural == plural)
            .cloned()
    }

    /// One object, or its `/scale` view.
    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        sub: Option<Sub>,
    ) -> Result<Value, ApiError> {
        let inner = self.lock();
        let object = inner
            .objects
            .get(&key(rt, namespace, name))
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        Ok(match sub {
            Some(Sub::Scale) => to_scale(object),
            _ => Value::clone(object),
        })
    }

    /// The selected objects of a type, in one namespace or all, and the list's
    /// resourceVersion.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selection: &Selection,
    ) -> (Vec<Value>, u64) {
        let (items, rv, _) = self.list_page(rt, namespace, selection, None, None);
        (items.iter().map(|item| Value::clone(item)).collect(), rv)
    }

    /// One page of the selected objects of a type: up to `limit` objects after the
    /// (namespace, name) `after`, in (namespace, name) order, read from the sorted index as
    /// the API server's watch cache does (a page costs its own size, not the whole list);
    /// with the list's resourceVersion and whether more follow.
    pub fn list_page(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selection: &Selection,
        after: Option<(&str, &str)>,
        limit: Option<usize>,
    ) -> (Vec<Arc<Value>>, u64, bool) {
        use std::ops::Bound;
        let inner = self.lock();
        let start = match after {
            Some((ns, name)) => Bound::Excluded(key(rt, ns, name)),
            None => Bound::Included(key(rt, namespace.unwrap_or_default(), "")),
        };
        let mut items = Vec::new();
        let mut more = false;
        for ((g, p, ns, _), object) in inner.objects.range((start, Bound::Unbounded)) {
            if *g != rt.group || *p != rt.plural {
                break;
            }
            if namespace.is_some_and(|n| n != ns) {
                if namespace.is_some_and(|n| n < ns.as_str()) {
                    break;
                }
                continue;
            }
            if !selection.matches(object) {
                continue;
            }
            if limit.is_some_and(|limit| items.len() >= limit) {
                more = true;
                break;
            }
            items.push(Arc::clone(object));
        }
        (items, inner.rv, more)
    }

    /// Creates an object; 409 if it exists, 404 if its namespace does not.
    pub fn create(
        self: &Arc<Self>,
        rt: &ResourceType,
        namespace: &str,
        body: &Value,
    ) -> Result<Arc<Value>, ApiError> {
        let mut object = body.clone();
        let name = object["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ApiError::new(422, "Invalid", "metadata.name: Required value"))?;
        let mut inner = self.lock();
        if rt.namespaced {
            let namespaces = resources::namespaces();
            if !inner.objects.contains_key(&key(&namespaces, "", namespace)) {
                return Err(ApiError::not_found(&namespaces, namespace));
            }
        }
        let k = key(rt, namespace, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.plural),
            ));
        }
        inner.uids += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", inner.uids);
        let created = inner
            .now
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(uid);
        metadata["creationTimestamp"] = json!(created);
        metadata["generation"] = json!(1);
        if rt.namespaced {
            metadata["namespace"] = json!(namespace);
        } else if let Some(m) = metadata.as_object_mut() {
            m.remove("namespace");
        }
        let settle = inner.commit(rt, k, None, object, &self.changes);
        if rt.plural == "customresourcedefinitions" {
            let declared = resources::from_crd(body);
            inner.types.retain(|t| !declared.contains(t));
            inner.types.extend(declared);
        }
        let created = inner.objects.get(&key(rt, namespace, &name)).cloned();
        drop(inner);
        self.settle_later(settle);
        created.ok_or_else(|| ApiError::not_found(rt, &name))
    }

    /// Replaces or patches an object (or its subresource); 409 on a stale resourceVersion.
    pub fn update(
        self: &Arc<Self>,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        sub: Option<Sub>,
        change: Change<'_>,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let k = key(rt, namespace, name);
        let old = inner
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut view = match sub {
            Some(Sub::Scale) => to_scale(&old),
            _ => Value::clone(&old),
        };
        match change {
            Change::Replace(body) => view = body.clone(),
            Change::Merge(body) => patch::merge(&mut view, body),
            Change::Json(body) => {
                patch::json_patch(&mut view, body).map_err(|e| ApiError::new(422, "Invalid", e))?
            }
        }
        let current = rv_of(&old).unwrap_or_default();
        if let Some(sent) = rv_of(&view)
            && sent != current
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                     please apply your changes to the latest version and try again",
                    rt.plural
                ),
            ));
        }
        let mut new = match sub {
            Some(Sub::Scale) => {
                let mut new = Value::clone(&old);
                new["spec"]["replicas"] = view["spec"]["replicas"].take();
                new
            }
            Some(Sub::Status) => {
                let mut new = Value::clone(&old);
                new["status"] = view["status"].take();
                new
            }
            None => view,
        };
        match sub {
            Some(_) => {}
            None => {
                for field in [
                    "uid",
                    "creationTimestamp",
                    "name",
                    "namespace",
                    "generation",
                ] {
                    match old["metadata"].get(field) {
                        Some(value) => new["metadata"][field] = value.clone(),
                        None => {
                            if let Some(m) = new["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                    }
                }
                new["apiVersion"] = old["apiVersion"].clone();
                new["kind"] = old["kind"].clone();
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }
        if new["spec"] != old["spec"] {
            let generation = old["metadata"]["generation"].as_u64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        let settle = inner.commit(rt, k.clone(), Some(old), new, &self.changes);
        let updated = inner.objects.get(&k).cloned();
        drop(inner);
        self.settle_later(settle);
        let updated = updated.ok_or_else(|| ApiError::not_found(rt, name))?;
        Ok(match sub {
            Some(Sub::Scale) => Arc::new(to_scale(&updated)),
            _ => updated,
        })
    }

    /// Deletes an object.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let k = key(rt, namespace, name);
        let removed = inner
            .objects
            .remove(&k)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut object = Arc::unwrap_or_clone(removed);
        inner.rv += 1;
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        let object = Arc::new(object);
        let record = Record {
            rv: inner.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: namespace.to_string(),
            event: EventType::Deleted,
            old: None,
            object: Arc::clone(&object),
        };
        inner.record(record, &self.changes);
        Ok(Value::clone(&object))
    }

    /// Starts a watch of `rt` from `from` (`None`: from the current state, as `ADDED` events);
    /// 410 Gone when `from` is older than the retained history.
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selection: &Selection,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let changes = self.changes.subscribe();
        let initial = match from {
            None | Some(0) => inner
                .objects
                .iter()
                .filter(|((g, p, ns, _), object)| {
                    *g == rt.group
                        && *p == rt.plural
                        && namespace.is_none_or(|n| n == ns)
                        && selection.matches(object)
                })
                .map(|(_, object)| (EventType::Added, Arc::clone(object)))
                .collect(),
            Some(from) if from < inner.compacted => {
                return Err(ApiError::new(
                    410,
                    "Expired",
                    format!("too old resource version: {from} ({})", inner.compacted),
                ));
            }
            Some(from) => inner
                .history
                .iter()
                .filter(|record| record.rv > from)
                .filter_map(|record| {
                    let (event, _) = Store::filter(rt, namespace, selection, record)?;
                    Some((event, Arc::clone(&record.object)))
                })
                .collect(),
        };
        Ok(WatchStart {
            initial,
            rv: inner.rv,
            changes,
        })
    }

    /// What a watcher of `rt` in `namespace` with `selection` sees of `record`, if anything.
    pub fn filter<'r>(
        rt: &ResourceType,
        namespace: Option<&str>,
        selection: &Selection,
        record: &'r Record,
    ) -> Option<(EventType, &'r Value)> {
        if record.group != rt.group
            || record.plural != rt.plural
            || namespace.is_some_and(|n| n != record.namespace)
        {
            return None;
        }
        let now = selection.matches(&record.object);
        let before = record
            .old
            .as_ref()
            .is_some_and(|old| selection.matches(old));
        let event = match (record.event, before, now) {
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Added, _, true) | (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, true, false) => EventType::Deleted,
            _ => return None,
        };
        Some((event, &record.object))
    }

    /// After the ready delay, brings the status of a scaled workload to its replicas.
    fn settle_later(self: &Arc<Self>, settle: Option<(ResourceType, Key)>) {
        let Some((rt, k)) = settle else { return };
        let store = self.clone();
        let delay = self.lock().ready_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut inner = store.lock();
            let Some(old) = inner.objects.get(&k).cloned() else {
                return;
            };
            let mut new = Value::clone(&old);
            set_status(&mut new);
            if new != *old {
                inner.commit(&rt, k, Some(old), new, &store.changes);
            }
        });
    }
}

// === impl Inner ===

impl Inner {
    /// Stores `object` under a new resourceVersion and records the change; returns what to
    /// settle later when replicas become ready after a delay.
    fn commit(
        &mut self,
        rt: &ResourceType,
        k: Key,
        old: Option<Arc<Value>>,
        mut object: Value,
        changes: &broadcast::Sender<Arc<Record>>,
    ) -> Option<(ResourceType, Key)> {
        let mut settle = None;
        if rt.has_replica_controller() {
            if self.ready_delay.is_zero() {
                set_status(&mut object);
            } else if old.as_ref().map(|o| &o["spec"]["replicas"])
                != Some(&object["spec"]["replicas"])
            {
                settle = Some((rt.clone(), k.clone()));
            }
        }
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let object = Arc::new(object);
        let record = Record {
            rv: self.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: k.2.clone(),
            event: if old.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            old,
            object: Arc::clone(&object),
        };
        self.objects.insert(k, object);
        self.record(record, changes);
        settle
    }

    fn record(&mut self, record: Record, changes: &broadcast::Sender<Arc<Record>>) {
        let record = Arc::new(record);
        self.history.push_back(record.clone());
        self.compact();
        // No receivers is fine: nobody watches.
        let _ = changes.send(record);
    }

    fn compact(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
    }
}

/// The status a Deployment or StatefulSet controller reports once all replicas are ready.
fn set_status(object: &mut Value) {
    let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
    let generation = object["metadata"]["generation"].clone();
    let mut status = json!({"replicas": replicas, "observedGeneration": generation});
    if replicas > 0 {
        status["readyReplicas"] = json!(replicas);
        status["availableReplicas"] = json!(replicas);
        status["updatedReplicas"] = json!(replicas);
    }
    object["status"] = status;
}

/// The `autoscaling/v1` Scale view of an object.
fn to_scale(object: &Value) -> Value {
    let metadata = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_u64().unwrap_or(1)},
        "status": {"replicas": object["status"]["replicas"].as_u64().unwrap_or(0), "selector": ""},
    })
}
