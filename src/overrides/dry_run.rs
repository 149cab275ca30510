//! Overrides for a dry run: the stored ones are read, and whatever the run creates or cancels
//! stays in memory, so a dry run changes nothing anywhere.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, MutexGuard};

use super::{OverrideStore, Result};
use crate::domain::Override;

/// An [`OverrideStore`] over another one that it reads and never writes.
pub struct DryRunOverrides {
    inner: Arc<dyn OverrideStore>,
    changes: Mutex<Changes>,
}

/// What the run changed: overrides put (by id, replacing stored ones) and ids removed.
#[derive(Default)]
struct Changes {
    put: Vec<Override>,
    removed: HashSet<String>,
}

impl DryRunOverrides {
    /// Reads `inner`, never writes it.
    pub fn new(inner: Arc<dyn OverrideStore>) -> Self {
        DryRunOverrides {
            inner,
            changes: Mutex::default(),
        }
    }

    fn changes(&self) -> MutexGuard<'_, Changes> {
        self.changes.lock()
    }
}

#[async_trait]
impl OverrideStore for DryRunOverrides {
    async fn list(&self) -> Result<Vec<Override>> {
        let stored = self.inner.list().await?;
        let changes = self.changes();
        let mut items: Vec<Override> = stored
            .into_iter()
            .filter(|o| {
                !changes.removed.contains(&o.id) && changes.put.iter().all(|p| p.id != o.id)
            })
            .collect();
        items.extend(changes.put.iter().cloned());
        Ok(items)
    }

    async fn put(&self, item: Override) -> Result<()> {
        let mut changes = self.changes();
        changes.removed.remove(&item.id);
        changes.put.retain(|existing| existing.id != item.id);
        changes.put.push(item);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<Option<Override>> {
        let current = self.list().await?.into_iter().find(|o| o.id == id);
        let mut changes = self.changes();
        changes.put.retain(|existing| existing.id != id);
        if current.is_some() {
            changes.removed.insert(id.to_string());
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration};

    use super::*;
    use crate::calendar::State;
    use crate::overrides::FileOverrideStore;
    use crate::state::StateDir;

    fn mk_override(id: &str, reason: &str) -> Override {
        let base = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Override {
            id: id.into(),
            environment: "staging".into(),
            state: State::Up,
            created_at: base,
            until: base + Duration::hours(1),
            reason: reason.into(),
            created_by: "otto".into(),
        }
    }

    fn ids(items: &[Override]) -> Vec<&str> {
        let mut ids: Vec<&str> = items.iter().map(|o| o.id.as_str()).collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn stored_overrides_are_read_and_changes_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let stored = FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap();
        stored.put(mk_override("a", "stored")).await.unwrap();
        let file = dir.path().join("overrides.json");
        let before = std::fs::read(&file).unwrap();

        let inner = FileOverrideStore::open(StateDir::existing(dir.path())).unwrap();
        let dry = DryRunOverrides::new(Arc::new(inner));
        assert_eq!(ids(&dry.list().await.unwrap()), ["a"]);
        dry.put(mk_override("b", "dry")).await.unwrap();
        dry.put(mk_override("b", "dry again")).await.unwrap();
        assert_eq!(ids(&dry.list().await.unwrap()), ["a", "b"]);
        assert_eq!(dry.remove("a").await.unwrap().unwrap().reason, "stored");
        assert!(dry.remove("a").await.unwrap().is_none(), "removed once");
        let left = dry.list().await.unwrap();
        assert_eq!(ids(&left), ["b"]);
        assert_eq!(left[0].reason, "dry again");

        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "the file is untouched"
        );
    }
}
