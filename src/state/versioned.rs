//! Versioned writes: read, change, write naming the version read, and on a conflict (another
//! writer was first) read again and change again. The one loop behind every read-modify-write
//! with versions: documents in a [`DocumentStore`], `Override` resources.

use serde::de::DeserializeOwned;

use super::{Document, DocumentStore, Error, Result, Written};

/// What one attempt of a versioned write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T, S = ()> {
    /// It was stored.
    Stored(T),
    /// Someone else wrote first: try again from `S` (what was read again).
    Conflict(S),
}

/// Runs `attempt`, starting from `state`, until it stores; returns `None` when `attempts`
/// attempts in a row met a conflict. Each conflict hands the next attempt its state. An error
/// ends the loop at once.
pub async fn retry_conflicts<T, S, E, F, Fut>(
    attempts: usize,
    state: S,
    mut attempt: F,
) -> std::result::Result<Option<T>, E>
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = std::result::Result<Attempt<T, S>, E>>,
{
    let mut state = state;
    for _ in 0..attempts {
        match attempt(state).await? {
            Attempt::Stored(stored) => return Ok(Some(stored)),
            Attempt::Conflict(next) => state = next,
        }
    }
    Ok(None)
}

/// A document's value and the version a write over it must name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current<T> {
    /// The document (its default when it does not exist yet).
    pub value: T,
    /// The version it was read or written at; `None` for a store without versions or a new
    /// document.
    pub version: Option<String>,
}

/// Reads and parses document `name`; a missing one is `T::default()`, a corrupt one an error.
pub async fn read<T: DeserializeOwned + Default>(
    store: &dyn DocumentStore,
    name: &str,
) -> Result<Current<T>> {
    let read = store.read(name).await?;
    Ok(Current {
        value: super::parse(read.text.as_deref(), &store.location(name))?,
        version: read.version,
    })
}

/// Read-modify-write of document `name`, starting from `current` (a copy read before, so the
/// first attempt reads nothing). `change` turns the document as stored into the one to write
/// and what to write of it, or refuses with an error; a write that meets a newer version reads the
/// document again and asks `change` again, up to `attempts` times. Returns what was stored,
/// at its new version.
pub async fn update<T: DeserializeOwned + Default>(
    store: &dyn DocumentStore,
    name: &str,
    attempts: usize,
    current: Current<T>,
    mut change: impl FnMut(T) -> Result<(T, Document)>,
) -> Result<Current<T>> {
    let stored = retry_conflicts(attempts, current, |current: Current<T>| {
        let prepared = change(current.value).map(|(next, text)| (next, text, current.version));
        async move {
            let (next, text, version) = prepared?;
            match store.write(name, text, version.as_deref()).await? {
                Written::Stored(version) => Ok(Attempt::Stored(Current {
                    value: next,
                    version,
                })),
                Written::Conflict => Ok(Attempt::Conflict(read(store, name).await?)),
            }
        }
    })
    .await?;
    stored.ok_or_else(|| Error::Contended {
        path: store.location(name),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::MemoryStore;

    #[tokio::test]
    async fn a_write_over_a_stale_version_reads_again_and_changes_the_newer_document() {
        let store = Arc::new(MemoryStore::shared(None));
        let append = |n: u32| {
            move |mut numbers: Vec<u32>| {
                numbers.push(n);
                let text = crate::state::to_text("numbers.json", &numbers)?;
                Ok((numbers, text.into()))
            }
        };
        let stale: Current<Vec<u32>> = read(&*store, "numbers.json").await.unwrap();
        update(&*store, "numbers.json", 3, stale.clone(), append(1))
            .await
            .unwrap();
        let stored = update(&*store, "numbers.json", 3, stale, append(2))
            .await
            .unwrap();
        assert_eq!(stored.value, [1, 2]);
        let again: Current<Vec<u32>> = read(&*store, "numbers.json").await.unwrap();
        assert_eq!(again, stored);
    }

    #[tokio::test]
    async fn a_write_that_keeps_meeting_newer_versions_gives_up_as_contended() {
        let store = Arc::new(MemoryStore::shared(None));
        let mut rival = 0;
        let result = update(
            &*store,
            "numbers.json",
            3,
            Current::<Vec<u32>>::default(),
            |numbers| {
                // Another writer gets in before each of ours.
                rival += 1;
                let text = crate::state::to_text("numbers.json", &vec![rival])?;
                let version = futures::executor::block_on(store.read("numbers.json"))?.version;
                futures::executor::block_on(store.write(
                    "numbers.json",
                    text.into(),
                    version.as_deref(),
                ))?;
                let text = crate::state::to_text("numbers.json", &numbers)?;
                Ok((numbers, text.into()))
            },
        )
        .await;
        assert!(matches!(result, Err(Error::Contended { .. })), "{result:?}");
        assert_eq!(rival, 3);
    }
}
