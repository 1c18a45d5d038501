//! [`Worker::run`]: start every part, wait for the shutdown signal, stop the parts in order.

use super::Worker;
use crate::error::Result;
use std::future::Future;

impl<S: Clone + Send + Sync + 'static> Worker<S> {
    /// Serves the groups until `shutdown` completes, then stops in two phases: stop fetching,
    /// let in-flight jobs finish within the grace period, hand the rest back to their streams.
    /// Returns an error only when it cannot start (Redis unreachable, say).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let started = self.start().await?;
        shutdown.await;
        started.stop().await;
        Ok(())
    }
}
