//! The audit log: who changed what, when, why, and the state before and after.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::{self, StateDir};

const FILE: &str = "audit.json";
/// The log keeps this many newest entries.
const KEEP: usize = 20_000;

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it (a token name, or `curfew` for the scaler itself).
    pub actor: String,
    /// What happened, e.g. `scale_down`, `scale_up`, `override_created`.
    pub event: String,
    /// The environment concerned.
    pub environment: String,
    /// The target concerned, if one; `override/<id>` for override events.
    pub target: Option<String>,
    /// The state before.
    pub before: Option<String>,
    /// The state after.
    pub after: Option<String>,
    /// Why.
    pub reason: String,
    /// The outcome: `ok`, or the error.
    pub result: String,
}

/// An append-only audit log kept in the state directory.
#[derive(Debug)]
pub struct AuditLog {
    dir: StateDir,
    entries: Mutex<Vec<AuditEntry>>,
}

impl AuditLog {
    /// Opens the log, reading the file; a corrupt file is an error.
    pub fn open(dir: StateDir) -> state::Result<Self> {
        let entries: Vec<AuditEntry> = dir.load(FILE)?;
        Ok(AuditLog {
            dir,
            entries: Mutex::new(entries),
        })
    }

    /// Appends entries and persists the log.
    pub fn record(&self, new: impl IntoIterator<Item = AuditEntry>) -> state::Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let before = entries.len();
        entries.extend(new);
        if entries.len() == before {
            return Ok(());
        }
        let excess = entries.len().saturating_sub(KEEP);
        entries.drain(..excess);
        self.dir.save(FILE, &*entries)
    }

    /// Entries for which `keep` holds, newest first, `limit` of them after skipping `offset`.
    pub fn page(
        &self,
        offset: usize,
        limit: usize,
        keep: impl Fn(&AuditEntry) -> bool,
    ) -> Vec<AuditEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .rev()
            .filter(|entry| keep(entry))
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    /// How many entries `keep` holds for.
    pub fn count(&self, keep: impl Fn(&AuditEntry) -> bool) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().filter(|entry| keep(entry)).count()
    }

    /// Whether an `event` about override `id` was recorded.
    pub fn has_override_event(&self, event: &str, id: &str) -> bool {
        let target = crate::overrides::audit_target(id);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .any(|entry| entry.event == event && entry.target.as_deref() == Some(target.as_str()))
    }

    /// How many entries the log holds.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
