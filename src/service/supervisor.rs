//! The supervisor: the service's tasks under one shutdown token, each task's end reported the
//! same way.
//!
//! A task runs until the token is cancelled. One that fails, panics, or ends on its own before
//! the shutdown is logged as such and cancels the token at once, so the others stop too; the
//! first such failure is what [`Supervisor::run`] returns. On shutdown every task gets its own
//! budget to finish; one that overruns it is abandoned with a warning.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
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
    tasks: JoinSet<(usize, Option<Error>)>,
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
        let shutdown = self.shutdown.clone();
        let abort = self.tasks.spawn(async move {
            let ended = AssertUnwindSafe(task).catch_unwind().await;
            (index, report(name, ended, &shutdown))
        });
        self.running.push(Running {
            name,
            stop_budget,
            abort,
            done: false,
        });
    }

    /// Waits until the shutdown token is cancelled (by a signal, or by a task that failed),
    /// then gives every task its budget to stop and returns the first failure.
    pub async fn run(mut self) -> Result<()> {
        self.shutdown.cancelled().await;
        let stopping = tokio::time::Instant::now();
        let mut failure = None;
        loop {
            let next_deadline = self
                .running
                .iter()
                .filter(|task| !task.done)
                .map(|task| stopping + task.stop_budget)
                .min();
            let Some(deadline) = next_deadline else { break };
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok((index, failed)))) => {
                    self.running[index].done = true;
                    failure = failure.or(failed);
                }
                Ok(Some(Err(aborted))) => {
                    for task in &mut self.running {
                        if task.abort.id() == aborted.id() {
                            task.done = true;
                        }
                    }
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
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::new()
    }
}

/// Logs how task `name` ended and, when it failed, panicked or ended before the shutdown,
/// cancels `shutdown` and returns why.
fn report(
    name: &'static str,
    ended: std::thread::Result<TaskResult>,
    shutdown: &CancellationToken,
) -> Option<Error> {
    let failure = match ended {
        Err(_) => Error::Panicked { task: name },
        Ok(Err(error)) => error,
        Ok(Ok(())) if !shutdown.is_cancelled() => Error::Ended { task: name },
        Ok(Ok(())) => {
            tracing::debug!(task = name, "task stopped");
            return None;
        }
    };
    tracing::error!(task = name, error = %failure, "task failed; stopping");
    shutdown.cancel();
    Some(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_task_stops_the_others_and_its_error_is_returned() {
        let mut supervisor = Supervisor::new();
        let shutdown = supervisor.shutdown().clone();
        supervisor.spawn("waits", Duration::from_secs(1), async move {
            shutdown.cancelled().await;
            Ok(())
        });
        supervisor.spawn("fails", Duration::from_secs(1), async {
            Err(Error::LeadershipLost)
        });
        let result = supervisor.run().await;
        assert!(matches!(result, Err(Error::LeadershipLost)), "{result:?}");
    }

    #[tokio::test]
    async fn a_task_ending_early_or_panicking_is_a_failure_and_a_cancelled_one_is_not() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("ends", Duration::from_secs(1), async { Ok(()) });
        let result = supervisor.run().await;
        assert!(
            matches!(result, Err(Error::Ended { task: "ends" })),
            "{result:?}"
        );

        let mut supervisor = Supervisor::new();
        supervisor.spawn("panics", Duration::from_secs(1), async {
            panic!("a bug");
        });
        let result = supervisor.run().await;
        assert!(
            matches!(result, Err(Error::Panicked { task: "panics" })),
            "{result:?}"
        );

        let mut supervisor = Supervisor::new();
        let shutdown = supervisor.shutdown().clone();
        supervisor.spawn("stops", Duration::from_secs(1), async move {
            shutdown.cancelled().await;
            Ok(())
        });
        supervisor.shutdown().cancel();
        assert!(supervisor.run().await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_overruns_its_stop_budget_is_abandoned() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("stuck", Duration::from_secs(2), async {
            std::future::pending::<()>().await;
            Ok(())
        });
        supervisor.shutdown().cancel();
        let started = tokio::time::Instant::now();
        assert!(supervisor.run().await.is_ok());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
