//! The fetcher: one per group. Reads at most as many entries as there are free slots, high
//! priority first, on a connection of its own, and starts a job task for each.

use super::launch::Launcher;
use crate::broker::{Delivery, is_missing_group};
use crate::error::Error;
use crate::keys::Keys;
use crate::redis;
use deadpool_redis::redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Most entries taken in one read.
const MAX_BATCH: usize = 500;
/// Longest pause between attempts while Redis is failing.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

pub(crate) struct Fetcher<S> {
    pub(crate) launcher: Launcher<S>,
    pub(crate) client: deadpool_redis::redis::Client,
    pub(crate) keys: Keys,
    pub(crate) slots: Arc<Semaphore>,
    /// Whether the last read found the group paused: pauses and resumes are logged once.
    pub(crate) paused: AtomicBool,
}

impl<S: Clone + Send + Sync + 'static> Fetcher<S> {
    /// Fetches until `stop` fires. A read in flight is never cancelled (Redis would still
    /// deliver its entries to us); the loop checks `stop` between reads.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let shared = self.launcher.shared.clone();
        let mut conn: Option<MultiplexedConnection> = None;
        let mut failures: u32 = 0;
        loop {
            let slots = tokio::select! {
                slots = self.free_slots() => slots,
                () = stop.cancelled() => return,
            };
            if stop.is_cancelled() {
                return;
            }
            match self.pass(&mut conn, slots).await {
                Ok(()) => {
                    shared.connectivity.ok();
                    failures = 0;
                }
                Err(e) => {
                    conn = None;
                    if !is_missing_group(&e) {
                        shared.connectivity.failed("fetching jobs", &e);
                    }
                    failures += 1;
                    if is_missing_group(&e) {
                        self.recreate_groups().await;
                    }
                    let pause = error_pause(failures);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Waits for at least one free slot, then takes every other free one (up to [`MAX_BATCH`]).
    async fn free_slots(&self) -> OwnedSemaphorePermit {
        let mut slots = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed");
        let more = self.slots.available_permits().min(MAX_BATCH - 1);
        if more > 0
            && let Ok(extra) = self.slots.clone().try_acquire_many_owned(more as u32)
        {
            slots.merge(extra);
        }
        slots
    }

    /// One read: start a job per entry, or, when nothing is waiting, release the slots and
    /// wait (bounded) for new entries without claiming any.
    async fn pass(
        &self,
        conn: &mut Option<MultiplexedConnection>,
        mut slots: OwnedSemaphorePermit,
    ) -> crate::Result<()> {
        let shared = &self.launcher.shared;
        let config = &shared.config;
        if conn.is_none() {
            *conn = Some(
                redis::blocking_connection(
                    &self.client,
                    shared.broker.url().unwrap_or_default(),
                    config.block,
                )
                .await?,
            );
        }
        let c = conn.as_mut().expect("connection set above");
        let Some(deliveries): Option<Vec<Delivery>> = shared
            .broker
            .read(c, &self.keys, &config.consumer, slots.num_permits())
            .await
            .map_err(Error::redis("read"))?
        else {
            // Paused (`streamworker pause`): look again after one BLOCK interval.
            drop(slots);
            if !self.paused.swap(true, Ordering::Relaxed) {
                tracing::warn!(group = %self.keys.group(), "group paused (streamworker pause): fetching nothing until it is resumed");
            }
            tokio::time::sleep(config.block).await;
            return Ok(());
        };
        if self.paused.swap(false, Ordering::Relaxed) {
            tracing::info!(group = %self.keys.group(), "group resumed: fetching again");
        }
        if deliveries.is_empty() {
            drop(slots);
            shared
                .broker
                .wait_for_new(c, &self.keys, config.block)
                .await
                .map_err(Error::redis("wait for jobs"))?;
            return Ok(());
        }
        for delivery in deliveries {
            let slot = slots.split(1).expect("one slot per delivered entry");
            self.launcher.launch(self.keys.clone(), delivery, slot);
        }
        Ok(())
    }

    async fn recreate_groups(&self) {
        match self.launcher.shared.broker.ensure_groups(&self.keys).await {
            Ok(0) => {}
            Ok(n) => tracing::error!(
                group = %self.keys.group(),
                recreated = n,
                "consumer group was missing and has been recreated: Redis lost its data (restart without persistence, flush or failover); jobs it held are gone"
            ),
            Err(e) => {
                tracing::warn!(group = %self.keys.group(), error = %e, "could not recreate the consumer group")
            }
        }
    }
}

/// Pause after `failures` consecutive failures: doubling from 100 ms to 5 s, with jitter.
fn error_pause(failures: u32) -> Duration {
    let ceiling = Duration::from_millis(100)
        .saturating_mul(1 << failures.min(6))
        .min(MAX_ERROR_PAUSE);
    ceiling / 2 + Duration::from_millis(rand::random_range(0..=ceiling.as_millis() as u64 / 2))
}
