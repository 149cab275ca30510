//! State documents as ConfigMaps, so that every replica reads and writes the same audit log
//! and cost ledger and a new leader continues where the old one stopped.
//!
//! Document `audit.json` is the key `audit.json` of the ConfigMap `curfew-audit` in the
//! configured namespace. Every replace names the resourceVersion read, so a concurrent write
//! is a conflict for the writer to resolve (re-read, merge, retry), never a silent loss.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::{Document, DocumentStore, Error, Result, Versioned, Written};

/// A ConfigMap holds at most 1 MiB; documents stay well below to leave room for metadata.
const MAX_BYTES: usize = 900 * 1024;

/// A [`DocumentStore`] keeping each document in its own ConfigMap in one namespace.
#[derive(Clone)]
pub struct ConfigMapStore {
    api: Api<ConfigMap>,
    namespace: String,
}

impl std::fmt::Debug for ConfigMapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapStore")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The ConfigMap holding document `name`: `audit.json` lives in `curfew-audit`.
pub fn configmap_name(name: &str) -> String {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    format!("curfew-{stem}")
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

// === impl ConfigMapStore ===

impl ConfigMapStore {
    /// Documents in ConfigMaps in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        ConfigMapStore {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
        }
    }

    fn error(&self, name: &str, source: kube::Error) -> Error {
        Error::Kubernetes {
            namespace: self.namespace.clone(),
            name: configmap_name(name),
            source,
        }
    }
}

#[async_trait]
impl DocumentStore for ConfigMapStore {
    async fn read(&self, name: &str) -> Result<Versioned> {
        let found = self
            .api
            .get_opt(&configmap_name(name))
            .await
            .map_err(|e| self.error(name, e))?;
        Ok(match found {
            Some(map) => Versioned {
                text: map.data.and_then(|mut data| data.remove(name)),
                version: map.metadata.resource_version,
            },
            None => Versioned::default(),
        })
    }

    async fn write(
        &self,
        name: &str,
        document: Document,
        version: Option<&str>,
    ) -> Result<Written> {
        let text = document.to_text(name)?;
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(configmap_name(name)),
                namespace: Some(self.namespace.clone()),
                resource_version: version.map(str::to_string),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/name".to_string(), "curfew".to_string()),
                    (
                        "app.kubernetes.io/component".to_string(),
                        "state".to_string(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(name.to_string(), text)])),
            ..ConfigMap::default()
        };
        let params = PostParams::default();
        let result = match version {
            None => self.api.create(&params, &map).await,
            Some(_) => self.api.replace(&configmap_name(name), &params, &map).await,
        };
        match result {
            Ok(stored) => Ok(Written::Stored(stored.metadata.resource_version)),
            Err(error) if is_conflict(&error) => Ok(Written::Conflict),
            Err(error) => Err(self.error(name, error)),
        }
    }

    fn location(&self, name: &str) -> PathBuf {
        PathBuf::from(format!(
            "configmap {}/{} key {name}",
            self.namespace,
            configmap_name(name)
        ))
    }

    fn max_bytes(&self) -> Option<usize> {
        Some(MAX_BYTES)
    }

    fn is_shared(&self) -> bool {
        true
    }
}
