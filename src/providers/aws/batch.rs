//! Calls that take many ids at once (StopInstances, StartInstances, CreateTags, DeleteTags, and
//! the Auto Scaling CreateOrUpdateTags and DeleteTags, which take tags of many groups), shared
//! by the actions that run at the same time.
//!
//! The first action to ask for a call of a kind sends it at once with its own id; the actions
//! that ask while that call is in flight wait together and go out as one call when it
//! returns (group commit). So a lone action never waits for a batch to fill, and a boundary
//! that stops a hundred instances makes a handful of calls. When a batched call fails for a
//! reason retrying will not fix (one unknown id fails the whole call), each id is sent on its
//! own, so that every action gets its own answer.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::providers::{Error, Result};

/// Ids sent in one call at most.
pub const MAX_IDS: usize = 100;

/// Answers to the actions waiting on one call, with the item each sends.
type Waiters<T> = Vec<(T, oneshot::Sender<Result<()>>)>;

struct Queue<T> {
    waiting: Waiters<T>,
    /// Whether a call of this kind is in flight (its sender drains the queue).
    busy: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            waiting: Vec::new(),
            busy: false,
        }
    }
}

type Queues<K, T> = Arc<Mutex<HashMap<K, Queue<T>>>>;

/// Group commit of calls by kind `K`, each carrying items `T` (an id, or an id with what to
/// write to it).
pub struct Batcher<K, T = String> {
    queues: Queues<K, T>,
}

impl<K, T> Default for Batcher<K, T> {
    fn default() -> Self {
        Batcher {
            queues: Arc::default(),
        }
    }
}

// === impl Batcher ===

impl<K, T> Batcher<K, T>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Display + Send + 'static,
{
    /// Sends `id` in the next call of kind `key`; `send` makes one call for a list of items.
    pub async fn submit<F, Fut>(&self, key: K, id: T, send: F) -> Result<()>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut queues = self.queues.lock();
            let queue = queues.entry(key.clone()).or_default();
            queue.waiting.push((id.clone(), answer));
            !std::mem::replace(&mut queue.busy, true)
        };
        if lead {
            // A task of its own: the queue drains even when this action is dropped.
            tokio::spawn(drain(self.queues.clone(), key, send));
        }
        answered.await.unwrap_or_else(|_| {
            Err(Error::Server {
                operation: "batch".to_string(),
                target: id.to_string(),
                code: "Cancelled".to_string(),
                detail: "the batched call was abandoned".to_string(),
            })
        })
    }
}

/// Sends the queue of `key` in calls of up to [`MAX_IDS`] items until it is empty.
async fn drain<K, T, F, Fut>(queues: Queues<K, T>, key: K, send: F)
where
    K: Eq + Hash,
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    loop {
        let batch: Waiters<T> = {
            let mut queues = queues.lock();
            let Some(queue) = queues.get_mut(&key) else {
                return;
            };
            if queue.waiting.is_empty() {
                queues.remove(&key);
                return;
            }
            let take = queue.waiting.len().min(MAX_IDS);
            queue.waiting.drain(..take).collect()
        };
        let ids: Vec<T> = batch.iter().map(|(id, _)| id.clone()).collect();
        match send(ids).await {
            Ok(()) => {
                for (_, answer) in batch {
                    let _ = answer.send(Ok(()));
                }
            }
            Err(error) if batch.len() > 1 && !error.is_retryable() => {
                for (id, answer) in batch {
                    let _ = answer.send(send(vec![id]).await);
                }
            }
            Err(error) => {
                for (_, answer) in batch {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn unknown(ids: &[String]) -> Error {
        Error::NotFound {
            operation: "StopInstances".into(),
            target: ids.join(","),
        }
    }

    /// Submits `id` to `batcher`; each call is recorded in `calls` and takes 30 ms.
    async fn stop(
        batcher: Arc<Batcher<&'static str>>,
        calls: Arc<Mutex<Vec<Vec<String>>>>,
        id: String,
    ) -> Result<()> {
        batcher
            .submit("stop", id, move |ids| {
                let calls = calls.clone();
                async move {
                    calls.lock().push(ids);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok(())
                }
            })
            .await
    }

    #[tokio::test]
    async fn a_lone_action_goes_at_once_and_those_asking_meanwhile_share_the_next_call() {
        let batcher: Arc<Batcher<&str>> = Arc::default();
        let calls = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let first = tokio::spawn(stop(batcher.clone(), calls.clone(), "i-0".into()));
        while calls.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        let rest = (1..10).map(|n| stop(batcher.clone(), calls.clone(), format!("i-{n}")));
        let results = futures::future::join_all(rest).await;
        assert!(first.await.unwrap().is_ok());
        assert!(results.iter().all(Result::is_ok));
        let calls = calls.lock().clone();
        assert_eq!(
            calls.len(),
            2,
            "the first alone, the rest together: {calls:?}"
        );
        assert_eq!(calls[0], vec!["i-0"]);
        assert_eq!(calls[1].len(), 9);
    }

    #[tokio::test]
    async fn a_batch_that_fails_for_good_is_sent_again_id_by_id() {
        let batcher: Arc<Batcher<&str>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let submits = ["i-1", "i-gone", "i-2", "i-3"].map(|id| {
            let (batcher, calls) = (batcher.clone(), calls.clone());
            async move {
                batcher
                    .submit("stop", id.to_string(), move |ids| {
                        let calls = calls.clone();
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            if ids.iter().any(|id| id == "i-gone") {
                                Err(unknown(&ids))
                            } else {
                                Ok(())
                            }
                        }
                    })
                    .await
            }
        });
        let results = futures::future::join_all(submits).await;
        assert!(results[0].is_ok());
        assert!(matches!(&results[1], Err(Error::NotFound { target, .. }) if target == "i-gone"));
        assert!(results[2].is_ok() && results[3].is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1 + 1 + 3);
    }
}
