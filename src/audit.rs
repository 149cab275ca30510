//! The audit log: who changed what, when, why, and the state before and after.
//!
//! The log is a document in a [`DocumentStore`]: `audit.json` in the state directory, or the
//! ConfigMap `curfew-audit` shared by every replica. Reads come from a cached copy; a write
//! names the version it was based on and, when another replica wrote in between, re-reads,
//! appends its entries to the newer log and tries again, so no replica's entries are lost.
//! The log keeps the newest entries that fit the store: at most 20,000, below 4 MiB in the
//! state directory and below 900 KiB in a ConfigMap.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use crate::calendar::format;
use crate::state::versioned::{self, Current};
use crate::state::{self, Document, DocumentStore, StateDir};

mod text;

use text::Interner;
pub use text::Text;

const FILE: &str = "audit.json";
/// The log keeps this many newest entries.
const KEEP: usize = 20_000;
/// A write that keeps conflicting gives up after this many attempts.
const ATTEMPTS: usize = 20;

/// How audit entries name an override: `override/<id>` in their `target`.
pub fn override_target(id: &str) -> String {
    format!("override/{id}")
}

// Its strings but the target are `Text`: entries recorded or read together share equal values.
/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When it happened.
    #[serde(serialize_with = "format::serialize_utc_seconds")]
    pub at: DateTime<Utc>,
    /// Who did it (a token name, or `curfew` for the scaler itself).
    #[schema(value_type = String)]
    pub actor: Text,
    /// What happened, e.g. `scale_down`, `scale_up`, `override_created`.
    #[schema(value_type = String)]
    pub event: Text,
    /// The environment concerned.
    #[schema(value_type = String)]
    pub environment: Text,
    /// The target concerned, if one; `override/<id>` for override events.
    pub target: Option<String>,
    /// The state before.
    #[schema(value_type = Option<String>)]
    pub before: Option<Text>,
    /// The state after.
    #[schema(value_type = Option<String>)]
    pub after: Option<Text>,
    /// Why.
    #[schema(value_type = String)]
    pub reason: Text,
    /// The outcome: `ok`, or the error.
    #[schema(value_type = String)]
    pub result: Text,
}

impl AuditEntry {
    /// Shares the entry's values with equal ones `interner` has seen.
    fn share(mut self, interner: &mut Interner) -> Self {
        for text in [
            &mut self.actor,
            &mut self.event,
            &mut self.environment,
            &mut self.reason,
            &mut self.result,
        ] {
            interner.intern(text);
        }
        interner.intern_optional(&mut self.before);
        interner.intern_optional(&mut self.after);
        self
    }
}

/// The entries of the log, oldest first, shared between the cached log and the one a write
/// prepares: a write copies pointers, not entries (a boundary appends thousands).
#[derive(Debug, Clone, Default)]
struct Entries(Vec<Arc<AuditEntry>>);

impl Serialize for Entries {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|entry| &**entry))
    }
}

impl<'de> Deserialize<'de> for Entries {
    /// Each entry is shared as it is read, with no list of unshared entries in between.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> serde::de::Visitor<'de> for EntriesVisitor {
            type Value = Entries;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a list of audit entries")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(KEEP));
                let mut interner = Interner::default();
                while let Some(entry) = seq.next_element::<AuditEntry>()? {
                    entries.push(Arc::new(entry.share(&mut interner)));
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_seq(EntriesVisitor)
    }
}

/// An append-only audit log kept in a [`DocumentStore`].
#[derive(Debug)]
pub struct AuditLog {
    store: Arc<dyn DocumentStore>,
    /// The log as last read or written, and its version.
    cached: Mutex<Current<Entries>>,
    /// Serialises this process's writers; other processes are handled by versions.
    writing: tokio::sync::Mutex<()>,
}

// === impl AuditLog ===

impl AuditLog {
    /// Opens the log in the state directory, reading the file; a corrupt file is an error.
    pub fn open(dir: StateDir) -> state::Result<Self> {
        let entries: Entries = dir.load(FILE)?;
        Ok(Self::with_entries(Arc::new(dir), entries, None))
    }

    /// Opens the log in `store`, reading it; a corrupt log is an error.
    pub async fn load(store: Arc<dyn DocumentStore>) -> state::Result<Self> {
        let log = Self::with_entries(store, Entries::default(), None);
        log.reload().await?;
        Ok(log)
    }

    fn with_entries(
        store: Arc<dyn DocumentStore>,
        entries: Entries,
        version: Option<String>,
    ) -> Self {
        AuditLog {
            store,
            cached: Mutex::new(Current {
                value: entries,
                version,
            }),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> MutexGuard<'_, Current<Entries>> {
        self.cached.lock()
    }

    /// Re-reads the log when other replicas write it too (before serving it, and on taking
    /// the lead); a log only this process writes is already current.
    pub async fn refresh(&self) -> state::Result<()> {
        if self.store.is_shared() {
            self.reload().await?;
        }
        Ok(())
    }

    async fn reload(&self) -> state::Result<()> {
        *self.cached() = versioned::read(&*self.store, FILE).await?;
        Ok(())
    }

    /// Appends entries and persists the log. When another replica wrote the log since it was
    /// read, the entries are appended to the newer log instead.
    pub async fn record(&self, new: impl IntoIterator<Item = AuditEntry>) -> state::Result<()> {
        let mut interner = Interner::default();
        let new: Vec<Arc<AuditEntry>> = new
            .into_iter()
            .map(|entry| Arc::new(entry.share(&mut interner)))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let _writing = self.writing.lock().await;
        let current = self.cached().clone();
        let stored = versioned::update(&*self.store, FILE, ATTEMPTS, current, |mut entries| {
            entries.0.extend(new.iter().cloned());
            let document = self.trimmed(&mut entries)?;
            Ok((entries, document))
        })
        .await?;
        *self.cached() = stored;
        Ok(())
    }

    /// Drops the oldest entries until the log keeps at most [`KEEP`] and fits the store;
    /// returns the document to write. Entries are measured one by one, newest first, without
    /// making the text: a state file is then written from the entries as they are serialised
    /// (a boundary of 10,000 actions writes a log of several MiB).
    fn trimmed(&self, entries: &mut Entries) -> state::Result<Document> {
        let Entries(list) = entries;
        let excess = list.len().saturating_sub(KEEP);
        list.drain(..excess);
        let limit = self.store.max_bytes().unwrap_or(usize::MAX);
        // The text is `[` + the entries joined by commas + `]`.
        let mut size = 2;
        let mut kept = 0;
        for entry in list.iter().rev() {
            let cost = state::text_len(FILE, &**entry)? + usize::from(kept > 0);
            if size + cost > limit {
                break;
            }
            size += cost;
            kept += 1;
        }
        list.drain(..list.len() - kept);
        Ok(Document::of(entries.clone()))
    }

    /// Entries for which `keep` holds, newest first by time (replicas may append out of
    /// order; entries of the same second in the order written, latest first), `limit` of them
    /// after skipping `offset`.
    pub fn page(
        &self,
        offset: usize,
        limit: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Vec<AuditEntry> {
        let cached = self.cached();
        let mut kept: Vec<&AuditEntry> = cached
            .value
            .0
            .iter()
            .map(|entry| &**entry)
            .rev()
            .filter(|e| keep(e))
            .collect();
        kept.sort_by_key(|entry| std::cmp::Reverse(entry.at));
        kept.into_iter().skip(offset).take(limit).cloned().collect()
    }

    /// How many entries `keep` holds for.
    pub fn count(&self, keep: impl Fn(&AuditEntry) -> bool) -> usize {
        self.cached()
            .value
            .0
            .iter()
            .filter(|entry| keep(entry))
            .count()
    }

    /// The targets of the recorded entries of `event` (`override/<id>` for override events).
    pub fn targets_of(&self, event: &str) -> HashSet<String> {
        self.cached()
            .value
            .0
            .iter()
            .filter(|entry| entry.event == event)
            .filter_map(|entry| entry.target.clone())
            .collect()
    }

    /// How many entries the log holds.
    pub fn len(&self) -> usize {
        self.cached().value.0.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn mk_entry(n: usize) -> AuditEntry {
        AuditEntry {
            at: DateTime::from_timestamp(1_800_000_000 + n as i64, 0).unwrap(),
            actor: "otto".into(),
            event: "override_created".into(),
            environment: "staging".into(),
            target: Some(format!("override/{n:012x}")),
            before: Some("down".into()),
            after: Some("up".into()),
            reason: "x".repeat(100).into(),
            result: "ok".into(),
        }
    }

    #[tokio::test]
    async fn two_replicas_writing_one_shared_log_lose_no_entry() {
        let store = Arc::new(MemoryStore::shared(None));
        let a = AuditLog::load(store.clone()).await.unwrap();
        let b = AuditLog::load(store.clone()).await.unwrap();
        a.record([mk_entry(1)]).await.unwrap();
        // b read the log before a wrote: its write conflicts, re-reads and appends.
        b.record([mk_entry(2)]).await.unwrap();
        a.record([mk_entry(3)]).await.unwrap();
        let fresh = AuditLog::load(store).await.unwrap();
        let times: Vec<i64> = fresh
            .page(0, 10, |_| true)
            .iter()
            .map(|e| e.at.timestamp() - 1_800_000_000)
            .collect();
        assert_eq!(times, [3, 2, 1]);
    }

    #[tokio::test]
    async fn entries_recorded_or_read_together_share_equal_values() {
        let shares = |entries: &[AuditEntry]| {
            let (a, b) = (&entries[0], &entries[1]);
            a.actor.as_ptr() == b.actor.as_ptr()
                && a.reason.as_ptr() == b.reason.as_ptr()
                && a.before.as_deref().map(str::as_ptr) == b.before.as_deref().map(str::as_ptr)
        };
        let store = Arc::new(MemoryStore::shared(None));
        let log = AuditLog::load(store.clone()).await.unwrap();
        log.record([mk_entry(1), mk_entry(2)]).await.unwrap();
        assert!(shares(&log.page(0, 2, |_| true)), "recorded together");
        let read = AuditLog::load(store).await.unwrap();
        assert!(shares(&read.page(0, 2, |_| true)), "read together");
        assert_eq!(read.page(0, 2, |_| true), log.page(0, 2, |_| true));
    }

    #[tokio::test]
    async fn pages_are_in_time_order_even_when_entries_were_appended_out_of_order() {
        let log = AuditLog::load(Arc::new(MemoryStore::shared(None)))
            .await
            .unwrap();
        log.record([mk_entry(5), mk_entry(1), mk_entry(9), mk_entry(3)])
            .await
            .unwrap();
        let times: Vec<i64> = log
            .page(1, 2, |_| true)
            .iter()
            .map(|e| e.at.timestamp() - 1_800_000_000)
            .collect();
        assert_eq!(times, [5, 3]);
    }

    #[tokio::test]
    async fn a_log_in_a_size_limited_store_keeps_the_newest_entries_that_fit() {
        let store = Arc::new(MemoryStore::shared(Some(4096)));
        let log = AuditLog::load(store.clone()).await.unwrap();
        for n in 0..100 {
            log.record([mk_entry(n)]).await.unwrap();
        }
        let stored = store.read(FILE).await.unwrap().text.unwrap();
        assert!(stored.len() <= 4096, "{} bytes", stored.len());
        let kept = log.page(0, 100, |_| true);
        assert!(kept.len() > 5 && kept.len() < 100, "{} kept", kept.len());
        assert_eq!(kept[0], mk_entry(99), "the newest entry is kept");
        assert_eq!(AuditLog::load(store).await.unwrap().len(), kept.len());
    }
}
