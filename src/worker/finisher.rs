//! The finisher: writes the outcomes of jobs, batched, one script call per outcome kind and
//! group for whatever finished together.
//!
//! Outcomes that come while a write is in flight wait for the next one. When few have come and
//! other jobs are still running, the finisher also waits [`LINGER`] for more, so jobs
//! that end close together share one script call (and one update of the stats counters)
//! rather than one each. No outcome waits longer than that before its write starts, and a stop
//! writes every outcome sent.

use super::executor::Completion;
use super::unwritten::Unwritten;
use crate::broker::{Broker, Cancelled, Dead, DeadRetention, Done, FinishReport, Retry};
use crate::keys::Keys;
use crate::outage::Connectivity;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Most outcomes written by one script call.
const MAX_BATCH: usize = 256;
/// How long a small batch waits for more outcomes while other jobs run.
const LINGER: Duration = Duration::from_millis(1);
/// A batch this large is written without waiting for more.
const FULL_ENOUGH: usize = 64;
/// Longest pause between attempts to write outcomes while Redis fails.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Writes job outcomes; see the module doc.
pub(crate) struct Finisher {
    /// Where outcomes are written.
    pub(crate) broker: Broker,
    /// This worker's consumer name: outcomes are accepted only for entries it still owns.
    pub(crate) consumer: String,
    /// The dead stream's bounds, applied with every write of dead jobs.
    pub(crate) dead_retention: DeadRetention,
    /// Whether Redis answers.
    pub(crate) connectivity: Arc<Connectivity>,
    /// How long a failing write is retried before its outcomes are given up: by then another
    /// worker has taken the entries over (they stay pending, unrenewed) and will run them again.
    pub(crate) give_up_after: Duration,
    /// The outcomes sent by the job tasks.
    pub(crate) outcomes: mpsc::UnboundedReceiver<Completion>,
    /// The worker's job slots: while some are taken, more outcomes are on their way.
    pub(crate) slots: Arc<Semaphore>,
    /// The worker's concurrency: every slot.
    pub(crate) concurrency: usize,
    /// Told how many outcomes each pass has written (or given up).
    pub(crate) unwritten: Arc<Unwritten>,
}

/// The outcomes of one group in one pass.
struct Batch {
    keys: Keys,
    ok: Vec<Done>,
    retry: Vec<Retry>,
    dead: Vec<Dead>,
    cancelled: Vec<Cancelled>,
}

impl Completion {
    /// The keys of the job's group.
    fn keys(&self) -> &Keys {
        match self {
            Completion::Ok(k, _)
            | Completion::Retry(k, _)
            | Completion::Dead(k, _)
            | Completion::Cancelled(k, _) => k,
        }
    }
}

impl Finisher {
    /// Runs until every sender is gone and every outcome sent is written.
    pub(crate) async fn run(mut self) {
        let mut buffer = Vec::with_capacity(MAX_BATCH);
        while self.outcomes.recv_many(&mut buffer, MAX_BATCH).await > 0 {
            self.linger(&mut buffer).await;
            let taken = buffer.len();
            // Usually one group: a linear search beats a map.
            let mut groups: Vec<Batch> = Vec::new();
            for completion in buffer.drain(..) {
                let keys = completion.keys();
                let at = match groups.iter().position(|b| b.keys.group() == keys.group()) {
                    Some(at) => at,
                    None => {
                        groups.push(Batch {
                            keys: keys.clone(),
                            ok: Vec::new(),
                            retry: Vec::new(),
                            dead: Vec::new(),
                            cancelled: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                let batch = &mut groups[at];
                match completion {
                    Completion::Ok(_, d) => batch.ok.push(d),
                    Completion::Retry(_, r) => batch.retry.push(r),
                    Completion::Dead(_, d) => batch.dead.push(d),
                    Completion::Cancelled(_, c) => batch.cancelled.push(c),
                }
            }
            for batch in groups {
                self.write(batch).await;
            }
            self.unwritten.written(taken);
        }
    }

    /// Waits [`LINGER`] for more outcomes while the batch is small and jobs are running, then
    /// takes what came (one wake-up, not one per outcome).
    async fn linger(&mut self, buffer: &mut Vec<Completion>) {
        if buffer.len() >= FULL_ENOUGH || self.slots.available_permits() >= self.concurrency {
            return;
        }
        tokio::time::sleep(LINGER).await;
        while buffer.len() < MAX_BATCH {
            match self.outcomes.try_recv() {
                Ok(c) => buffer.push(c),
                Err(_) => return,
            }
        }
    }

    /// Writes one group's outcomes, one script call per kind.
    async fn write(&self, batch: Batch) {
        let keys = &batch.keys;
        if !batch.ok.is_empty() {
            let r = self
                .retrying("finish_ok", || {
                    self.broker.finish_ok(keys, &self.consumer, &batch.ok)
                })
                .await;
            self.report(keys, "succeeded", r);
        }
        if !batch.retry.is_empty() {
            let r = self
                .retrying("finish_retry", || {
                    self.broker.finish_retry(keys, &self.consumer, &batch.retry)
                })
                .await;
            self.report(keys, "retry", r);
        }
        if !batch.dead.is_empty() {
            let r = self
                .retrying("finish_dead", || {
                    self.broker
                        .finish_dead(keys, &self.consumer, self.dead_retention, &batch.dead)
                })
                .await;
            self.report(keys, "dead", r);
        }
        if !batch.cancelled.is_empty() {
            let r = self
                .retrying("finish_cancelled", || {
                    self.broker
                        .finish_cancelled(keys, &self.consumer, &batch.cancelled)
                })
                .await;
            self.report(keys, "cancelled", r);
        }
    }

    /// Repeats `call` with a growing, jittered pause until it succeeds or `give_up_after`
    /// has passed.
    async fn retrying<F, Fut>(&self, op: &str, call: F) -> Option<FinishReport>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = crate::Result<FinishReport>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            match call().await {
                Ok(report) => {
                    self.connectivity.ok();
                    return Some(report);
                }
                Err(e) => self.connectivity.failed(op, &e),
            }
            if started.elapsed() >= self.give_up_after {
                tracing::error!(
                    op,
                    "giving up writing job outcomes: their entries stay pending and will be taken over and run again"
                );
                return None;
            }
            let jitter =
                Duration::from_millis(rand::random_range(0..=pause.as_millis() as u64 / 2));
            tokio::time::sleep(pause / 2 + jitter).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Logs the entries whose outcome was not stored.
    fn report(&self, keys: &Keys, outcome: &str, report: Option<FinishReport>) {
        let Some(report) = report else { return };
        for entry in &report.stale {
            tracing::warn!(group = %keys.group(), entry = %entry, outcome, "lost the lease on this job: another worker took it over, so this outcome was not stored");
        }
        for entry in &report.missing {
            tracing::error!(group = %keys.group(), entry = %entry, "job payload was deleted while it ran (XDEL/XTRIM by someone else): nothing to retry");
        }
    }
}
