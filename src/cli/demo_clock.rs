//! The demo's simulated clock, kept in the state directory with the estate, so a restarted
//! demo continues from its simulated time instead of the real one.
//!
//! The clock is written to `sim-clock.json` every second (real time) and when the demo stops.
//! A restart resumes from the latest of that instant and everything the state records as
//! having happened (overrides created, audit entries), so even after a kill -9 nothing in the
//! state lies in the future of the clock. `--start` sets the clock anew.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::overrides::{FileOverrideStore, OverrideStore};
use crate::state::{self, StateDir};

/// The file in the state directory.
pub const FILE: &str = "sim-clock.json";
/// How often the running demo writes its clock (real time).
const SAVE_EVERY: StdDuration = StdDuration::from_secs(1);

/// Why the clock could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A state file is unreadable or corrupt.
    #[error("{0}")]
    State(#[from] state::Error),
    /// The overrides could not be read.
    #[error("{0}")]
    Overrides(#[from] crate::overrides::Error),
}

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// The simulated time when it was written.
    simulated: Option<DateTime<Utc>>,
}

/// Where a demo on the state in `dir` resumes: the latest of the saved clock, the newest
/// override's creation and the newest audit entry; `None` for a state without any of them.
pub async fn resume_point(dir: &Path) -> Result<Option<DateTime<Utc>>, Error> {
    if !dir.exists() {
        return Ok(None);
    }
    let state = StateDir::open(dir)?;
    let saved = state.load::<Stored>(FILE)?.simulated;
    let overrides = FileOverrideStore::open(state.clone())?.list().await?;
    let audit = AuditLog::open(state)?;
    let audited = audit.page(0, 1, |_| true).first().map(|entry| entry.at);
    Ok(saved
        .into_iter()
        .chain(overrides.iter().map(|item| item.created_at))
        .chain(audited)
        .max())
}

/// Writes the clock's time to the state in `dir`.
pub fn save(dir: &Path, clock: &dyn Clock) -> state::Result<()> {
    StateDir::open(dir)?.save(
        FILE,
        &Stored {
            simulated: Some(clock.now()),
        },
    )
}

/// Writes the clock every second until the task is dropped or aborted.
pub async fn keep(dir: std::path::PathBuf, clock: Arc<dyn Clock>) {
    loop {
        tokio::time::sleep(SAVE_EVERY).await;
        if let Err(err) = save(&dir, &*clock) {
            tracing::warn!(error = %err, "cannot save the demo's clock");
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::Override;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::hours(hours)
    }

    #[tokio::test]
    async fn a_fresh_state_has_no_resume_point_and_a_saved_clock_is_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resume_point(&dir.path().join("none")).await.unwrap(), None);
        assert_eq!(resume_point(dir.path()).await.unwrap(), None);
        save(dir.path(), &ManualClock::new(at(5))).unwrap();
        assert_eq!(resume_point(dir.path()).await.unwrap(), Some(at(5)));
    }

    #[tokio::test]
    async fn the_clock_resumes_no_earlier_than_the_newest_override() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &ManualClock::new(at(5))).unwrap();
        // Created after the last save, as a kill -9 can leave it.
        let store = FileOverrideStore::open(StateDir::open(dir.path()).unwrap()).unwrap();
        store
            .put(Override {
                id: "a".into(),
                environment: "staging".into(),
                state: crate::calendar::State::Up,
                created_at: at(6),
                until: at(9),
                reason: "late".into(),
                created_by: "otto".into(),
            })
            .await
            .unwrap();
        assert_eq!(resume_point(dir.path()).await.unwrap(), Some(at(6)));
    }

    #[tokio::test]
    async fn a_corrupt_clock_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{ nope").unwrap();
        let err = resume_point(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains(FILE), "{err}");
    }
}
