//! [`WatchCache`]: the objects of one watched kind, kept from a watch's events by namespace
//! and name.
//!
//! It takes the place of kube's reflector store, which keys every object with copies of its
//! name, namespace, uid and resourceVersion beside the object that already holds them (about
//! 2.5 MiB of a 10,000-Deployment boundary's peak; BENCHMARKS.md). Here a namespace's name
//! is kept once, and each object under it by its name alone. An object may be kept in another
//! form than the watch parses (`V` made from `K`): a workload's projection keeps its metadata
//! in a few strings rather than a whole `ObjectMeta`.
//!
//! Like the reflector, a watch that lists again fills a new map and swaps it in when the list
//! is complete, so readers never see half a list; the cache is ready from the first complete
//! list on.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use kube::Resource;
use kube::runtime::watcher;
use parking_lot::RwLock;
use tokio::sync::watch;

/// The objects of one kind, by namespace (`""` for cluster-scoped objects), then name.
type Objects<V> = HashMap<Box<str>, HashMap<Box<str>, Arc<V>>>;

/// The read side, holding objects as `V`: cheap to clone, shared with the [`CacheWriter`]
/// that fills it.
pub struct WatchCache<V> {
    shared: Arc<Shared<V>>,
}

struct Shared<V> {
    objects: RwLock<Objects<V>>,
    /// Whether a complete list has been kept.
    ready: watch::Sender<bool>,
}

/// The write side, fed the events of one watch of objects parsed as `K`.
pub struct CacheWriter<K, V> {
    shared: Arc<Shared<V>>,
    /// Objects of a list in progress, swapped in when it completes.
    listing: Option<Objects<V>>,
    parsed: PhantomData<fn(K)>,
}

impl<V> Clone for WatchCache<V> {
    fn clone(&self) -> Self {
        WatchCache {
            shared: self.shared.clone(),
        }
    }
}

/// An empty cache and the writer that fills it.
pub fn cache<K, V>() -> (WatchCache<V>, CacheWriter<K, V>) {
    let shared = Arc::new(Shared {
        objects: RwLock::new(HashMap::new()),
        ready: watch::Sender::new(false),
    });
    let reader = WatchCache {
        shared: shared.clone(),
    };
    let writer = CacheWriter {
        shared,
        listing: None,
        parsed: PhantomData,
    };
    (reader, writer)
}

impl<V> WatchCache<V> {
    /// Every object kept, in no particular order.
    pub fn state(&self) -> Vec<Arc<V>> {
        let objects = self.shared.objects.read();
        let count = objects.values().map(HashMap::len).sum();
        let mut all = Vec::with_capacity(count);
        all.extend(objects.values().flat_map(|named| named.values().cloned()));
        all
    }

    /// The object `name` in `namespace` (`""` for a cluster-scoped object).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<V>> {
        self.shared
            .objects
            .read()
            .get(namespace)?
            .get(name)
            .cloned()
    }

    /// Returns once a complete list has been kept.
    pub async fn ready(&self) {
        let mut ready = self.shared.ready.subscribe();
        // The sender lives as long as this cache, so waiting only ends when it is ready.
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

impl<K: Resource, V: From<K>> CacheWriter<K, V> {
    /// Keeps what one event of the watch says.
    pub fn apply(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) => insert(&mut self.shared.objects.write(), object),
            watcher::Event::Delete(object) => {
                let (namespace, name) = key(&object);
                let mut objects = self.shared.objects.write();
                if let Some(named) = objects.get_mut(namespace) {
                    named.remove(name);
                    if named.is_empty() {
                        objects.remove(namespace);
                    }
                }
            }
            watcher::Event::Init => self.listing = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                insert(self.listing.get_or_insert_default(), object);
            }
            watcher::Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                // The previous list is dropped outside the lock.
                let previous = std::mem::replace(&mut *self.shared.objects.write(), listed);
                drop(previous);
                self.shared.ready.send_replace(true);
            }
        }
    }
}

/// An object's namespace (`""` when it has none) and name.
fn key<K: Resource>(object: &K) -> (&str, &str) {
    let metadata = object.meta();
    (
        metadata.namespace.as_deref().unwrap_or_default(),
        metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Keeps `object` as a `V` under its namespace and name.
fn insert<K: Resource, V: From<K>>(objects: &mut Objects<V>, object: K) {
    let (namespace, name) = key(&object);
    let named = match objects.get_mut(namespace) {
        Some(named) => named,
        None => objects.entry(namespace.into()).or_default(),
    };
    match named.get_mut(name) {
        Some(kept) => *kept = Arc::new(V::from(object)),
        None => {
            let name = name.into();
            named.insert(name, Arc::new(V::from(object)));
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn map(namespace: Option<&str>, name: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: namespace.map(str::to_string),
                name: Some(name.to_string()),
                resource_version: Some(version.to_string()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn version(object: Option<Arc<ConfigMap>>) -> Option<String> {
        object?.metadata.resource_version.clone()
    }

    #[test]
    fn a_list_shows_only_when_complete_and_replaces_the_previous_one() {
        let (cache, mut writer) = cache::<ConfigMap, ConfigMap>();
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(map(Some("a"), "x", "1")));
        writer.apply(watcher::Event::InitApply(map(Some("b"), "x", "2")));
        assert!(cache.state().is_empty(), "half a list is not shown");
        writer.apply(watcher::Event::InitDone);
        assert_eq!(cache.state().len(), 2);
        assert_eq!(version(cache.get("a", "x")), Some("1".to_string()));
        assert_eq!(version(cache.get("b", "x")), Some("2".to_string()));

        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(map(Some("b"), "y", "3")));
        assert_eq!(
            cache.state().len(),
            2,
            "the old list stays until the new one is done"
        );
        writer.apply(watcher::Event::InitDone);
        assert_eq!(cache.state().len(), 1);
        assert_eq!(cache.get("a", "x").map(|_| ()), None);
        assert_eq!(version(cache.get("b", "y")), Some("3".to_string()));
    }

    #[test]
    fn applies_replace_and_deletes_remove() {
        let (cache, mut writer) = cache::<ConfigMap, ConfigMap>();
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitDone);
        writer.apply(watcher::Event::Apply(map(Some("a"), "x", "1")));
        writer.apply(watcher::Event::Apply(map(Some("a"), "x", "2")));
        writer.apply(watcher::Event::Apply(map(None, "cluster-wide", "3")));
        assert_eq!(cache.state().len(), 2);
        assert_eq!(version(cache.get("a", "x")), Some("2".to_string()));
        assert_eq!(
            version(cache.get("", "cluster-wide")),
            Some("3".to_string())
        );
        assert_eq!(
            cache.get("b", "x").map(|_| ()),
            None,
            "namespaces are apart"
        );

        writer.apply(watcher::Event::Delete(map(Some("a"), "x", "4")));
        writer.apply(watcher::Event::Delete(map(Some("a"), "never-seen", "5")));
        assert_eq!(cache.get("a", "x").map(|_| ()), None);
        assert_eq!(cache.state().len(), 1);
    }

    /// What a test keeps of a ConfigMap: its resourceVersion alone.
    struct Version(Option<String>);

    impl From<ConfigMap> for Version {
        fn from(map: ConfigMap) -> Self {
            Version(map.metadata.resource_version)
        }
    }

    #[test]
    fn objects_are_kept_in_the_form_the_cache_holds() {
        let (cache, mut writer) = cache::<ConfigMap, Version>();
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(map(Some("a"), "x", "1")));
        writer.apply(watcher::Event::InitDone);
        writer.apply(watcher::Event::Apply(map(Some("a"), "y", "2")));
        let kept = |name| cache.get("a", name).and_then(|v| v.0.clone());
        assert_eq!(kept("x"), Some("1".to_string()));
        assert_eq!(kept("y"), Some("2".to_string()));
        writer.apply(watcher::Event::Delete(map(Some("a"), "x", "3")));
        assert_eq!(kept("x"), None);
    }

    #[tokio::test]
    async fn ready_waits_for_the_first_complete_list() {
        let (cache, mut writer) = cache::<ConfigMap, ConfigMap>();
        let waiting = tokio::spawn({
            let cache = cache.clone();
            async move { cache.ready().await }
        });
        writer.apply(watcher::Event::Init);
        writer.apply(watcher::Event::InitApply(map(Some("a"), "x", "1")));
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "not ready in the middle of the list"
        );
        writer.apply(watcher::Event::InitDone);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("ready after the list")
            .expect("the waiting task ends");
        // Listing again later does not make it wait.
        writer.apply(watcher::Event::Init);
        cache.ready().await;
    }
}
