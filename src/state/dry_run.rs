//! State for a dry run: documents are read from where they live, and whatever the run writes
//! stays in memory, so a dry run changes nothing anywhere.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Document, DocumentStore, Result, Versioned, Written};

/// A [`DocumentStore`] that reads through to another store until a document is written, and
/// keeps every written document in memory only.
#[derive(Debug)]
pub struct DryRunStore {
    inner: Arc<dyn DocumentStore>,
    written: Mutex<HashMap<String, String>>,
}

impl DryRunStore {
    /// Reads `inner`, never writes it.
    pub fn new(inner: Arc<dyn DocumentStore>) -> Self {
        DryRunStore {
            inner,
            written: Mutex::default(),
        }
    }
}

#[async_trait]
impl DocumentStore for DryRunStore {
    async fn read(&self, name: &str) -> Result<Versioned> {
        let written = self.written.lock().get(name).cloned();
        match written {
            Some(text) => Ok(Versioned {
                text: Some(text),
                version: None,
            }),
            None => self.inner.read(name).await,
        }
    }

    async fn write(
        &self,
        name: &str,
        document: Document,
        _version: Option<&str>,
    ) -> Result<Written> {
        let text = document.to_text(name)?;
        self.written.lock().insert(name.to_string(), text);
        Ok(Written::Stored(None))
    }

    fn location(&self, name: &str) -> PathBuf {
        self.inner.location(name)
    }

    fn max_bytes(&self) -> Option<usize> {
        self.inner.max_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[tokio::test]
    async fn writes_stay_in_memory_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.save("a.json", &1).unwrap();
        let store = DryRunStore::new(Arc::new(state));
        assert_eq!(
            store.read("a.json").await.unwrap().text.as_deref(),
            Some("1")
        );
        store
            .write("a.json", String::from("2").into(), None)
            .await
            .unwrap();
        store
            .write("b.json", String::from("3").into(), None)
            .await
            .unwrap();
        assert_eq!(
            store.read("a.json").await.unwrap().text.as_deref(),
            Some("2")
        );
        assert_eq!(
            store.read("b.json").await.unwrap().text.as_deref(),
            Some("3")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.json")).unwrap(),
            "1"
        );
        assert!(!dir.path().join("b.json").exists());
    }
}
