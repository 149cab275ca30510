//! The supervisor: the service's tasks under one shutdown token, each task's end reported the
//! same way.
//!
//! A task runs until the token is cancelled. One that fails, or ends on its own before the
//! shutdown, is logged as such and cancels the token, so the others stop too; the first such
//! failure is what [`Supervisor::run`] returns. On shutdown every task gets its own budget to
//! finish; one that overruns it is abandoned with a warning.

use std::future::Future;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::{Error, Result};

/// How a supervised task ended.
pub type TaskResult = Result<()>;

/// A named task, the time it may take to stop once the shutdown begins, and how to end it
/// when it takes longer.
struct Running {
    name: &'static str,
    stop_budget: Duration,
    abort: AbortHandle,
    done: bool,
}

/// The service's tasks under one shutdown token.
pub struct Supervisor {
    shutdown: CancellationToken,
    tasks: JoinSet<(usize, TaskResult)>,
    running: Vec<Running>,
}

// === impl Supervisor ===

impl Supervisor {
    /// A supervisor with a fresh shutdown token.
    pub fn new() -> Self {
        Supervisor {
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
            running: Vec::new(),
        }
    }

    /// The token every task stops on; cancelling it stops the service.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Starts `task` as `name`; once the shutdown begins it has `stop_budget` to end.
    pub fn spawn(
        &mut self,
        name: &'static str,
        stop_budget: Duration,
        task: impl Future<Output = TaskResult> + Send + 'static,
    ) {
        let index = self.running.len();
        let abort = self.tasks.spawn(async move { (index, task.await) });
        self.running.push(Running {
            name,
            stop_budget,
            abort,
            done: false,
        });
    }

    /// Waits until the shutdown token is cancelled or a task ends, then stops every task and
    /// returns the first failure.
    pub async fn run(mut self) -> Result<()> {
        let mut failure = None;
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            Some(ended) = self.tasks.join_next() => failure = self.ended(ended),
        }
        self.shutdown.cancel();
        let stopping = tokio::time::Instant::now();
        loop {
            let next_deadline = self
                .running
                .iter()
                .filter(|task| !task.done)
                .map(|task| stopping + task.stop_budget)
                .min();
            let Some(deadline) = next_deadline else { break };
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(ended)) => {
                    let failed = self.ended(ended);
                    failure = failure.or(failed);
                }
                Ok(None) => break,
                Err(_) => self.abandon_overdue(stopping),
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Ends the tasks whose stop budget has run out.
    fn abandon_overdue(&mut self, stopping: tokio::time::Instant) {
        let now = tokio::time::Instant::now();
        for task in self.running.iter_mut().filter(|task| !task.done) {
            if stopping + task.stop_budget <= now {
                tracing::warn!(task = task.name, "task did not stop in time; abandoned");
                task.abort.abort();
                task.done = true;
            }
        }
    }

    /// Reports how a task ended; a failure, or an end before the shutdown, is returned.
    fn ended(
        &mut self,
        ended: std::result::Result<(usize, TaskResult), tokio::task::JoinError>,
    ) -> Option<Error> {
        let (index, result) = match ended {
            Ok(ended) => ended,
            Err(join) => {
                let task = self
                    .running
                    .iter_mut()
                    .find(|task| task.abort.id() == join.id());
                let name = task.map_or("unknown", |task| {
                    task.done = true;
                    task.name
                });
                if join.is_cancelled() {
                    return None;
                }
                tracing::error!(task = name, error = %join, "task panicked; stopping");
                return Some(Error::Panicked { task: name });
            }
        };
        self.running[index].done = true;
        let name = self.running[index].name;
        match result {
            Err(error) => {
                tracing::error!(task = name, %error, "task failed; stopping");
                Some(error)
            }
            Ok(()) if !self.shutdown.is_cancelled() => {
                tracing::error!(task = name, "task ended before the shutdown; stopping");
                Some(Error::Ended { task: name })
            }
            Ok(()) => {
                tracing::debug!(task = name, "task stopped");
                None
            }
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::new()
    }
}
