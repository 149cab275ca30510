//! The behaviour every [`OverrideStore`] must show, as one suite any store can run.
//!
//! A store's tests call [`check_store`] with a function that opens the store afresh over the
//! same backing storage (an empty one at first), so persistence across a restart is checked
//! too. Failures panic with a message naming the broken promise. The suite runs inside the
//! caller's Tokio runtime, so a store may talk to a server.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::OverrideStore;
use crate::calendar::State;
use crate::domain::Override;

/// Opens a store over the same backing data each time it is called.
pub type OpenStore<'a> = dyn Fn() -> Arc<dyn OverrideStore> + Sync + 'a;

/// Runs the whole suite against the store that `open` returns. Every call to `open` must give
/// a new handle on the same storage, which starts out empty.
pub async fn check_store(open: &OpenStore<'_>) {
    starts_empty_and_lists_what_was_put(open).await;
    put_with_the_same_id_replaces(open).await;
    remove_returns_the_override_once(open).await;
    remove_all_returns_those_that_existed_and_keeps_the_rest(open).await;
    overrides_survive_reopening(open).await;
    concurrent_puts_are_all_kept(open).await;
}

fn sample(id: &str, environment: &str, minutes: i64) -> Override {
    let base: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    Override {
        id: id.to_string(),
        environment: environment.to_string(),
        state: State::Up,
        created_at: base,
        until: base + Duration::minutes(minutes),
        reason: format!("suite {id}"),
        created_by: "suite".to_string(),
    }
}

async fn ids(store: &dyn OverrideStore) -> Vec<String> {
    sorted_ids(store.list().await.expect("list must succeed"))
}

/// The ids of `overrides`, sorted.
fn sorted_ids(overrides: Vec<Override>) -> Vec<String> {
    let mut ids: Vec<String> = overrides.into_iter().map(|o| o.id).collect();
    ids.sort();
    ids
}

async fn clear(store: &dyn OverrideStore) {
    for item in store.list().await.expect("list must succeed") {
        store.remove(&item.id).await.expect("remove must succeed");
    }
}

async fn starts_empty_and_lists_what_was_put(open: &OpenStore<'_>) {
    let store = open();
    assert!(ids(&*store).await.is_empty(), "a new store must be empty");
    store
        .put(sample("a", "staging", 60))
        .await
        .expect("put must succeed");
    store
        .put(sample("b", "qa", 30))
        .await
        .expect("put must succeed");
    assert_eq!(
        ids(&*store).await,
        ["a", "b"],
        "list must return every override put"
    );
    let listed = store.list().await.expect("list must succeed");
    let a = listed.iter().find(|o| o.id == "a").expect("a is listed");
    assert_eq!(
        *a,
        sample("a", "staging", 60),
        "an override must come back unchanged"
    );
    clear(&*store).await;
}

async fn put_with_the_same_id_replaces(open: &OpenStore<'_>) {
    let store = open();
    store
        .put(sample("a", "staging", 60))
        .await
        .expect("put must succeed");
    store
        .put(sample("a", "staging", 120))
        .await
        .expect("put must succeed");
    let listed = store.list().await.expect("list must succeed");
    assert_eq!(
        listed.len(),
        1,
        "a put with an existing id must replace, not add"
    );
    assert_eq!(listed[0].until, sample("a", "staging", 120).until);
    clear(&*store).await;
}

async fn remove_returns_the_override_once(open: &OpenStore<'_>) {
    let store = open();
    store
        .put(sample("a", "staging", 60))
        .await
        .expect("put must succeed");
    let removed = store.remove("a").await.expect("remove must succeed");
    assert_eq!(
        removed,
        Some(sample("a", "staging", 60)),
        "remove must return the override"
    );
    assert_eq!(
        store.remove("a").await.expect("remove must succeed"),
        None,
        "a second remove finds nothing"
    );
    assert_eq!(
        store
            .remove("never-existed")
            .await
            .expect("remove must succeed"),
        None
    );
    assert!(ids(&*store).await.is_empty());
}

async fn remove_all_returns_those_that_existed_and_keeps_the_rest(open: &OpenStore<'_>) {
    let store = open();
    for id in ["a", "b", "c"] {
        store
            .put(sample(id, "staging", 60))
            .await
            .expect("put must succeed");
    }
    let wanted = [
        "a".to_string(),
        "c".to_string(),
        "never-existed".to_string(),
    ];
    let removed = sorted_ids(
        store
            .remove_all(&wanted)
            .await
            .expect("remove_all must succeed"),
    );
    assert_eq!(removed, ["a", "c"], "remove_all returns what existed");
    assert_eq!(ids(&*store).await, ["b"], "remove_all keeps the rest");
    assert_eq!(ids(&*open()).await, ["b"], "remove_all is persisted");
    clear(&*store).await;
}

async fn overrides_survive_reopening(open: &OpenStore<'_>) {
    let store = open();
    store
        .put(sample("kept", "staging", 60))
        .await
        .expect("put must succeed");
    store
        .put(sample("gone", "staging", 60))
        .await
        .expect("put must succeed");
    store.remove("gone").await.expect("remove must succeed");
    drop(store);
    let reopened = open();
    assert_eq!(
        ids(&*reopened).await,
        ["kept"],
        "a reopened store must hold what was stored before"
    );
    clear(&*reopened).await;
}

async fn concurrent_puts_are_all_kept(open: &OpenStore<'_>) {
    let store = open();
    let writers = (0..4).map(|thread| {
        let store = store.clone();
        async move {
            for n in 0..5 {
                store
                    .put(sample(&format!("t{thread}-{n}"), "staging", 60))
                    .await
                    .expect("put must succeed");
            }
        }
    });
    futures::future::join_all(writers).await;
    assert_eq!(
        ids(&*store).await.len(),
        20,
        "no concurrent put may be lost"
    );
    assert_eq!(
        ids(&*open()).await.len(),
        20,
        "every concurrent put must be persisted"
    );
    clear(&*store).await;
}
