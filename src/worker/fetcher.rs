//! The fetcher: one per group. Reads at most as many entries as there are free slots, high
//! priority first, on a connection of its own, and starts a job task for each.

use super::launch::Launcher;
use crate::broker::{Delivery, EntryRef, GroupState, Reader};
use crate::error::Error;
use crate::job::Envelope;
use crate::keys::Keys;
use crate::priority::Priority;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Most entries taken in one read.
const MAX_BATCH: usize = 500;
/// Longest a busy worker waits for more slots to free up before it reads.
const GATHER: Duration = Duration::from_millis(1);
/// Longest pause between attempts while Redis is failing.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Fetches one group's jobs; see the module doc.
pub(crate) struct Fetcher<S> {
    /// Starts a job task per delivered entry.
    pub(crate) launcher: Launcher<S>,
    /// The group's keys.
    pub(crate) keys: Keys,
    /// The worker's job slots: a read takes at most the free ones.
    pub(crate) slots: Arc<Semaphore>,
    /// Whether the last read found the group paused: pauses and resumes are logged once.
    pub(crate) paused: AtomicBool,
}

impl<S: Clone + Send + Sync + 'static> Fetcher<S> {
    /// Fetches until `stop` fires. A read in flight is never cancelled (Redis would still
    /// deliver its entries to us); the loop checks `stop` between reads.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let shared = self.launcher.shared.clone();
        let mut conn: Option<Reader> = None;
        let mut known = Known::default();
        let mut failures: u32 = 0;
        loop {
            let slots = tokio::select! {
                slots = self.free_slots() => slots,
                () = stop.cancelled() => return,
            };
            if stop.is_cancelled() {
                return;
            }
            match self.pass(&mut conn, &mut known, slots).await {
                Ok(()) => {
                    shared.connectivity.ok();
                    failures = 0;
                }
                Err(e) => {
                    conn = None;
                    known = Known::default();
                    let missing_group = matches!(e, Error::MissingGroup { .. });
                    if !missing_group {
                        shared.connectivity.failed("fetching jobs", &e);
                    }
                    failures += 1;
                    if missing_group {
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
    /// While jobs are running, it first gives others up to [`GATHER`] to free up, until half
    /// the slots are free: short jobs then come back in batches (one fetch and one finishing
    /// call per batch, not per job) rather than one by one, and a long job's slot waits at
    /// most that long. An idle worker (every slot free) reads at once.
    async fn free_slots(&self) -> OwnedSemaphorePermit {
        let mut slots = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed");
        let enough = (self.launcher.shared.config.concurrency / 2).clamp(1, MAX_BATCH);
        let free = self.slots.available_permits() + 1;
        if free < enough {
            let wanted = (enough - free) as u32;
            if let Ok(Ok(more)) =
                tokio::time::timeout(GATHER, self.slots.clone().acquire_many_owned(wanted)).await
            {
                slots.merge(more);
            }
        }
        let more = self
            .slots
            .available_permits()
            .min(MAX_BATCH - slots.num_permits());
        if more > 0
            && let Ok(extra) = self.slots.clone().try_acquire_many_owned(more as u32)
        {
            slots.merge(extra);
        }
        slots
    }

    /// One pass: a fetch sized to the free slots and planned from what the last fetch saw of
    /// the streams (start a job per entry), or, when nothing is waiting, release the slots and
    /// wait (bounded) for new entries without claiming any.
    async fn pass(
        &self,
        conn: &mut Option<Reader>,
        known: &mut Known,
        slots: OwnedSemaphorePermit,
    ) -> crate::Result<()> {
        let shared = &self.launcher.shared;
        let config = &shared.config;
        if conn.is_none() {
            *conn = Some(shared.broker.reader(config.block).await?);
        }
        let c = conn.as_mut().expect("connection set above");
        let plan = if self.paused.load(Ordering::Relaxed) {
            Vec::new()
        } else {
            known.plan(slots.num_permits())
        };
        let idle =
            plan.is_empty() && !self.paused.load(Ordering::Relaxed) && !known.idle_wait_ended;
        if idle && let Some(last_ids) = known.last_ids() {
            drop(slots);
            known.woken = shared
                .broker
                .wait_for_new(c, &self.keys, &last_ids, config.block)
                .await?;
            // A wait that saw nothing is followed by a fetch anyway, which reads the pause
            // flag: a pause is noticed within one wait.
            known.idle_wait_ended = known.woken.is_empty();
            return Ok(());
        }
        // The reads and the group's state go out together on the connection; jobs start as
        // soon as the reads' replies are in, without waiting for the state.
        let mut info_conn = c.clone();
        let unknown = known.unknown();
        let reads = async {
            let (paused, deliveries) = shared
                .broker
                .read_planned(c, &self.keys, &config.consumer, &plan)
                .await?;
            let mut delivered = [0usize; 3];
            for d in &deliveries {
                delivered[d.priority.index() - 1] += 1;
            }
            if paused {
                drop(slots);
                return Ok::<_, Error>((true, delivered, deliveries));
            }
            let mut slots = slots;
            for delivery in deliveries {
                let slot = slots.split(1).expect("one slot per delivered entry");
                self.launcher.launch(self.keys.clone(), delivery, slot);
            }
            Ok((false, delivered, Vec::new()))
        };
        let states = shared
            .broker
            .group_states(&mut info_conn, &self.keys, &unknown);
        let (reads, states) = tokio::join!(reads, states);
        let (paused, delivered, held) = reads?;
        known.update(states?, &plan, delivered);
        if paused {
            if !self.paused.swap(true, Ordering::Relaxed) {
                tracing::warn!(group = %self.keys.group(), "group paused (streamworker pause): fetching nothing until it is resumed");
            }
            self.hand_back(held).await;
            tokio::time::sleep(config.block).await;
            return Ok(());
        }
        if self.paused.swap(false, Ordering::Relaxed) {
            tracing::info!(group = %self.keys.group(), "group resumed: fetching again");
        }
        Ok(())
    }

    /// Returns entries read in the same round trip that found the group paused to their
    /// streams, for whoever fetches after the resume.
    async fn hand_back(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let shared = &self.launcher.shared;
        let entries: Vec<(EntryRef, bool)> = deliveries
            .into_iter()
            .map(|d| {
                let (job_id, tracked) =
                    match Envelope::decode(&d.entry_id, d.fields.as_deref(), usize::MAX) {
                        Ok(env) => (env.id.to_string(), env.keep_result.is_some()),
                        Err(bad) => (bad.id, bad.keep_result.is_some()),
                    };
                let entry = EntryRef {
                    priority: d.priority,
                    entry_id: d.entry_id,
                    job_id,
                    unique_key: None,
                };
                (entry, tracked)
            })
            .collect();
        if let Err(e) = shared
            .broker
            .hand_back(&self.keys, &shared.config.consumer, &entries)
            .await
        {
            tracing::warn!(group = %self.keys.group(), error = %e, "could not hand back jobs read as the group was paused: another worker takes them over after the visibility timeout");
        }
    }

    /// Creates the group's consumer groups again after Redis lost them, and says so.
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

/// What the fetcher knows of the group's streams from its last fetch, to size the next one.
#[derive(Debug, Default)]
struct Known {
    /// The group's state on the high, default and low streams; `None` before the first fetch
    /// and after an error.
    streams: Option<Vec<GroupState>>,
    /// Streams where the last wait saw something arrive.
    woken: Vec<Priority>,
    /// The last wait ended with nothing new: the next pass fetches (and reads the pause
    /// flag) rather than waiting again.
    idle_wait_ended: bool,
}

impl Known {
    /// How many entries to take from which stream, for `free` slots: highest priority first,
    /// each stream at most its undelivered entries; a stream whose count is unknown takes all
    /// that is left (so a lower one is never read before it). Empty when nothing waits.
    fn plan(&self, free: usize) -> Vec<(Priority, usize)> {
        let mut left = free;
        let mut plan = Vec::new();
        for (i, priority) in Priority::ALL.into_iter().enumerate() {
            if left == 0 {
                break;
            }
            let lag = match &self.streams {
                Some(s) if !self.woken.contains(&priority) => s[i].lag,
                _ => None,
            };
            match lag {
                Some(0) => {}
                Some(n) => {
                    let take = left.min(usize::try_from(n).unwrap_or(usize::MAX));
                    plan.push((priority, take));
                    left -= take;
                }
                None => {
                    plan.push((priority, left));
                    left = 0;
                }
            }
        }
        plan
    }

    /// The streams whose undelivered count Redis did not give: the next fetch probes them.
    fn unknown(&self) -> Vec<Priority> {
        match &self.streams {
            Some(s) => Priority::ALL
                .into_iter()
                .zip(s)
                .filter(|(_, g)| g.lag.is_none())
                .map(|(p, _)| p)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The group's last-delivered ids, to wait for anything newer.
    fn last_ids(&self) -> Option<Vec<String>> {
        self.streams
            .as_ref()
            .map(|s| s.iter().map(|g| g.last_delivered.clone()).collect())
    }

    /// Takes in a fetch's view of the streams. A stream read for more than it delivered has
    /// nothing left at that moment, whatever its lag said.
    fn update(
        &mut self,
        mut streams: Vec<GroupState>,
        plan: &[(Priority, usize)],
        delivered: [usize; 3],
    ) {
        for &(priority, asked) in plan {
            let state = &mut streams[priority.index() - 1];
            if delivered[priority.index() - 1] < asked && state.lag.is_none() {
                state.lag = Some(0);
            }
        }
        self.streams = Some(streams);
        self.woken.clear();
        self.idle_wait_ended = false;
    }
}

/// Pause after `failures` consecutive failures: doubling from 100 ms to 5 s, with jitter.
fn error_pause(failures: u32) -> Duration {
    let ceiling = Duration::from_millis(100)
        .saturating_mul(1 << failures.min(6))
        .min(MAX_ERROR_PAUSE);
    ceiling / 2 + Duration::from_millis(rand::random_range(0..=ceiling.as_millis() as u64 / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(lags: [Option<u64>; 3]) -> Known {
        Known {
            streams: Some(
                lags.iter()
                    .map(|&lag| GroupState {
                        last_delivered: "0-0".into(),
                        lag,
                    })
                    .collect(),
            ),
            woken: Vec::new(),
            idle_wait_ended: false,
        }
    }

    #[test]
    fn plans_take_higher_priorities_first_and_never_more_than_the_free_slots() {
        use Priority::*;
        assert_eq!(
            Known::default().plan(10),
            vec![(High, 10)],
            "unknown: high alone"
        );
        assert_eq!(
            known([Some(3), Some(20), Some(5)]).plan(10),
            vec![(High, 3), (Default, 7)]
        );
        assert_eq!(
            known([Some(0), Some(2), Some(5)]).plan(10),
            vec![(Default, 2), (Low, 5)]
        );
        assert_eq!(
            known([Some(0), None, Some(5)]).plan(10),
            vec![(Default, 10)],
            "unknown lag takes all that is left"
        );
        assert!(
            known([Some(0), Some(0), Some(0)]).plan(10).is_empty(),
            "nothing waits"
        );
        let mut woken = known([Some(0), Some(0), Some(0)]);
        woken.woken = vec![Low];
        assert_eq!(woken.plan(4), vec![(Low, 4)]);
    }

    #[test]
    fn a_stream_read_for_more_than_it_had_counts_as_empty_when_redis_gives_no_lag() {
        let mut k = Known::default();
        k.update(
            known([None, None, Some(4)]).streams.unwrap(),
            &[(Priority::High, 5)],
            [1, 0, 0],
        );
        assert_eq!(k.plan(10), vec![(Priority::Default, 10)]);
    }
}
