//! In-process workers and schedulers run on the test's runtime, clients, and the handlers
//! several tests register.

use super::deployment::Deployment;
use streamworker::{Client, Scheduler, TaskError, Worker};
use tokio_util::sync::CancellationToken;

/// A worker or scheduler running on a task of its own until [`stop`](Running::stop).
pub struct Running {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<streamworker::Result<()>>,
}

impl Running {
    /// Runs `worker` until stopped.
    pub fn worker<S: Clone + Send + Sync + 'static>(worker: Worker<S>) -> Running {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
        Running { stop, handle }
    }

    /// Runs `scheduler` until stopped.
    pub fn scheduler(scheduler: Scheduler) -> Running {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(scheduler.run(stop.clone().cancelled_owned()));
        Running { stop, handle }
    }

    /// Asks it to stop and waits until it returned, asserting it returned `Ok`.
    pub async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A worker serving `group` whose only task, `task`, succeeds at once ([`noop`]).
pub fn noop_worker(url: &str, group: &str, task: &str) -> Running {
    Running::worker(
        Worker::builder(url)
            .group(group)
            .task(task, noop)
            .build()
            .unwrap(),
    )
}

/// A client of the test's Redis (a server or a cluster).
pub async fn client(redis: &impl Deployment) -> Client {
    Client::connect(&redis.url()).await.unwrap()
}

/// Fails without retry: the job goes dead as `failed without retry: boom`.
pub async fn boom(_: serde_json::Value) -> Result<(), TaskError> {
    Err(TaskError::fatal("boom"))
}

/// Succeeds with the result `"done"`.
pub async fn done(_: serde_json::Value) -> Result<String, TaskError> {
    Ok("done".into())
}

/// Succeeds with no result.
pub async fn noop(_: serde_json::Value) -> Result<(), TaskError> {
    Ok(())
}
