//! The fetcher: one per group. Reads the group's jobs, high priority first, on a connection
//! of its own, and starts them as slots free up.
//!
//! A read takes up to the free slots plus a read-ahead depth (see [`Room`]): what finds a free
//! slot starts at once, the rest waits in the group's [`Buffer`] and its dispatcher starts it
//! when a slot frees, highest priority first. An entry unstarted after the hold goes back to
//! its stream (`lua/hand_back.lua`) for a worker that is free; a pause or a stop sends back
//! everything buffered at once.
//!
//! An idle fetcher waits in a blocking XREADGROUP on the three streams (one hop from XADD to
//! start); the pause flag is read in the same round trip, after the read returns, and what a
//! read delivered to a paused group goes straight back.

use super::buffer::{Buffer, Buffered};
use super::launch::{Launcher, Slot};
use super::plan::Known;
use super::room::Room;
use crate::broker::{Delivery, EntryRef, Reader};
use crate::error::Error;
use crate::job::Envelope;
use crate::keys::Keys;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Most entries taken in one read.
const MAX_BATCH: usize = 500;
/// Longest a busy worker waits for more room to free up before it reads.
const GATHER: Duration = Duration::from_millis(1);
/// Most jobs started in one go: then the fetcher or dispatcher yields, so they run before more
/// are spawned. A burst of hundreds of spawns overflows the runtime's local run queue into its
/// shared one and costs about as much again per job (measured at concurrency 256: worker CPU
/// per job 9.6–10.8 µs in bursts, 5.8–6.5 µs in runs of 64).
const LAUNCH_BURST: usize = 64;
/// How often a dispatcher looks again whether Redis answers, while it does not.
const OUTAGE_CHECK: Duration = Duration::from_millis(10);
/// Longest pause between attempts while Redis is failing.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Fetches one group's jobs; see the module doc.
pub(crate) struct Fetcher<S> {
    /// Starts a job task per delivered entry.
    pub(crate) launcher: Launcher<S>,
    /// The group's keys.
    pub(crate) keys: Keys,
    /// The worker's job slots, shared by every group and the reaper.
    pub(crate) slots: Arc<Semaphore>,
    /// The group's read-ahead account.
    pub(crate) room: Arc<Room>,
    /// The group's fetched, unstarted entries.
    pub(crate) buffer: Arc<Buffer>,
    /// Whether the last read found the group paused: pauses and resumes are logged once.
    pub(crate) paused: AtomicBool,
    /// The streams (bit 0 high, 1 default, 2 low) that entries were handed back to since the
    /// last read planned: what that read saw of them is out of date.
    pub(crate) handed_back: AtomicU8,
}

impl<S: Clone + Send + Sync + 'static> Fetcher<S> {
    /// Fetches and dispatches until `stop` fires, then hands back what is buffered. A read in
    /// flight is never cancelled (Redis would still deliver its entries to us); the loop
    /// checks `stop` between reads.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let fetch_ended = CancellationToken::new();
        let fetch = async {
            self.fetch(&stop).await;
            fetch_ended.cancel();
        };
        tokio::join!(fetch, self.dispatch(&stop, &fetch_ended));
    }

    /// Reads until `stop` fires.
    async fn fetch(&self, stop: &CancellationToken) {
        let shared = self.launcher.shared.clone();
        let mut conn: Option<Reader> = None;
        let mut known = Known::default();
        let mut failures: u32 = 0;
        loop {
            let room = tokio::select! {
                room = self.room_to_read() => room,
                () = stop.cancelled() => return,
            };
            if stop.is_cancelled() {
                return;
            }
            match self.pass(&mut conn, &mut known, room, stop).await {
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

    /// How many entries the next read may take: the free slots plus the read-ahead depth,
    /// less what this group holds already (at most [`MAX_BATCH`]). Waits until that is at
    /// least one. While jobs are running, it first gives others up to [`GATHER`] to free up,
    /// until half the room is free: short jobs then come back in batches (one read and one
    /// finishing call per batch) rather than one by one. An idle worker reads at once.
    async fn room_to_read(&self) -> usize {
        let config = &self.launcher.shared.config;
        let mut gather_until: Option<Instant> = None;
        loop {
            let depth =
                self.room
                    .depth(config.prefetch, config.concurrency, config.prefetch_hold());
            let limit = config.concurrency + depth;
            let out = self.room.out();
            let free_slots = self.slots.available_permits();
            let room = limit
                .saturating_sub(out)
                .min(free_slots + depth)
                .min(MAX_BATCH);
            let enough = (limit / 2).clamp(1, MAX_BATCH);
            if room >= enough || (room > 0 && out == 0) {
                return room;
            }
            if room > 0 {
                let until = *gather_until.get_or_insert_with(|| Instant::now() + GATHER);
                if Instant::now() >= until {
                    return room;
                }
                tokio::select! {
                    () = self.room.freed() => {}
                    _ = self.slots.acquire() => {}
                    () = tokio::time::sleep_until(until.into()) => return room,
                }
                continue;
            }
            // No room: wait for this group's entries to finish, or for a slot to free up
            // (another group's job or a take-over may hold them).
            tokio::select! {
                () = self.room.freed(), if limit <= out => {}
                _ = self.slots.acquire(), if free_slots == 0 => {}
            }
        }
    }

    /// One pass: a read of up to `room` entries planned from what the last read saw of the
    /// streams; or, when nothing is known to wait, a blocking read that starts whatever
    /// arrives first.
    async fn pass(
        &self,
        conn: &mut Option<Reader>,
        known: &mut Known,
        room: usize,
        stop: &CancellationToken,
    ) -> crate::Result<()> {
        let shared = &self.launcher.shared;
        let config = &shared.config;
        if conn.is_none() {
            *conn = Some(shared.broker.reader(config.block).await?);
        }
        let c = conn.as_mut().expect("connection set above");
        let was_paused = self.paused.load(Ordering::Relaxed);
        known.forget(self.handed_back.swap(0, Ordering::Relaxed));
        let plan = if was_paused {
            Vec::new()
        } else {
            known.plan(room)
        };
        if plan.is_empty() && !was_paused {
            let (paused, deliveries, states) = shared
                .broker
                .read_blocking(c, &self.keys, &config.consumer, room, config.block)
                .await?;
            known.streams = Some(states);
            return self.take(paused, deliveries, room, stop).await;
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
            self.take(paused, deliveries, room, stop).await?;
            Ok::<_, Error>(delivered)
        };
        let states = shared
            .broker
            .group_states(&mut info_conn, &self.keys, &unknown);
        let (delivered, states) = tokio::join!(reads, states);
        known.update(states?, &plan, delivered?);
        if self.paused.load(Ordering::Relaxed) {
            tokio::time::sleep(config.block).await;
        }
        Ok(())
    }

    /// Takes what a read delivered, highest priority first: starts what finds a free slot,
    /// buffers the rest for the dispatcher. Hands back what a paused group or a stopping
    /// worker was delivered (and, on a pause, everything buffered), and anything beyond
    /// `room` (a blocking read on three streams can deliver from more than one).
    async fn take(
        &self,
        paused: bool,
        mut deliveries: Vec<Delivery>,
        room: usize,
        stop: &CancellationToken,
    ) -> crate::Result<()> {
        if paused {
            if !self.paused.swap(true, Ordering::Relaxed) {
                tracing::warn!(group = %self.keys.group(), "group paused (streamworker pause): fetching nothing until it is resumed");
            }
            deliveries.extend(self.buffer.take_all().into_iter().map(|b| b.delivery));
            self.hand_back(deliveries).await;
            return Ok(());
        }
        if self.paused.swap(false, Ordering::Relaxed) {
            tracing::info!(group = %self.keys.group(), "group resumed: fetching again");
        }
        if deliveries.len() > room {
            let beyond = deliveries.split_off(room);
            self.hand_back(beyond).await;
        }
        let fetched = Instant::now();
        let mut waiting = Vec::new();
        let mut launched = 0;
        let none_buffered = self.buffer.len() == 0;
        for delivery in deliveries {
            let ticket = self.room.ticket();
            let start_now = waiting.is_empty()
                && launched < LAUNCH_BURST
                && none_buffered
                && !stop.is_cancelled();
            let free = if start_now {
                self.slots.clone().try_acquire_owned().ok()
            } else {
                None
            };
            match free {
                Some(run) => {
                    launched += 1;
                    let slot = Slot {
                        run,
                        ticket: Some(ticket),
                    };
                    self.launcher.launch(self.keys.clone(), delivery, slot);
                }
                None => waiting.push(Buffered {
                    delivery,
                    fetched,
                    ticket,
                }),
            }
        }
        self.buffer.put(waiting);
        Ok(())
    }

    /// Starts buffered entries as slots free up, highest priority first, and hands back
    /// those unstarted after the hold; once `stop` fires and the last read has ended, hands
    /// back everything buffered.
    async fn dispatch(&self, stop: &CancellationToken, fetch_ended: &CancellationToken) {
        let shared = &self.launcher.shared;
        let hold = shared.config.prefetch_hold();
        loop {
            let Some(oldest) = self.buffer.oldest() else {
                tokio::select! {
                    () = self.buffer.added() => continue,
                    () = stop.cancelled() => break,
                }
            };
            // While Redis does not answer, or as many outcomes wait to be written as there are
            // slots, nothing read ahead starts: its outcome could not be written, and the job
            // would run again elsewhere. It waits (at most out the hold) instead.
            let down = shared.connectivity.is_down();
            let open = shared.unwritten.open();
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = tokio::time::sleep(OUTAGE_CHECK), if down => {}
                () = shared.unwritten.opened(), if !down && !open => {}
                () = tokio::time::sleep_until((oldest + hold).into()) => {
                    let expired = self.buffer.take_older_than(held_since(hold));
                    self.room.stalled();
                    self.hand_back_buffered(expired, "waited longer than the hold for a slot").await;
                }
                run = self.slots.clone().acquire_owned(), if !down && open => {
                    let run = run.expect("the slot semaphore is never closed");
                    let expired = self.buffer.take_older_than(held_since(hold));
                    if !expired.is_empty() {
                        drop(run);
                        self.room.stalled();
                        self.hand_back_buffered(expired, "waited longer than the hold for a slot").await;
                        continue;
                    }
                    if self.paused.load(Ordering::Relaxed) {
                        drop(run);
                        let all = self.buffer.take_all();
                        self.hand_back_buffered(all, "the group is paused").await;
                        continue;
                    }
                    // The slots free now go to buffered entries in this one wake-up, up to
                    // a burst; after a full burst, the jobs run before more are spawned.
                    let mut run = Some(run);
                    let mut launched = 0;
                    while launched < LAUNCH_BURST
                        && (launched == 0 || shared.unwritten.open())
                        && let Some(slot) = run.take().or_else(|| self.slots.clone().try_acquire_owned().ok())
                    {
                        let Some(b) = self.buffer.next() else { break };
                        let slot = Slot { run: slot, ticket: Some(b.ticket) };
                        self.launcher.launch(self.keys.clone(), b.delivery, slot);
                        launched += 1;
                    }
                    if launched == LAUNCH_BURST {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        fetch_ended.cancelled().await;
        let all = self.buffer.take_all();
        self.hand_back_buffered(all, "the worker is stopping").await;
    }

    /// Hands back buffered entries; their room is freed once they are back.
    async fn hand_back_buffered(&self, entries: Vec<Buffered>, why: &str) {
        if entries.is_empty() {
            return;
        }
        tracing::debug!(group = %self.keys.group(), jobs = entries.len(), why, "handing back jobs read ahead");
        let (deliveries, tickets): (Vec<Delivery>, Vec<_>) =
            entries.into_iter().map(|b| (b.delivery, b.ticket)).unzip();
        self.hand_back(deliveries).await;
        drop(tickets);
    }

    /// Returns delivered entries that will not run here to their streams, for another worker
    /// (or this one) to read again.
    async fn hand_back(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let shared = &self.launcher.shared;
        let streams = deliveries
            .iter()
            .fold(0, |bits, d| bits | 1 << (d.priority.index() - 1));
        self.handed_back.fetch_or(streams, Ordering::Relaxed);
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
                    batch: None,
                };
                (entry, tracked)
            })
            .collect();
        if let Err(e) = shared
            .broker
            .hand_back(&self.keys, &shared.config.consumer, &entries)
            .await
        {
            tracing::warn!(group = %self.keys.group(), error = %e, "could not hand back jobs that will not run here: another worker takes them over after the visibility timeout");
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

/// The fetch time before which a buffered entry has waited longer than `hold`.
fn held_since(hold: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(hold).unwrap_or(now)
}

/// Pause after `failures` consecutive failures: doubling from 100 ms to 5 s, with jitter.
fn error_pause(failures: u32) -> Duration {
    let ceiling = Duration::from_millis(100)
        .saturating_mul(1 << failures.min(6))
        .min(MAX_ERROR_PAUSE);
    ceiling / 2 + Duration::from_millis(rand::random_range(0..=ceiling.as_millis() as u64 / 2))
}
