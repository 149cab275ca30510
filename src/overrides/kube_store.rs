//! Overrides as `Override` resources in one namespace, shared by every replica.
//!
//! One watch (a reflector) keeps a cached copy: `list` reads it without an API call, and
//! every change another replica (or `kubectl`) makes wakes the reconciler at once through
//! the trigger given at start. Writes go to the API server and then wait (briefly) until the
//! cache shows them, so a caller reads its own writes. A replace carries the resourceVersion
//! read, and a conflict is read and retried.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::resource::{OverrideResource, OverrideSpec};
use super::{Error, OverrideStore, Result};
use crate::domain::Override;
use crate::state::versioned::{Attempt, retry_conflicts};

/// How long `list` waits for the first complete list of the resources.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write waits for the cache to show it.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a write looks whether the cache shows it.
const SETTLE_POLL: Duration = Duration::from_millis(10);
/// Attempts of a write that keeps meeting conflicts.
const ATTEMPTS: usize = 5;

/// An [`OverrideStore`] keeping overrides as `Override` resources in a namespace.
pub struct KubeOverrideStore {
    api: Api<OverrideResource>,
    namespace: String,
    cache: Store<OverrideResource>,
    watch: JoinHandle<()>,
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// The override a resource holds; its name is the id, so an unnamed object holds none.
fn to_override(object: &OverrideResource) -> Option<Override> {
    Some(object.spec.to_override(object.metadata.name.as_deref()?))
}

// === impl KubeOverrideStore ===

impl KubeOverrideStore {
    /// Starts watching the overrides in `namespace`; every change notifies `on_change`.
    /// Must be called within a Tokio runtime.
    pub fn start(client: kube::Client, namespace: &str, on_change: Arc<Notify>) -> Self {
        let api: Api<OverrideResource> = Api::namespaced(client, namespace);
        let (cache, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()))
            .default_backoff();
        let watch = tokio::spawn(async move {
            stream
                .for_each(|event| {
                    match event {
                        // A relist (after a watch expired) delivers what changed as
                        // `InitApply`; its end is a change too.
                        Ok(
                            watcher::Event::Apply(_)
                            | watcher::Event::Delete(_)
                            | watcher::Event::InitDone,
                        ) => {
                            on_change.notify_one();
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "override watch failed; retrying"),
                    }
                    futures::future::ready(())
                })
                .await;
        });
        KubeOverrideStore {
            api,
            namespace: namespace.to_string(),
            cache,
            watch,
        }
    }

    /// The overrides in `namespace`, listed once without a watch: for commands that only look.
    pub async fn read(client: kube::Client, namespace: &str) -> Result<Vec<Override>> {
        let api: Api<OverrideResource> = Api::namespaced(client, namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::Kubernetes {
                operation: "list",
                namespace: namespace.to_string(),
                source,
            })?;
        Ok(list.items.iter().filter_map(to_override).collect())
    }

    fn error(&self, operation: &'static str, source: kube::Error) -> Error {
        Error::Kubernetes {
            operation,
            namespace: self.namespace.clone(),
            source,
        }
    }

    async fn synced(&self) -> Result<()> {
        match tokio::time::timeout(SYNC_TIMEOUT, self.cache.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Error::Sync {
                namespace: self.namespace.clone(),
                seconds: SYNC_TIMEOUT.as_secs(),
            }),
        }
    }

    fn cached(&self, name: &str) -> Option<Arc<OverrideResource>> {
        self.cache
            .get(&ObjectRef::new(name).within(&self.namespace))
    }

    /// Waits until the cache shows `name` with `spec` (or without `name` when `None`). Gives
    /// up quietly after a while: the write itself has succeeded.
    async fn settle(&self, name: &str, spec: Option<&OverrideSpec>) {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            let cached = self.cached(name);
            if cached.as_ref().map(|object| &object.spec) == spec {
                return;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        tracing::debug!(name, "the override cache did not show a write in time");
    }

    fn resource(&self, item: &Override, resource_version: Option<String>) -> OverrideResource {
        let mut resource = OverrideResource::new(&item.id, OverrideSpec::from(item));
        resource.metadata = ObjectMeta {
            name: Some(item.id.clone()),
            namespace: Some(self.namespace.clone()),
            resource_version,
            labels: Some(
                [
                    ("app.kubernetes.io/name", "curfew"),
                    ("curfew.dev/environment", item.environment.as_str()),
                ]
                .into_iter()
                .filter(|(_, value)| is_label_value(value))
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            ),
            ..ObjectMeta::default()
        };
        resource
    }
}

/// Whether `value` may be a label value (environment names usually are).
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl Drop for KubeOverrideStore {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

#[async_trait]
impl OverrideStore for KubeOverrideStore {
    async fn list(&self) -> Result<Vec<Override>> {
        self.synced().await?;
        Ok(self
            .cache
            .state()
            .iter()
            .filter_map(|object| to_override(object))
            .collect())
    }

    async fn put(&self, item: Override) -> Result<()> {
        let params = PostParams::default();
        let written = retry_conflicts(ATTEMPTS, (), |()| async {
            let current = self
                .api
                .get_opt(&item.id)
                .await
                .map_err(|e| self.error("get", e))?;
            let result = match current {
                None => {
                    let resource = self.resource(&item, None);
                    self.api.create(&params, &resource).await
                }
                Some(current) => {
                    let resource = self.resource(&item, current.metadata.resource_version);
                    self.api.replace(&item.id, &params, &resource).await
                }
            };
            match result {
                Ok(_) => Ok(Attempt::Stored(())),
                Err(error) if is_status(&error, 409) => Ok(Attempt::Conflict(())),
                Err(error) => Err(self.error("write", error)),
            }
        })
        .await?;
        if written.is_none() {
            return Err(Error::Conflict {
                id: item.id,
                namespace: self.namespace.clone(),
            });
        }
        self.settle(&item.id, Some(&OverrideSpec::from(&item)))
            .await;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<Option<Override>> {
        let Some(current) = self
            .api
            .get_opt(id)
            .await
            .map_err(|e| self.error("get", e))?
        else {
            return Ok(None);
        };
        match self.api.delete(id, &DeleteParams::default()).await {
            Ok(_) => {}
            // Someone else removed it first: it was theirs to report.
            Err(error) if is_status(&error, 404) => return Ok(None),
            Err(error) => return Err(self.error("delete", error)),
        }
        self.settle(id, None).await;
        Ok(Some(current.spec.to_override(id)))
    }
}
