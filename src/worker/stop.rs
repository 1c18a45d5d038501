//! The ordered stop of a started worker.
//!
//! 1. Stop taking work: the fetchers finish the read in flight (bounded by the fetch block)
//!    and the reaper its pass, and they exit; nothing new starts after this. Heartbeats go on
//!    until the last job is finished or handed back.
//! 2. Let running jobs finish within the shutdown grace; when it is over, cancel what still
//!    runs and hand it back to its stream, then wait for those tasks to end.
//! 3. The finisher writes the outcomes already sent and exits once every sender is gone.
//! 4. Then the background loops: the heartbeat, the promoters, the depth sampler and the
//!    metrics endpoint, the pub/sub listener and the scheduler, so retries scheduled above get
//!    promoted by whichever worker is still running.

use super::running::Running;
use super::shared::Shared;
use crate::broker::EntryRef;
use crate::error::Result;
use crate::keys::Keys;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A started worker: what its stop needs, part by part.
pub(super) struct Started<S> {
    /// The job path's shared state: the running jobs to hand back, the broker, the settings.
    pub(super) shared: Arc<Shared<S>>,
    /// Stops the fetchers and the reaper (step 1).
    pub(super) stop_fetching: CancellationToken,
    /// Stops the background loops (step 4).
    pub(super) stop_background: CancellationToken,
    /// The job tasks (step 2).
    pub(super) jobs: TaskTracker,
    /// The fetchers, one per group, and the reaper.
    pub(super) fetchers: Vec<JoinHandle<()>>,
    /// The finisher; exits once every outcome sender is gone.
    pub(super) finisher: JoinHandle<()>,
    /// The heartbeat.
    pub(super) heartbeat: JoinHandle<()>,
    /// The promoters, one per group.
    pub(super) promoters: Vec<JoinHandle<()>>,
    /// The depth sampler and the metrics endpoint, when configured.
    pub(super) samplers: Vec<JoinHandle<()>>,
    /// The pub/sub listener.
    pub(super) listener: JoinHandle<()>,
    /// The scheduler, when the worker has schedules.
    pub(super) scheduler: Option<JoinHandle<Result<()>>>,
}

impl<S> Started<S> {
    /// Stops every part in the order of the module doc.
    pub(super) async fn stop(self) {
        // 1. Stop taking work.
        tracing::info!("stopping: no new jobs are fetched");
        self.stop_fetching.cancel();
        for f in self.fetchers {
            let _ = f.await;
        }
        // 2. Let running jobs finish within the grace period, then hand back the rest.
        self.jobs.close();
        if tokio::time::timeout(self.shared.config.shutdown_grace, self.jobs.wait())
            .await
            .is_err()
        {
            hand_back_running(&self.shared).await;
            self.jobs.wait().await;
        }
        // 3. The finisher drains the outcomes already sent.
        let _ = self.finisher.await;
        // 4. The background loops stop last.
        self.stop_background.cancel();
        let _ = self.heartbeat.await;
        for p in self.promoters.into_iter().chain(self.samplers) {
            let _ = p.await;
        }
        let _ = self.listener.await;
        if let Some(scheduler) = self.scheduler {
            let _ = scheduler.await;
        }
        tracing::info!("worker stopped");
    }
}

/// At the end of the grace period: cancels every running job and returns its entry to its
/// stream (`lua/hand_back.lua`), so another worker starts it at once.
async fn hand_back_running<S>(shared: &Shared<S>) {
    let running: Vec<Running> = shared.running.drain();
    if running.is_empty() {
        return;
    }
    let mut by_group: BTreeMap<String, (Keys, Vec<(EntryRef, bool)>)> = BTreeMap::new();
    for r in running {
        r.cancel.cancel();
        by_group
            .entry(r.keys.group().to_string())
            .or_insert_with(|| (r.keys.clone(), Vec::new()))
            .1
            .push((r.entry, r.tracked));
    }
    for (keys, entries) in by_group.values() {
        match shared
            .broker
            .hand_back(keys, &shared.config.consumer, entries)
            .await
        {
            Ok(report) => tracing::warn!(
                group = %keys.group(),
                handed_back = entries.len() - report.stale.len() - report.missing.len(),
                "grace period over: unfinished jobs handed back to their streams"
            ),
            Err(e) => {
                tracing::error!(group = %keys.group(), error = %e, "could not hand back unfinished jobs; they stay in this consumer's pending list")
            }
        }
    }
}
