//! How far one group's fetcher may read ahead: every entry it has fetched and not finished
//! (buffered or running) holds a [`Ticket`]; the fetcher reads only while the tickets out stay
//! under the worker's concurrency plus the depth that the group's job pace allows.
//!
//! The depth follows the handlers' measured durations (a moving average): deep for fast jobs,
//! where reading ahead saves round trips, and none for slow ones, where an entry read ahead
//! would only wait here while another worker may be free. The buffer's hold bound covers the
//! rest (a slow job among fast ones).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The group's read-ahead account; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct Room {
    /// Tickets out: entries fetched and not finished.
    out: AtomicUsize,
    /// Notified each time a ticket comes back.
    freed: Notify,
    /// Moving average of handler durations, in ns; 0 before the first job.
    pace_ns: AtomicU64,
    /// Entries read ahead went back unstarted since the last job finished here: read no
    /// further ahead until one does (a slow job holds every slot).
    stalled: AtomicBool,
}

/// One fetched entry's place in the [`Room`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    room: Arc<Room>,
}

impl Room {
    /// Takes a ticket for a fetched entry.
    pub(crate) fn ticket(self: &Arc<Self>) -> Ticket {
        self.out.fetch_add(1, Ordering::Relaxed);
        Ticket { room: self.clone() }
    }

    /// Tickets out.
    pub(crate) fn out(&self) -> usize {
        self.out.load(Ordering::Relaxed)
    }

    /// Completes when a ticket has come back since the last call.
    pub(crate) async fn freed(&self) {
        self.freed.notified().await;
    }

    /// Entries that may wait here beyond the running ones: up to `prefetch`, as many as
    /// `concurrency` slots get through in half of `hold` at the measured pace (all of
    /// `prefetch` before any job has finished); none while [stalled](Self::stalled).
    pub(crate) fn depth(&self, prefetch: usize, concurrency: usize, hold: Duration) -> usize {
        if self.stalled.load(Ordering::Relaxed) {
            return 0;
        }
        let pace = self.pace_ns.load(Ordering::Relaxed);
        if pace == 0 || prefetch == 0 {
            return prefetch;
        }
        let through = (concurrency as u128 * hold.as_nanos()) / (2 * pace as u128);
        through.min(prefetch as u128) as usize
    }

    /// Notes that entries read ahead went back unstarted: no read-ahead until a job ends.
    pub(crate) fn stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Takes a handler's duration into the moving average (weight 1/8).
    fn record(&self, took: Duration) {
        self.stalled.store(false, Ordering::Relaxed);
        let took = (took.as_nanos().min(u64::MAX as u128) as u64).max(1);
        let _ = self
            .pace_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 {
                    took
                } else {
                    avg - avg / 8 + took / 8
                })
            });
    }
}

impl Ticket {
    /// Gives the ticket back after a handler that ran for `took`.
    pub(crate) fn finished(self, took: Duration) {
        self.room.record(took);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.room.out.fetch_sub(1, Ordering::Relaxed);
        self.room.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_deep_for_fast_jobs_and_none_for_slow_ones() {
        let room = Arc::new(Room::default());
        let hold = Duration::from_millis(100);
        assert_eq!(room.depth(256, 16, hold), 256, "nothing measured yet");
        let t = room.ticket();
        assert_eq!(room.out(), 1);
        t.finished(Duration::from_micros(5));
        assert_eq!(room.out(), 0);
        assert_eq!(room.depth(256, 16, hold), 256);
        for _ in 0..64 {
            room.ticket().finished(Duration::from_secs(5));
        }
        assert_eq!(room.depth(256, 16, hold), 0);
        let room = Arc::new(Room::default());
        room.ticket().finished(Duration::from_millis(10));
        assert_eq!(room.depth(256, 1, hold), 5, "1 slot: 50 ms of 10-ms jobs");
        assert_eq!(room.depth(0, 1, hold), 0, "prefetch 0 reads no further");
        room.stalled();
        assert_eq!(room.depth(256, 1, hold), 0, "stalled");
        room.ticket().finished(Duration::from_millis(10));
        assert_eq!(room.depth(256, 1, hold), 5, "a job ended");
    }
}
