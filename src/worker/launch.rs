//! Starts a job task for each delivered entry, whoever delivered it (the fetcher's fresh reads
//! or the reaper's take-overs), and routes its outcome to the finisher.

use super::executor::{self, Completion};
use super::shared::Shared;
pub(crate) use super::slot::Slot;
use crate::broker::Delivery;
use crate::keys::Keys;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Spawns job tasks; see the module doc.
pub(crate) struct Launcher<S> {
    /// What each job's execution reads.
    pub(crate) shared: Arc<Shared<S>>,
    /// The job tasks, which a stop waits for.
    pub(crate) jobs: TaskTracker,
    /// Where outcomes go: the finisher.
    pub(crate) done: mpsc::UnboundedSender<Completion>,
}

impl<S> Clone for Launcher<S> {
    fn clone(&self) -> Self {
        Launcher {
            shared: self.shared.clone(),
            jobs: self.jobs.clone(),
            done: self.done.clone(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Launcher<S> {
    /// Runs `delivery` in a task of its own; `slot` is released when its handler is done.
    pub(crate) fn launch(&self, keys: Keys, delivery: Delivery, slot: Slot) {
        let shared = self.shared.clone();
        let done = self.done.clone();
        let unwritten = self.shared.unwritten.clone();
        // A job's future is several KB (the handler, middleware, timeout and cancel states);
        // boxed, the task holds a pointer and the runtime moves 16 bytes, not the whole state,
        // each time it stores or finishes the task.
        self.jobs.spawn(Box::pin(async move {
            if let Some(completion) = executor::execute(shared, keys, delivery, slot).await {
                // The finisher outlives every job task, so the send cannot fail.
                unwritten.sent();
                let _ = done.send(completion);
            }
        }));
    }
}
