//! Overrides kept in `overrides.json` in the state directory.
//!
//! The file is written atomically on a blocking thread, never on the threads that answer
//! requests; every change, however many overrides it touches, is one write.

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{OverrideStore, Result};
use crate::domain::Override;
use crate::state::{self, StateDir};

const FILE: &str = "overrides.json";

/// An [`OverrideStore`] backed by one atomically written file.
#[derive(Debug)]
pub struct FileOverrideStore {
    dir: StateDir,
    items: Mutex<Vec<Override>>,
}

impl FileOverrideStore {
    /// Opens the store, reading the file; a corrupt file is an error.
    pub fn open(dir: StateDir) -> Result<Self> {
        let items = Self::read(&dir)?;
        Ok(FileOverrideStore {
            dir,
            items: Mutex::new(items),
        })
    }

    /// The overrides stored in `dir`, read without opening a store: for commands that only
    /// look. A missing file holds none; a corrupt one is an error.
    pub fn read(dir: &StateDir) -> Result<Vec<Override>> {
        Ok(dir.load(FILE)?)
    }

    async fn update<T>(&self, change: impl FnOnce(&mut Vec<Override>) -> T) -> Result<T> {
        let mut items = self.items.lock().await;
        let mut next = items.clone();
        let result = change(&mut next);
        // Persist first: memory only changes once the file holds the new list.
        let bytes = state::to_pretty_bytes(FILE, &next)?;
        let path = self.dir.file(FILE);
        state::write_atomically_off_thread(path, bytes).await?;
        *items = next;
        Ok(result)
    }
}

#[async_trait]
impl OverrideStore for FileOverrideStore {
    async fn list(&self) -> Result<Vec<Override>> {
        Ok(self.items.lock().await.clone())
    }

    async fn put(&self, item: Override) -> Result<()> {
        self.update(|items| {
            items.retain(|existing| existing.id != item.id);
            items.push(item);
        })
        .await
    }

    async fn remove(&self, id: &str) -> Result<Option<Override>> {
        self.update(|items| {
            let index = items.iter().position(|o| o.id == id)?;
            Some(items.remove(index))
        })
        .await
    }

    async fn remove_all(&self, ids: &[String]) -> Result<Vec<Override>> {
        self.update(|items| {
            let (removed, kept) = std::mem::take(items)
                .into_iter()
                .partition(|o| ids.contains(&o.id));
            *items = kept;
            removed
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::overrides::conformance;

    #[tokio::test]
    async fn file_store_passes_the_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        conformance::check_store(&|| {
            let store = FileOverrideStore::open(StateDir::open(&path).unwrap()).unwrap();
            Arc::new(store) as Arc<dyn OverrideStore>
        })
        .await;
    }
}
