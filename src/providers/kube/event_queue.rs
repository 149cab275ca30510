//! Events written apart from scale writes: a bounded queue with its own rate.
//!
//! A scale write hands its Event to [`EventQueue::push`] and goes on at once; a task writes
//! the queue at `event_qps`. As Kubernetes' own event correlator does, the same reason on the
//! same object becomes one Event with a count: while it waits in the queue, and afterwards by
//! patching the count of the Event already written. When the queue is full, a new Event is
//! dropped and counted (`curfew_kube_events_dropped_total`). A failed Event is logged, never
//! returned: it cannot fail an action.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::limiter::Limiter;
use crate::telemetry;

/// Events already written that a repeat may still add its count to; the memory starts over
/// beyond (it only saves Events, it is not needed for correctness).
const WRITTEN_LIMIT: usize = 4096;

/// How often a flush looks whether the queue has drained.
const FLUSH_POLL: Duration = Duration::from_millis(10);

/// What makes two Events one: the object and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    kind: String,
    name: String,
    reason: String,
}

impl Key {
    fn of(event: &Event) -> Key {
        let object = &event.involved_object;
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        Key {
            namespace: text(&object.namespace),
            kind: text(&object.kind),
            name: text(&object.name),
            reason: text(&event.reason),
        }
    }
}

/// The queue's settings.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Events written per second.
    pub qps: f64,
    /// Events waiting at most.
    pub capacity: usize,
    /// How long one Event write may take.
    pub write_timeout: Duration,
}

#[derive(Default)]
struct State {
    order: VecDeque<Key>,
    /// Boxed: a map keeps room for more entries than it holds, and an Event is about a
    /// kilobyte; a full queue of 1,000 held 2.4 MB with the Events in the map.
    waiting: HashMap<Key, Box<Event>>,
    /// Whether the writer holds an Event it has taken from the queue.
    writing: bool,
    /// Name and count of Events written, by key.
    written: HashMap<Key, (String, i32)>,
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
    capacity: usize,
}

impl Shared {
    fn new(capacity: usize) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::default(),
            wake: Notify::new(),
            capacity: capacity.max(1),
        })
    }
}

/// The bounded queue of Events and the task that writes it.
pub struct EventQueue {
    shared: Arc<Shared>,
    writer: JoinHandle<()>,
}

// === impl EventQueue ===

impl EventQueue {
    /// Starts the writer task over `client`.
    pub fn start(client: kube::Client, settings: QueueSettings) -> EventQueue {
        let shared = Shared::new(settings.capacity);
        let burst = settings.qps.ceil().clamp(1.0, 1000.0) as u32;
        let limiter = Limiter::new(settings.qps, burst);
        let writer = tokio::spawn(write_all(
            shared.clone(),
            client,
            limiter,
            settings.write_timeout,
        ));
        EventQueue { shared, writer }
    }

    /// Queues `event` without waiting: joined to a waiting Event of the same reason on the
    /// same object, or dropped and counted when the queue is full.
    pub fn push(&self, event: Event) {
        let key = Key::of(&event);
        let mut state = self.shared.state.lock();
        if let Some(waiting) = state.waiting.get_mut(&key) {
            waiting.count = Some(waiting.count.unwrap_or(1) + event.count.unwrap_or(1));
            waiting.message = event.message;
            waiting.last_timestamp = event.last_timestamp;
            return;
        }
        if state.order.len() >= self.shared.capacity {
            drop(state);
            metrics::counter!(telemetry::KUBE_EVENTS_DROPPED).increment(1);
            tracing::debug!(object = %key.name, reason = %key.reason, "Event queue full: dropped");
            return;
        }
        state.order.push_back(key.clone());
        state.waiting.insert(key, Box::new(event));
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Events waiting to be written.
    pub fn len(&self) -> usize {
        self.shared.state.lock().order.len()
    }

    /// Whether no Event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every queued Event is written, at most `timeout`; what still waits then
    /// is dropped and counted. Returns how many were dropped.
    pub async fn flush(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut state = self.shared.state.lock();
                if state.order.is_empty() && !state.writing {
                    return 0;
                }
                if tokio::time::Instant::now() >= deadline {
                    let dropped = state.order.len();
                    state.order.clear();
                    state.waiting.clear();
                    drop(state);
                    metrics::counter!(telemetry::KUBE_EVENTS_DROPPED).increment(dropped as u64);
                    if dropped > 0 {
                        tracing::info!(dropped, "Events still waiting at exit: dropped");
                    }
                    return dropped;
                }
            }
            tokio::time::sleep(FLUSH_POLL).await;
        }
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

/// The writer task: takes Events in order, paced by `limiter`, and writes each.
async fn write_all(
    shared: Arc<Shared>,
    client: kube::Client,
    limiter: Limiter,
    write_timeout: Duration,
) {
    loop {
        let next = {
            let mut state = shared.state.lock();
            let next = state.order.pop_front().and_then(|key| {
                let event = state.waiting.remove(&key)?;
                let written = state.written.get(&key).cloned();
                Some((key, event, written))
            });
            state.writing = next.is_some();
            next
        };
        let Some((key, event, written)) = next else {
            shared.wake.notified().await;
            continue;
        };
        limiter.acquire().await;
        let write = write_one(&client, &event, written.as_ref());
        let name = match tokio::time::timeout(write_timeout, write).await {
            Ok(Ok(name)) => Some(name),
            Ok(Err(error)) => {
                tracing::debug!(%error, reason = ?event.reason, "cannot write an Event");
                None
            }
            Err(_) => {
                tracing::debug!(reason = ?event.reason, "writing an Event timed out");
                None
            }
        };
        let mut state = shared.state.lock();
        if let Some(name) = name {
            let count = written.map_or(0, |(_, count)| count) + event.count.unwrap_or(1);
            if state.written.len() >= WRITTEN_LIMIT {
                state.written.clear();
            }
            state.written.insert(key, (name, count));
        }
        state.writing = false;
    }
}

/// Writes `event`: adds its count to the Event already written for the same object and
/// reason (a new one when that is gone), or creates it. Returns the Event's name.
async fn write_one(
    client: &kube::Client,
    event: &Event,
    written: Option<&(String, i32)>,
) -> kube::Result<String> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    if let Some((name, count)) = written {
        let patch = json!({
            "count": count + event.count.unwrap_or(1),
            "message": event.message,
            "lastTimestamp": event.last_timestamp,
        });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(name.clone()),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    let created = api.create(&PostParams::default(), event).await?;
    Ok(created.metadata.name.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    /// A queue whose writer never runs, so what it holds can be looked at.
    fn idle(capacity: usize) -> EventQueue {
        EventQueue {
            shared: Shared::new(capacity),
            writer: tokio::spawn(std::future::pending()),
        }
    }

    fn mk_event(name: &str, reason: &str, message: &str) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: Some("Deployment".into()),
                namespace: Some("shop".into()),
                name: Some(name.into()),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            count: Some(1),
            ..Event::default()
        }
    }

    #[tokio::test]
    async fn the_same_reason_on_the_same_object_waits_as_one_event_with_a_count() {
        let queue = idle(10);
        queue.push(mk_event("web", "ScaledDown", "first"));
        queue.push(mk_event("web", "ScaledDown", "second"));
        queue.push(mk_event("web", "ScaledUp", "other reason"));
        queue.push(mk_event("api", "ScaledDown", "other object"));
        assert_eq!(queue.len(), 3);
        let state = queue.shared.state.lock();
        let key = Key::of(&mk_event("web", "ScaledDown", ""));
        let joined = &state.waiting[&key];
        assert_eq!(joined.count, Some(2));
        assert_eq!(
            joined.message.as_deref(),
            Some("second"),
            "the latest message"
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_new_events_at_once_and_a_flush_gives_up_in_time() {
        let queue = idle(2);
        for name in ["a", "b", "c", "d"] {
            queue.push(mk_event(name, "ScaledDown", "down"));
        }
        assert_eq!(queue.len(), 2, "the queue keeps its bound");
        queue.push(mk_event("a", "ScaledDown", "again"));
        assert_eq!(queue.len(), 2, "a repeat joins what waits, even when full");
        let dropped = queue.flush(Duration::from_millis(20)).await;
        assert_eq!(dropped, 2, "what never got written is dropped");
        assert!(queue.is_empty());
    }
}
