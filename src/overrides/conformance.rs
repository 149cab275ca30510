//! The behaviour every [`OverrideStore`] must show, as one suite any store can run.
//!
//! A store's tests call [`check_store`] with a function that opens the store afresh over the
//! same backing storage (an empty one at first), so persistence across a restart is checked
//! too. Failures panic with a message naming the broken promise.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{Override, OverrideStore};
use crate::calendar::State;

/// Runs the whole suite against the store that `open` returns. Every call to `open` must give
/// a new handle on the same storage, which starts out empty.
pub fn check_store(open: &dyn Fn() -> Arc<dyn OverrideStore>) {
    starts_empty_and_lists_what_was_put(open);
    put_with_the_same_id_replaces(open);
    remove_returns_the_override_once(open);
    overrides_survive_reopening(open);
    concurrent_puts_are_all_kept(open);
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

fn ids(store: &dyn OverrideStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .list()
        .expect("list must succeed")
        .into_iter()
        .map(|o| o.id)
        .collect();
    ids.sort();
    ids
}

fn clear(store: &dyn OverrideStore) {
    for item in store.list().expect("list must succeed") {
        store.remove(&item.id).expect("remove must succeed");
    }
}

fn starts_empty_and_lists_what_was_put(open: &dyn Fn() -> Arc<dyn OverrideStore>) {
    let store = open();
    assert!(ids(&*store).is_empty(), "a new store must be empty");
    store
        .put(sample("a", "staging", 60))
        .expect("put must succeed");
    store.put(sample("b", "qa", 30)).expect("put must succeed");
    assert_eq!(
        ids(&*store),
        ["a", "b"],
        "list must return every override put"
    );
    let listed = store.list().expect("list must succeed");
    let a = listed.iter().find(|o| o.id == "a").expect("a is listed");
    assert_eq!(
        *a,
        sample("a", "staging", 60),
        "an override must come back unchanged"
    );
    clear(&*store);
}

fn put_with_the_same_id_replaces(open: &dyn Fn() -> Arc<dyn OverrideStore>) {
    let store = open();
    store
        .put(sample("a", "staging", 60))
        .expect("put must succeed");
    store
        .put(sample("a", "staging", 120))
        .expect("put must succeed");
    let listed = store.list().expect("list must succeed");
    assert_eq!(
        listed.len(),
        1,
        "a put with an existing id must replace, not add"
    );
    assert_eq!(listed[0].until, sample("a", "staging", 120).until);
    clear(&*store);
}

fn remove_returns_the_override_once(open: &dyn Fn() -> Arc<dyn OverrideStore>) {
    let store = open();
    store
        .put(sample("a", "staging", 60))
        .expect("put must succeed");
    let removed = store.remove("a").expect("remove must succeed");
    assert_eq!(
        removed,
        Some(sample("a", "staging", 60)),
        "remove must return the override"
    );
    assert_eq!(
        store.remove("a").expect("remove must succeed"),
        None,
        "a second remove finds nothing"
    );
    assert_eq!(
        store.remove("never-existed").expect("remove must succeed"),
        None
    );
    assert!(ids(&*store).is_empty());
}

fn overrides_survive_reopening(open: &dyn Fn() -> Arc<dyn OverrideStore>) {
    let store = open();
    store
        .put(sample("kept", "staging", 60))
        .expect("put must succeed");
    store
        .put(sample("gone", "staging", 60))
        .expect("put must succeed");
    store.remove("gone").expect("remove must succeed");
    drop(store);
    let reopened = open();
    assert_eq!(
        ids(&*reopened),
        ["kept"],
        "a reopened store must hold what was stored before"
    );
    clear(&*reopened);
}

fn concurrent_puts_are_all_kept(open: &dyn Fn() -> Arc<dyn OverrideStore>) {
    let store = open();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for n in 0..5 {
                    store
                        .put(sample(&format!("t{thread}-{n}"), "staging", 60))
                        .expect("put must succeed");
                }
            });
        }
    });
    assert_eq!(ids(&*store).len(), 20, "no concurrent put may be lost");
    assert_eq!(
        ids(&*open()).len(),
        20,
        "every concurrent put must be persisted"
    );
    clear(&*store);
}
