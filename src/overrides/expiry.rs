//! Ending overrides: pruning the ones whose `until` has passed and auditing each exactly once.

use chrono::{DateTime, Utc};

use super::{OverrideStore, Result};
use crate::audit::{AuditEntry, AuditLog, override_target};
use crate::domain::Override;

/// The audit event of an override that ran out.
pub const EXPIRED: &str = "override_expired";

/// Removes every override that has ended by `now` and records one `override_expired` entry
/// for each. Returns the overrides removed by this call.
///
/// The entries are written before the overrides are removed, and skipped when the log already
/// has them, so a crash between the two steps neither loses nor repeats an entry. However many
/// overrides end together, that is one write of the log and one of the store.
pub async fn expire(
    store: &dyn OverrideStore,
    audit: &AuditLog,
    now: DateTime<Utc>,
) -> Result<Vec<Override>> {
    let ended: Vec<Override> = store
        .list()
        .await?
        .into_iter()
        .filter(|o| o.until <= now)
        .collect();
    if ended.is_empty() {
        return Ok(ended);
    }
    let audited = audit.targets_of(EXPIRED);
    let entries: Vec<AuditEntry> = ended
        .iter()
        .filter(|item| !audited.contains(&override_target(&item.id)))
        .map(|item| AuditEntry {
            at: item.until,
            actor: "curfew".into(),
            event: EXPIRED.into(),
            environment: item.environment.as_str().into(),
            target: Some(override_target(&item.id)),
            before: Some(format!("override {}", item.state).into()),
            after: Some("calendar".into()),
            reason: format!("override by {} ended: {}", item.created_by, item.reason).into(),
            result: "ok".into(),
        })
        .collect();
    audit.record(entries).await?;
    let ids: Vec<String> = ended.into_iter().map(|o| o.id).collect();
    store.remove_all(&ids).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::State;
    use crate::domain::testing::{at, mk_override};
    use crate::overrides::FileOverrideStore;
    use crate::state::StateDir;
    use chrono::Duration;

    /// A file store in a fresh directory holding one override, `old`, expired a minute before
    /// the returned instant, and the audit log beside it.
    async fn store_with_an_expired_override() -> (
        tempfile::TempDir,
        FileOverrideStore,
        AuditLog,
        DateTime<Utc>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let store = FileOverrideStore::open(state.clone()).unwrap();
        let audit = AuditLog::open(state).unwrap();
        let now = at(0);
        store
            .put(ending_at("old", now - Duration::minutes(1)))
            .await
            .unwrap();
        (dir, store, audit, now)
    }

    /// An override of staging that ran for an hour until `until`.
    fn ending_at(id: &str, until: DateTime<Utc>) -> Override {
        mk_override(id, "staging", State::Up, until - Duration::hours(1), until)
    }

    #[tokio::test]
    async fn expired_overrides_are_removed_and_audited_exactly_once() {
        let (_dir, store, audit, now) = store_with_an_expired_override().await;
        store
            .put(ending_at("live", now + Duration::minutes(1)))
            .await
            .unwrap();

        let removed = expire(&store, &audit, now).await.unwrap();
        assert_eq!(
            removed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["old"]
        );
        assert_eq!(store.list().await.unwrap().len(), 1);
        assert!(expire(&store, &audit, now).await.unwrap().is_empty());
        let entries = audit.page(0, 10, |_| true);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].event, EXPIRED);
        assert_eq!(entries[0].target.as_deref(), Some("override/old"));
    }

    /// An in-memory store that counts its writes.
    #[derive(Default)]
    struct CountingStore {
        items: parking_lot::Mutex<Vec<Override>>,
        writes: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl OverrideStore for CountingStore {
        async fn list(&self) -> Result<Vec<Override>> {
            Ok(self.items.lock().clone())
        }

        async fn put(&self, item: Override) -> Result<()> {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.items.lock().push(item);
            Ok(())
        }

        async fn remove(&self, id: &str) -> Result<Option<Override>> {
            self.remove_all(&[id.to_string()])
                .await
                .map(|mut removed| removed.pop())
        }

        async fn remove_all(&self, ids: &[String]) -> Result<Vec<Override>> {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut items = self.items.lock();
            let (removed, kept) = std::mem::take(&mut *items)
                .into_iter()
                .partition(|o| ids.contains(&o.id));
            *items = kept;
            Ok(removed)
        }
    }

    #[tokio::test]
    async fn a_thousand_overrides_ending_together_cost_one_write_of_the_store_and_one_of_the_log() {
        let now = at(0);
        let store = CountingStore::default();
        for n in 0..1000 {
            store
                .put(ending_at(&format!("{n:012x}"), now - Duration::seconds(1)))
                .await
                .unwrap();
        }
        store
            .put(ending_at("live", now + Duration::minutes(1)))
            .await
            .unwrap();
        store.writes.store(0, std::sync::atomic::Ordering::SeqCst);
        let documents = std::sync::Arc::new(crate::state::MemoryStore::shared(None));
        let audit = AuditLog::load(documents.clone()).await.unwrap();

        let removed = expire(&store, &audit, now).await.unwrap();
        assert_eq!(removed.len(), 1000);
        assert_eq!(store.writes.load(std::sync::atomic::Ordering::SeqCst), 1);
        let log = crate::state::DocumentStore::read(&*documents, "audit.json")
            .await
            .unwrap();
        assert_eq!(log.version.as_deref(), Some("1"), "one write of the log");
        assert_eq!(audit.count(|e| e.event == EXPIRED), 1000);
        assert_eq!(store.list().await.unwrap().len(), 1, "the live one stays");
    }

    #[tokio::test]
    async fn an_expiry_already_audited_before_a_crash_is_not_audited_again() {
        let (dir, store, audit, now) = store_with_an_expired_override().await;
        // A previous run wrote the entry, then died before removing the override.
        let scratch =
            FileOverrideStore::open(StateDir::open(dir.path().join("scratch")).unwrap()).unwrap();
        scratch
            .put(ending_at("old", now - Duration::minutes(1)))
            .await
            .unwrap();
        expire(&scratch, &audit, now).await.unwrap();

        let removed = expire(&store, &audit, now).await.unwrap();
        assert_eq!(removed.len(), 1);
        assert!(store.list().await.unwrap().is_empty());
        assert_eq!(audit.page(0, 10, |e| e.event == EXPIRED).len(), 1);
    }
}
