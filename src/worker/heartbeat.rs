//! The heartbeat: every third of the visibility timeout, renews this worker's lease on the
//! entries it is running, so a job longer than the visibility timeout is neither taken over
//! nor run twice while its worker lives. A job found owned by another worker (this one stalled
//! past its lease and the job was taken over) is cancelled here: its outcome would be
//! rejected anyway.

use super::Shared;
use crate::keys::GroupName;
use crate::priority::Priority;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Renews leases; see the module doc.
pub(crate) struct Heartbeat<S> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Heartbeat<S> {
    /// Beats until `stop` fires.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let interval = self.shared.config.heartbeat_interval();
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
            self.beat().await;
        }
    }

    /// Renews every running entry's lease, one script call per group.
    pub(crate) async fn beat(&self) {
        let mut by_group: BTreeMap<GroupName, (crate::keys::Keys, Vec<(Priority, String)>)> =
            BTreeMap::new();
        {
            let running = self.shared.running.lock().expect("running map");
            for r in running.values() {
                by_group
                    .entry(r.keys.group().clone())
                    .or_insert_with(|| (r.keys.clone(), Vec::new()))
                    .1
                    .push((r.entry.priority, r.entry.entry_id.clone()));
            }
        }
        for (group, (keys, entries)) in by_group {
            let owned = match self
                .shared
                .broker
                .heartbeat(&keys, &self.shared.config.consumer, &entries)
                .await
            {
                Ok(owned) => {
                    self.shared.connectivity.ok();
                    owned
                }
                Err(e) => {
                    self.shared.connectivity.failed("renewing job leases", &e);
                    continue;
                }
            };
            for ((_, entry_id), still_ours) in entries.into_iter().zip(owned) {
                if still_ours {
                    continue;
                }
                let lost = self
                    .shared
                    .running
                    .lock()
                    .expect("running map")
                    .remove(&(group.clone(), entry_id.clone()));
                if let Some(lost) = lost {
                    lost.cancel.cancel();
                    tracing::warn!(
                        group = %group,
                        job_id = %lost.entry.job_id,
                        entry = %entry_id,
                        "lost the lease on a running job (this worker stalled longer than the visibility timeout and another worker took the job over): cancelled here"
                    );
                }
            }
        }
    }
}
