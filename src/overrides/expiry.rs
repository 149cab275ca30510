//! Ending overrides: pruning the ones whose `until` has passed and auditing each exactly once.

use chrono::{DateTime, Utc};

use super::{OverrideStore, Result};
use crate::audit::{AuditEntry, AuditLog};
use crate::domain::Override;

/// The audit event of an override that ran out.
pub const EXPIRED: &str = "override_expired";

/// Removes every override that has ended by `now` and records one `override_expired` entry
/// for each. Returns the overrides removed by this call.
///
/// The entry is written before the override is removed, and skipped when the log already has
/// it, so a crash between the two steps neither loses nor repeats the entry.
pub async fn expire(
    store: &dyn OverrideStore,
    audit: &AuditLog,
    now: DateTime<Utc>,
) -> Result<Vec<Override>> {
    let mut removed = Vec::new();
    for item in store.list().await?.into_iter().filter(|o| o.until <= now) {
        if !audit.has_override_event(EXPIRED, &item.id) {
            audit
                .record([AuditEntry {
                    at: item.until,
                    actor: "curfew".to_string(),
                    event: EXPIRED.to_string(),
                    environment: item.environment.clone(),
                    target: Some(crate::audit::override_target(&item.id)),
                    before: Some(format!("override {}", item.state)),
                    after: Some("calendar".to_string()),
                    reason: format!("override by {} ended: {}", item.created_by, item.reason),
                    result: "ok".to_string(),
                }])
                .await?;
        }
        if store.remove(&item.id).await?.is_some() {
            removed.push(item);
        }
    }
    Ok(removed)
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
