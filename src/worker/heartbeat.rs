//! The heartbeat: every third of the visibility timeout, renews this worker's lease on the
//! entries it is running, so a job longer than the visibility timeout is neither taken over
//! nor run twice while its worker lives. A job found owned by another worker (this one stalled
//! past its lease and the job was taken over) is cancelled here: its outcome would be
//! rejected anyway.

use super::running::RunningJobs;
use crate::broker::Broker;
use crate::outage::Connectivity;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Renews leases; see the module doc.
pub(crate) struct Heartbeat {
    /// Where leases are renewed.
    pub(crate) broker: Broker,
    /// This worker's consumer name: the owner of the leases.
    pub(crate) consumer: String,
    /// Time between beats.
    pub(crate) interval: Duration,
    /// The jobs whose leases are renewed.
    pub(crate) running: Arc<RunningJobs>,
    /// Whether Redis answers.
    pub(crate) connectivity: Arc<Connectivity>,
}

impl Heartbeat {
    /// Beats until `stop` fires.
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = stop.cancelled() => return,
            }
            self.beat().await;
        }
    }

    /// Renews every running entry's lease, one script call per group.
    pub(crate) async fn beat(&self) {
        for (group, (keys, entries)) in self.running.leases() {
            let owned = match self.broker.heartbeat(&keys, &self.consumer, &entries).await {
                Ok(owned) => {
                    self.connectivity.ok();
                    owned
                }
                Err(e) => {
                    self.connectivity.failed("renewing job leases", &e);
                    continue;
                }
            };
            for ((_, entry_id), still_ours) in entries.into_iter().zip(owned) {
                if still_ours {
                    continue;
                }
                let key = (group.clone(), entry_id);
                if let Some(lost) = self.running.finish(&key) {
                    lost.cancel.cancel();
                    tracing::warn!(
                        group = %group,
                        job_id = %lost.entry.job_id,
                        entry = %key.1,
                        "lost the lease on a running job (this worker stalled longer than the visibility timeout and another worker took the job over): cancelled here"
                    );
                }
            }
        }
    }
}
