//! [`KubeProvider`]: Deployments, StatefulSets and CronJobs observed through watch caches
//! and scaled with merge patches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use indexmap::IndexMap;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Error;
use super::annotations::{self, Annotations};
use super::autoscalers::{self, Autoscalers, WorkloadRef};
use super::calendars::{self, CalendarAnnotations, Layer};
use super::event_queue::{EventQueue, QueueSettings};
use super::events::{EventBuilder, Reason};
use super::limiter::Limiter;
use super::projection::{Cached, LAST_APPLIED, Projected};
use super::selection::{NamespaceMatch, Selection};
use super::watch_cache::{self, WatchCache};
use super::workloads::{self, ObjectId, Observed};
use crate::calendar::Schedule;
use crate::clock::Clock;
use crate::config::selector::Labels;
use crate::config::{Config, KubernetesConfig, WriteRate};
use crate::domain::{Action, Kind, Target, TargetCalendar, TargetRules};
use crate::providers::{self, Discovery, Provider, Undiscovered};
use crate::telemetry;

/// Knobs of the Kubernetes provider.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A client-side cap on writes per second; `None` leaves pacing to the API server.
    pub rate: Option<WriteRate>,
    /// Scale writes in flight at once.
    pub concurrency: usize,
    /// How long the initial list of every watch may take at start-up.
    pub sync_timeout: Duration,
    /// How long one write may take.
    pub write_timeout: Duration,
    /// Whether to write Events on scaled workloads.
    pub events: bool,
    /// Events written per second.
    pub event_qps: f64,
    /// Events waiting to be written at most.
    pub event_queue: usize,
}

/// How long the initial list of every watch may take at start-up.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one write may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

impl Settings {
    /// The settings of the configuration's `kubernetes` section.
    pub fn from_config(config: &KubernetesConfig) -> Self {
        Settings {
            rate: config.rate,
            concurrency: config.concurrency,
            sync_timeout: SYNC_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            events: config.events,
            event_qps: config.event_qps,
            event_queue: config.event_queue,
        }
    }
}

impl Default for Settings {
    /// The settings of a configuration without a `kubernetes` section.
    fn default() -> Self {
        Settings::from_config(&KubernetesConfig::default())
    }
}

/// A [`Provider`] over a Kubernetes cluster.
pub struct KubeProvider {
    client: Client,
    selections: Vec<Selection>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    namespaces: WatchCache<Namespace>,
    deployments: WatchCache<Cached<Deployment>>,
    stateful_sets: WatchCache<Cached<StatefulSet>>,
    cron_jobs: WatchCache<Cached<CronJob>>,
    hpas: WatchCache<HorizontalPodAutoscaler>,
    /// KEDA ScaledObjects, when their CRD exists.
    scaled_objects: Option<CustomKind>,
    /// Argo Rollouts, when their CRD exists.
    rollouts: Option<CustomKind>,
    /// The client-side token bucket for writes, when configured.
    limiter: Option<Limiter>,
    /// Scale writes in flight.
    in_flight: Semaphore,
    events: EventBuilder,
    /// Events waiting to be written, apart from scale writes.
    event_queue: EventQueue,
    /// The resourceVersion each target had when curfew last changed it: until the watch
    /// shows another, it has not seen that write. Versions are opaque strings, compared for
    /// equality only.
    written_over: Mutex<HashMap<String, String>>,
    /// Problems already reported, so each is reported once.
    reported: Mutex<HashSet<String>>,
    /// The configuration's schedules by name.
    schedules: IndexMap<String, Schedule>,
    /// Compiled calendars by environment and calendar annotations.
    calendars: Mutex<HashMap<(String, CalendarAnnotations), CompiledCalendar>>,
    watches: Watches,
}

/// KEDA's ScaledObject, watched when its CRD exists.
const KEDA_SCALED_OBJECT: (&str, &str, &str) = ("keda.sh", "v1alpha1", "ScaledObject");
/// Argo Rollouts' Rollout, watched when its CRD exists.
const ARGO_ROLLOUT: (&str, &str, &str) = ("argoproj.io", "v1alpha1", "Rollout");

/// A calendar compiled from annotations, or why it could not be.
type CompiledCalendar = Result<Arc<TargetCalendar>, annotations::Error>;

/// Compiled calendars kept at most; the cache starts over beyond (annotation values churn
/// rarely, so this is only a bound).
const CALENDAR_CACHE_LIMIT: usize = 4096;

/// What one pass of discovery found: targets, and objects left alone with the reason.
#[derive(Default)]
struct Found {
    targets: Vec<Target>,
    problems: Vec<(Observed, annotations::Error)>,
}

/// A custom resource watched as dynamic objects (its CRD exists).
struct CustomKind {
    resource: ApiResource,
    store: WatchCache<DynamicObject>,
}

/// A watched workload as its cache holds it.
enum Workload {
    Deployment(Arc<Cached<Deployment>>),
    StatefulSet(Arc<Cached<StatefulSet>>),
    CronJob(Arc<Cached<CronJob>>),
    Rollout(Arc<DynamicObject>),
}

impl Workload {
    fn namespace(&self) -> &str {
        match self {
            Workload::Deployment(d) => &d.identity.namespace,
            Workload::StatefulSet(s) => &s.identity.namespace,
            Workload::CronJob(c) => &c.identity.namespace,
            Workload::Rollout(r) => r.metadata.namespace.as_deref().unwrap_or_default(),
        }
    }

    fn labels(&self) -> &dyn Labels {
        /// The labels of a Rollout without any.
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        match self {
            Workload::Deployment(d) => &d.labels,
            Workload::StatefulSet(s) => &s.labels,
            Workload::CronJob(c) => &c.labels,
            Workload::Rollout(r) => r.metadata.labels.as_ref().unwrap_or(&NONE),
        }
    }

    fn observe(&self) -> Observed {
        match self {
            Workload::Deployment(d) => Observed::from_deployment(d),
            Workload::StatefulSet(s) => Observed::from_stateful_set(s),
            Workload::CronJob(c) => Observed::from_cron_job(c),
            Workload::Rollout(r) => Observed::from_rollout(r),
        }
    }
}

/// Drops what curfew never reads before the watch cache keeps an object: `managedFields` and
/// the last-applied configuration, together often half of a stored object.
fn slim<K: Resource>(object: &mut K) {
    let metadata = object.meta_mut();
    metadata.managed_fields = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The watches in the background, and whether each holds a complete list.
#[derive(Default)]
struct Watches {
    tasks: Vec<JoinHandle<()>>,
    /// Per watched kind: why its cache is not a complete list now, if it is not.
    unsynced: Vec<Unsynced>,
}

/// Why a watch's cache is not a complete list (`None`: it is). Set when the watch has to list
/// again (its list failed, or the API server no longer has its resourceVersion), cleared
/// when the new list is complete. A watch that merely reconnects resumes from its
/// resourceVersion and stays synced.
type Unsynced = Arc<Mutex<Option<providers::Error>>>;

impl Watches {
    /// Starts a watch over `api` in the background and returns the cache it fills, which
    /// keeps each object as a `V`.
    fn watch<K, V>(&mut self, api: Api<K>) -> WatchCache<V>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default,
        V: From<K> + Send + Sync + 'static,
    {
        self.watch_kind(api, &K::DynamicType::default())
    }

    /// Starts a watch over `api` for objects of type `dyntype` in the background and returns
    /// the cache it fills, which keeps each object as a `V`.
    fn watch_kind<K, V>(&mut self, api: Api<K>, dyntype: &K::DynamicType) -> WatchCache<V>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        V: From<K> + Send + Sync + 'static,
    {
        let kind = K::kind(dyntype).to_string();
        let (cache, mut writer) = watch_cache::cache();
        let events = watcher(api, watcher::Config::default())
            .modify(slim::<K>)
            .default_backoff();
        let unsynced = Unsynced::default();
        self.unsynced.push(unsynced.clone());
        self.tasks.push(tokio::spawn(async move {
            events
                .for_each(|event| {
                    match event {
                        Ok(event) => {
                            let listed = matches!(event, watcher::Event::InitDone);
                            writer.apply(event);
                            if listed {
                                *unsynced.lock() = None;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(kind = %kind, %error, "watch failed; retrying");
                            if let Some(lost) = relisting(&kind, &error) {
                                *unsynced.lock() = Some(lost);
                            }
                        }
                    }
                    futures::future::ready(())
                })
                .await;
        }));
        cache
    }

    /// The first reason a watch's cache is incomplete, if one is.
    fn unsynced(&self) -> Option<providers::Error> {
        self.unsynced.iter().find_map(|u| u.lock().clone())
    }
}

/// The error of a watch that has to list its objects again, as a provider error naming the
/// list; `None` for a failure the watch resumes from.
fn relisting(kind: &str, error: &watcher::Error) -> Option<providers::Error> {
    let operation = format!("list {kind}");
    match error {
        watcher::Error::InitialListFailed(error) => Some(provider_error(&operation, "*", error)),
        watcher::Error::WatchError(status) if status.code == 410 => {
            Some(providers::Error::Server {
                operation,
                target: "*".to_string(),
                code: "410 Gone".to_string(),
                detail: status.message.clone(),
            })
        }
        watcher::Error::NoResourceVersion => Some(providers::Error::Server {
            operation,
            target: "*".to_string(),
            code: "NoResourceVersion".to_string(),
            detail: error.to_string(),
        }),
        _ => None,
    }
}

/// The provider error for a failed call to the API server.
pub fn provider_error(operation: &str, target: &str, error: &kube::Error) -> providers::Error {
    let operation = operation.to_string();
    let target = target.to_string();
    match error {
        kube::Error::Api(status) => {
            let detail = status.message.clone();
            match status.code {
                409 => providers::Error::Conflict {
                    operation,
                    target,
                    detail,
                },
                429 => providers::Error::Throttled {
                    operation,
                    target,
                    detail,
                    retry_after: status
                        .details
                        .as_ref()
                        .map(|d| d.retry_after_seconds)
                        .filter(|seconds| *seconds > 0)
                        .map(|seconds| Duration::from_secs(seconds.into())),
                },
                404 => providers::Error::NotFound { operation, target },
                408 | 504 => providers::Error::Timeout { operation, target },
                code @ 500..=599 => providers::Error::Server {
                    operation,
                    target,
                    code: code.to_string(),
                    detail,
                },
                code => providers::Error::Permanent {
                    operation,
                    target,
                    code: format!("{code} {}", status.reason),
                    detail,
                },
            }
        }
        kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) | kube::Error::HttpError(_) => {
            providers::Error::Permanent {
                operation,
                target,
                code: "client".to_string(),
                detail: error.to_string(),
            }
        }
        other => providers::Error::Server {
            operation,
            target,
            code: "transport".to_string(),
            detail: other.to_string(),
        },
    }
}

/// Watches the custom resource `group/version` `kind` when the API server serves it; a
/// missing CRD is normal and only logged.
async fn custom_kind(
    client: &Client,
    (group, version, kind): (&str, &str, &str),
    watches: &mut Watches,
) -> Result<Option<CustomKind>, Error> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    match discovery::pinned_kind(client, &gvk).await {
        Ok((resource, _)) => {
            let api = Api::all_with(client.clone(), &resource);
            let store = watches.watch_kind::<DynamicObject, _>(api, &resource);
            tracing::info!(%group, %version, %kind, "custom resource found: watching it");
            Ok(Some(CustomKind { resource, store }))
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            tracing::info!(%group, %version, %kind, "custom resource not installed: not watched");
            Ok(None)
        }
        Err(kube::Error::Discovery(_)) => {
            tracing::info!(%group, %version, %kind, "custom resource not installed: not watched");
            Ok(None)
        }
        Err(error) => Err(Error::Client(error)),
    }
}

/// Waits until `cache` has its initial list, at the latest until `deadline`.
async fn synced<V>(
    cache: &WatchCache<V>,
    deadline: tokio::time::Instant,
    resource: &'static str,
    seconds: u64,
) -> Result<(), Error> {
    tokio::time::timeout_at(deadline, cache.ready())
        .await
        .map_err(|_| Error::Sync { resource, seconds })
}

/// The object `id` names in `cache`.
fn lookup<V>(cache: &WatchCache<V>, id: &ObjectId) -> Option<Arc<V>> {
    cache.get(&id.namespace, &id.name)
}

/// The object `namespace/name` in the cache of a custom kind, if that kind is watched.
fn lookup_custom(
    custom: Option<&CustomKind>,
    namespace: &str,
    name: &str,
) -> Option<Arc<DynamicObject>> {
    custom?.store.get(namespace, name)
}

/// Merge-patches the namespaced object `name` and returns its new resourceVersion.
async fn merge_patch<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    patch: &serde_json::Value,
) -> kube::Result<Option<String>>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let patched = api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(patched.meta().resource_version.clone())
}

fn describe(action: &Action) -> (Reason, String) {
    match action {
        Action::ScaleDown { original, to, .. } => (
            Reason::ScaledDown,
            format!(
                "scaled from {original} to {to}; original stored in {}",
                annotations::ORIGINAL_REPLICAS
            ),
        ),
        Action::ScaleUp { to, .. } => (Reason::ScaledUp, format!("restored {to}")),
    }
}

// === impl KubeProvider ===

impl KubeProvider {
    /// Starts watching namespaces, Deployments, StatefulSets and CronJobs in the whole cluster
    /// and returns once every watch has listed its objects.
    pub async fn start(
        client: Client,
        config: &Config,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Result<KubeProvider, Error> {
        let selections = Selection::from_config(config);
        let event_queue = EventQueue::start(
            client.clone(),
            QueueSettings {
                qps: settings.event_qps,
                capacity: settings.event_queue,
                write_timeout: settings.write_timeout,
            },
        );
        let mut watches = Watches::default();
        let provider = KubeProvider {
            namespaces: watches.watch::<Namespace, _>(Api::all(client.clone())),
            deployments: watches.watch::<Projected<Deployment>, _>(Api::all(client.clone())),
            stateful_sets: watches.watch::<Projected<StatefulSet>, _>(Api::all(client.clone())),
            cron_jobs: watches.watch::<Projected<CronJob>, _>(Api::all(client.clone())),
            hpas: watches.watch::<HorizontalPodAutoscaler, _>(Api::all(client.clone())),
            scaled_objects: custom_kind(&client, KEDA_SCALED_OBJECT, &mut watches).await?,
            rollouts: custom_kind(&client, ARGO_ROLLOUT, &mut watches).await?,
            client,
            selections,
            clock,
            settings,
            limiter: settings.rate.map(|rate| Limiter::new(rate.qps, rate.burst)),
            in_flight: Semaphore::new(settings.concurrency.max(1)),
            events: EventBuilder::default(),
            event_queue,
            written_over: Mutex::default(),
            reported: Mutex::default(),
            schedules: config.schedules.clone(),
            calendars: Mutex::default(),
            watches,
        };
        let deadline = tokio::time::Instant::now() + settings.sync_timeout;
        let seconds = settings.sync_timeout.as_secs();
        synced(&provider.namespaces, deadline, "namespaces", seconds).await?;
        synced(&provider.deployments, deadline, "deployments", seconds).await?;
        synced(&provider.stateful_sets, deadline, "statefulsets", seconds).await?;
        synced(&provider.cron_jobs, deadline, "cronjobs", seconds).await?;
        synced(
            &provider.hpas,
            deadline,
            "horizontalpodautoscalers",
            seconds,
        )
        .await?;
        if let Some(custom) = &provider.scaled_objects {
            synced(&custom.store, deadline, "scaledobjects", seconds).await?;
        }
        if let Some(custom) = &provider.rollouts {
            synced(&custom.store, deadline, "rollouts", seconds).await?;
        }
        Ok(provider)
    }

    /// The object a target id names, as the watches last saw it.
    fn observed(&self, id: &ObjectId) -> Option<Observed> {
        match id.kind {
            Kind::Deployment => {
                lookup(&self.deployments, id).map(|d| Observed::from_deployment(&d))
            }
            Kind::StatefulSet => {
                lookup(&self.stateful_sets, id).map(|s| Observed::from_stateful_set(&s))
            }
            Kind::CronJob => lookup(&self.cron_jobs, id).map(|c| Observed::from_cron_job(&c)),
            Kind::HorizontalPodAutoscaler => lookup(&self.hpas, id).map(|h| Observed::from_hpa(&h)),
            Kind::Rollout => lookup_custom(self.rollouts.as_ref(), &id.namespace, &id.name)
                .map(|r| Observed::from_rollout(&r)),
            Kind::ScaledObject => {
                let object = lookup_custom(self.scaled_objects.as_ref(), &id.namespace, &id.name)?;
                let workload = WorkloadRef::of_scaled_object(&object)
                    .and_then(|reference| self.steered(&reference));
                Observed::from_scaled_object(&object, workload.as_ref()).ok()
            }
            _ => None,
        }
    }

    /// The workload a scale target reference names, as the watches last saw it.
    fn steered(&self, reference: &WorkloadRef) -> Option<Observed> {
        let kind = match reference.kind.as_str() {
            "Deployment" => Kind::Deployment,
            "StatefulSet" => Kind::StatefulSet,
            "Rollout" => Kind::Rollout,
            _ => return None,
        };
        self.observed(&ObjectId {
            kind,
            namespace: reference.namespace.clone(),
            name: reference.name.clone(),
        })
    }

    /// Adds the targets for a selected workload's `target` to `found`: the workload and its
    /// HPA, or the ScaledObject that stands in for it. Unusable annotations go to `problems`.
    fn with_autoscalers(
        &self,
        object: &Observed,
        target: Target,
        autoscalers: &Autoscalers,
        found: &mut Found,
    ) {
        if let Some(scaled) = autoscalers.scaled_object(object) {
            let scaled = match Observed::from_scaled_object(scaled, Some(object)) {
                Ok(scaled) => scaled,
                Err(problem) => return found.problems.push((object.clone(), problem)),
            };
            match autoscalers::scaled_object_target(&scaled, target) {
                Ok(target) => found.targets.push(target),
                Err(problem) => found.problems.push((scaled, problem)),
            }
            return;
        }
        let hpa = autoscalers.hpa(object).map(|hpa| Observed::from_hpa(hpa));
        if let Some(hpa) = hpa {
            match autoscalers::hpa_target(&hpa, &target) {
                Ok(steering) => found.targets.extend(steering),
                Err(problem) => found.problems.push((hpa, problem)),
            }
        }
        found.targets.push(target);
    }

    /// Every watched workload, unconverted.
    fn all_workloads(&self) -> Vec<Workload> {
        let deployments = self
            .deployments
            .state()
            .into_iter()
            .map(Workload::Deployment);
        let stateful_sets = self
            .stateful_sets
            .state()
            .into_iter()
            .map(Workload::StatefulSet);
        let cron_jobs = self.cron_jobs.state().into_iter().map(Workload::CronJob);
        let rollouts = self
            .rollouts
            .iter()
            .flat_map(|custom| custom.store.state())
            .map(Workload::Rollout);
        deployments
            .chain(stateful_sets)
            .chain(cron_jobs)
            .chain(rollouts)
            .collect()
    }

    /// The target for `object` in `selection`, `None` when it is excluded.
    fn target(
        &self,
        object: &Observed,
        namespace: &Annotations,
        selection: &Selection,
        configured_exclusion: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Target>, annotations::Error> {
        let layers = [&object.annotations, namespace];
        if annotations::excluded(&layers, configured_exclusion, now)? {
            return Ok(None);
        }
        let down = annotations::down_replicas(&layers, selection.down_replicas)?;
        let mut target = object.to_target(&selection.environment, down)?;
        target.rules = TargetRules {
            calendar: self.calendar(object, namespace, selection)?,
            grace_period: selection.grace_period,
            ..TargetRules::default()
        };
        Ok(Some(target))
    }

    /// The object's own calendar from its and its namespace's annotations, `None` when the
    /// environment's schedule decides it.
    fn calendar(
        &self,
        object: &Observed,
        namespace: &Annotations,
        selection: &Selection,
    ) -> Result<Option<Arc<TargetCalendar>>, annotations::Error> {
        if !calendars::mentioned(&[&object.annotations, namespace]) {
            return Ok(None);
        }
        let workload = format!(
            "{} {}/{}",
            object.kind.as_str(),
            object.namespace,
            object.name
        );
        let namespace_name = format!("namespace {}", object.namespace);
        let found = CalendarAnnotations::find(&[
            Layer {
                annotations: &object.annotations,
                object: &workload,
            },
            Layer {
                annotations: namespace,
                object: &namespace_name,
            },
        ]);
        if found.is_empty() {
            return Ok(None);
        }
        let key = (selection.environment.clone(), found);
        let mut cache = self.calendars.lock();
        if let Some(compiled) = cache.get(&key) {
            return compiled.clone().map(Some);
        }
        let Some(environment) = self.schedules.get(&selection.schedule) else {
            return Ok(None);
        };
        let compiled = key.1.compile(environment, &self.schedules).map(Arc::new);
        if cache.len() >= CALENDAR_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        compiled.map(Some)
    }

    /// Reports a problem with an object once (until it changes): a log line, a metric and a
    /// Warning Event on the object.
    fn report(&self, object: &Observed, problem: &annotations::Error) {
        let id = object.id();
        let key = format!("{id}: {problem}");
        if !self.reported.lock().insert(key) {
            return;
        }
        tracing::warn!(target = %id, %problem, "left alone: unusable annotation");
        metrics::counter!(telemetry::KUBE_ANNOTATION_ERRORS, "annotation" => problem.key)
            .increment(1);
        self.publish(
            object,
            Reason::InvalidAnnotation,
            format!("left alone: {problem}"),
        );
    }

    /// Queues an Event about `object`; never waits for it to be written.
    fn publish(&self, object: &Observed, reason: Reason, message: String) {
        if !self.settings.events {
            return;
        }
        let event = self.events.build(object, reason, message, self.clock.now());
        self.event_queue.push(event);
    }

    /// Waits until the queued Events are written, at most `timeout`; the rest are dropped
    /// and counted. Returns how many were dropped.
    pub async fn flush_events(&self, timeout: Duration) -> usize {
        self.event_queue.flush(timeout).await
    }

    /// Remembers that the write to `target` changed it from version `before` to `after`, so
    /// that readiness waits until the watch has seen it.
    fn remember_write(&self, target: &str, before: Option<&String>, after: Option<String>) {
        let mut written_over = self.written_over.lock();
        match before {
            // A write that changed nothing keeps the version: there is nothing to wait for.
            Some(before) if after.as_ref() != Some(before) => {
                written_over.insert(target.to_string(), before.clone());
            }
            _ => {
                written_over.remove(target);
            }
        }
    }

    async fn write(
        &self,
        id: &ObjectId,
        patch: &serde_json::Value,
    ) -> kube::Result<Option<String>> {
        let (client, ns, name) = (&self.client, id.namespace.as_str(), id.name.as_str());
        let custom = |custom: &Option<CustomKind>| custom.as_ref().map(|c| c.resource.clone());
        match id.kind {
            Kind::StatefulSet => merge_patch::<StatefulSet>(client, ns, name, patch).await,
            Kind::CronJob => merge_patch::<CronJob>(client, ns, name, patch).await,
            Kind::HorizontalPodAutoscaler => {
                merge_patch::<HorizontalPodAutoscaler>(client, ns, name, patch).await
            }
            Kind::ScaledObject | Kind::Rollout => {
                let resource = if id.kind == Kind::Rollout {
                    custom(&self.rollouts)
                } else {
                    custom(&self.scaled_objects)
                };
                let Some(resource) = resource else {
                    return Ok(None);
                };
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
                let patched = api
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                Ok(patched.metadata.resource_version)
            }
            _ => merge_patch::<Deployment>(client, ns, name, patch).await,
        }
    }
}

impl Drop for KubeProvider {
    fn drop(&mut self) {
        for watch in &self.watches.tasks {
            watch.abort();
        }
    }
}

#[async_trait]
impl Provider for KubeProvider {
    fn name(&self) -> &'static str {
        "kube"
    }

    /// Reads the watch caches; never calls the API server. While a watch lists its objects
    /// again, its cache is not a complete list: every selection is reported undiscovered.
    async fn discover(&self) -> providers::Result<Discovery> {
        if let Some(error) = self.watches.unsynced() {
            return Ok(Discovery {
                targets: Vec::new(),
                undiscovered: self
                    .selections
                    .iter()
                    .map(|selection| Undiscovered {
                        environment: selection.environment.clone(),
                        selection: selection.description.clone(),
                        error: error.clone(),
                    })
                    .collect(),
            });
        }
        let now = self.clock.now();
        let namespaces = self.namespaces.state();
        let workloads = self.all_workloads();
        let autoscalers = Autoscalers::new(
            self.hpas.state(),
            self.scaled_objects
                .as_ref()
                .map(|custom| custom.store.state())
                .unwrap_or_default(),
        );
        let empty = BTreeMap::new();
        let mut claimed = HashSet::new();
        // Most watched workloads are usually selected: room for all of them at once, rather
        // than growing (and copying) a list of 10,000 targets several times.
        let mut pass = Found {
            targets: Vec::with_capacity(workloads.len()),
            problems: Vec::new(),
        };
        for selection in &self.selections {
            // Namespace matches once per namespace, not once per workload.
            let selected: HashMap<&str, (NamespaceMatch, &Annotations)> = namespaces
                .iter()
                .filter_map(|ns| {
                    let name = ns.metadata.name.as_deref()?;
                    let labels = ns.metadata.labels.as_ref().unwrap_or(&empty);
                    let found = selection.namespace(name, labels);
                    let annotations = ns.metadata.annotations.as_ref().unwrap_or(&empty);
                    (found != NamespaceMatch::No).then_some((name, (found, annotations)))
                })
                .collect();
            for workload in &workloads {
                let Some((found, annotations)) = selected.get(workload.namespace()) else {
                    continue;
                };
                if !selection.workload(workload.labels()) {
                    continue;
                }
                let object = workload.observe();
                let id = object.id();
                if !claimed.insert(id.clone()) {
                    continue;
                }
                let configured_exclusion = *found == NamespaceMatch::Excluded;
                match self.target(&object, annotations, selection, configured_exclusion, now) {
                    Ok(Some(target)) => {
                        self.with_autoscalers(&object, target, &autoscalers, &mut pass)
                    }
                    Ok(None) => {}
                    Err(problem) => pass.problems.push((object, problem)),
                }
            }
        }
        for (object, problem) in &pass.problems {
            self.report(object, problem);
        }
        let mut targets = pass.targets;
        targets.shrink_to_fit();
        targets.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Ok(Discovery::complete(targets))
    }

    /// One merge patch with the watched resourceVersion as precondition: a 409 means the
    /// object changed since it was observed, and the next pass decides again.
    async fn apply(&self, action: &Action) -> providers::Result<()> {
        let target = action.target();
        let not_found = || providers::Error::NotFound {
            operation: "apply".to_string(),
            target: target.to_string(),
        };
        let id = workloads::parse_id(target).ok_or_else(not_found)?;
        let capacities = match action {
            Action::ScaleDown { original, to, .. } => vec![*original, *to],
            Action::ScaleUp { to, .. } => vec![*to],
        };
        if let Some(wrong) = capacities.iter().find(|c| !workloads::fits(id.kind, **c)) {
            return Err(providers::Error::Permanent {
                operation: "apply".to_string(),
                target: target.to_string(),
                code: "ValidationError".to_string(),
                detail: format!("a {} cannot have capacity {wrong}", id.kind.as_str()),
            });
        }
        let object = self.observed(&id).ok_or_else(not_found)?;
        let Some(patch) = object.patch_for(action) else {
            return Ok(());
        };
        let _permit = self.in_flight.acquire().await;
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let result = match tokio::time::timeout(
            self.settings.write_timeout,
            self.write(&id, &patch),
        )
        .await
        {
            Ok(result) => result.map_err(|error| provider_error("apply", target, &error)),
            Err(_) => Err(providers::Error::Timeout {
                operation: "apply".to_string(),
                target: target.to_string(),
            }),
        };
        match result {
            Ok(version) => {
                self.remember_write(target, object.resource_version.as_ref(), version);
                let (reason, message) = describe(action);
                self.publish(&object, reason, message);
                Ok(())
            }
            Err(error) => {
                if !matches!(error, providers::Error::Conflict { .. }) {
                    self.publish(&object, Reason::ScaleFailed, error.to_string());
                }
                Err(error)
            }
        }
    }

    /// Writes the queued Events, at most for `timeout`.
    async fn settle(&self, timeout: Duration) {
        self.flush_events(timeout).await;
    }

    /// The merge patch [`Provider::apply`] would send, from the watch cache.
    fn preview(&self, action: &Action) -> Vec<providers::PlannedWrite> {
        let Some(id) = workloads::parse_id(action.target()) else {
            return Vec::new();
        };
        let Some(patch) = self
            .observed(&id)
            .and_then(|object| object.patch_for(action))
        else {
            return Vec::new();
        };
        let (api_version, kind) = workloads::api_version_and_kind(id.kind);
        vec![providers::PlannedWrite {
            call: format!(
                "PATCH {api_version} {kind} {}/{} (merge patch)",
                id.namespace, id.name
            ),
            body: patch,
        }]
    }

    /// Ready once the watch has seen curfew's last write and all replicas are ready.
    async fn ready(&self, target: &str) -> providers::Result<bool> {
        let not_found = || providers::Error::NotFound {
            operation: "ready".to_string(),
            target: target.to_string(),
        };
        let id = workloads::parse_id(target).ok_or_else(not_found)?;
        let object = self.observed(&id).ok_or_else(not_found)?;
        {
            let mut written_over = self.written_over.lock();
            if let Some(before) = written_over.get(target) {
                if object.resource_version.as_ref() == Some(before) {
                    return Ok(false);
                }
                written_over.remove(target);
            }
        }
        Ok(object.ready())
    }
}
