//! The reaper: every worker runs one. It takes over entries whose worker stopped answering
//! (idle in a pending list longer than the visibility timeout: the worker died, froze or lost
//! its network) and runs them here; it reports entries deleted while pending as lost; and it
//! removes consumers that are gone and own nothing. Cheap when nothing is stalled: one
//! bounded XAUTOCLAIM scan per stream per pass.

use super::buffer::Buffer;
use super::launch::{Launcher, Slot};
use crate::broker::{ReapPage, SCAN_START};
use crate::keys::Keys;
use crate::priority::Priority;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Most entries taken over in one call.
const MAX_CLAIM: usize = 500;
/// Most XAUTOCLAIM calls per stream in one pass (each scans at most 10 x COUNT entries).
const MAX_CALLS_PER_STREAM: usize = 10;
/// How often gone consumers are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// A consumer owning nothing is removed once idle this long (and at least twice the
/// visibility timeout).
const PRUNE_IDLE: Duration = Duration::from_secs(300);

/// Takes over stalled entries of the worker's groups; see the module doc.
pub(crate) struct Reaper<S> {
    /// Starts the jobs taken over.
    pub(crate) launcher: Launcher<S>,
    /// The worker's groups.
    pub(crate) groups: Vec<Keys>,
    /// The worker's job slots: a take-over needs free ones.
    pub(crate) slots: Arc<Semaphore>,
    /// Each group's fetched, unstarted entries (aligned with `groups`).
    buffers: Vec<Arc<Buffer>>,
    /// Where each stream's scan continues.
    cursors: HashMap<(usize, Priority), String>,
    last_prune: Option<Instant>,
}

impl<S: Clone + Send + Sync + 'static> Reaper<S> {
    /// A reaper that has scanned nothing yet.
    pub(crate) fn new(
        launcher: Launcher<S>,
        groups: Vec<Keys>,
        slots: Arc<Semaphore>,
        buffers: Vec<Arc<Buffer>>,
    ) -> Self {
        Reaper {
            launcher,
            groups,
            slots,
            buffers,
            cursors: HashMap::new(),
            last_prune: None,
        }
    }

    /// Reaps every reap interval until `stop` fires.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let interval = self.launcher.shared.config.reap_interval();
        loop {
            // ±10% jitter, so workers started together do not scan together.
            let jitter = rand::random_range(0.9..1.1);
            tokio::select! {
                () = tokio::time::sleep(interval.mul_f64(jitter)) => {}
                () = stop.cancelled() => return,
            }
            self.pass().await;
        }
    }

    /// One pass over every stream of every group, then, now and then, the consumer pruning.
    pub(crate) async fn pass(&mut self) {
        for g in 0..self.groups.len() {
            for priority in Priority::ALL {
                if !self.reap_stream(g, priority).await {
                    return;
                }
            }
        }
        if self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            self.last_prune = Some(Instant::now());
            self.prune().await;
        }
    }

    /// Takes over what is stalled on one stream, as far as free slots allow. Returns `false`
    /// when the pass should end (no free slot, or Redis failing).
    async fn reap_stream(&mut self, g: usize, priority: Priority) -> bool {
        let shared = self.launcher.shared.clone();
        let config = &shared.config;
        let keys = self.groups[g].clone();
        for _ in 0..MAX_CALLS_PER_STREAM {
            let free = self.slots.available_permits().min(MAX_CLAIM);
            if free == 0 {
                return false;
            }
            let Ok(mut slots) = self.slots.clone().try_acquire_many_owned(free as u32) else {
                return false;
            };
            let cursor = self
                .cursors
                .get(&(g, priority))
                .map_or(SCAN_START, String::as_str)
                .to_string();
            let page: ReapPage = match shared
                .broker
                .reap(
                    &keys,
                    &config.consumer,
                    priority,
                    config.visibility_timeout,
                    &cursor,
                    free,
                )
                .await
            {
                Ok(Some(page)) => {
                    shared.connectivity.ok();
                    page
                }
                // A paused group: its stalled entries wait for the resume, like fresh ones.
                Ok(None) => {
                    shared.connectivity.ok();
                    return true;
                }
                Err(e) => {
                    shared.connectivity.failed("reaping stalled jobs", &e);
                    return false;
                }
            };
            if !page.deleted.is_empty() {
                tracing::error!(
                    group = %keys.group(),
                    priority = %priority,
                    lost = page.deleted.len(),
                    entries = ?page.deleted,
                    "jobs lost: entries were deleted (XDEL/XTRIM by someone else) while a worker held them; removed from the pending list"
                );
            }
            if !page.claimed.is_empty() {
                if let Some(metrics) = &config.metrics {
                    metrics.reaper_claimed(keys.group().as_str(), page.claimed.len() as u64);
                }
                tracing::warn!(
                    group = %keys.group(),
                    priority = %priority,
                    jobs = page.claimed.len(),
                    "took over jobs whose worker stopped answering (idle longer than the visibility timeout); running them again"
                );
            }
            for delivery in page.claimed {
                // An entry of this very worker that still runs here (its heartbeats failed
                // for longer than the visibility timeout, e.g. while Redis was away): the
                // claim renewed its lease; running it a second time would be a duplicate.
                // Likewise an entry read ahead that waits here for a slot (this worker stalled
                // past its lease): it starts from the buffer, or goes back to its stream.
                if shared.running.contains(keys.group(), &delivery.entry_id)
                    || self.buffers[g].contains(priority, &delivery.entry_id)
                {
                    continue;
                }
                let run = slots.split(1).expect("one slot per claimed entry");
                let slot = Slot { run, ticket: None };
                self.launcher.launch(keys.clone(), delivery, slot);
            }
            let done = page.cursor == SCAN_START;
            self.cursors.insert((g, priority), page.cursor);
            if done {
                break;
            }
        }
        true
    }

    /// Removes consumers that own nothing and have been idle long enough: workers that exited
    /// or died, once their entries were taken over.
    async fn prune(&self) {
        let shared = &self.launcher.shared;
        let idle = PRUNE_IDLE.max(shared.config.visibility_timeout * 2);
        for keys in &self.groups {
            match shared
                .broker
                .prune_consumers(keys, &shared.config.consumer, idle)
                .await
            {
                Ok(removed) if !removed.is_empty() => tracing::info!(
                    group = %keys.group(),
                    consumers = ?removed,
                    "removed consumers that own nothing and were idle for {}",
                    humantime::format_duration(idle)
                ),
                Ok(_) => {}
                Err(e) => shared.connectivity.failed("removing gone consumers", &e),
            }
        }
    }
}
