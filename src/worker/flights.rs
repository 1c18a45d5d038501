//! Jobs in flight: started here and whose outcome is not written yet (running, or ended with
//! the outcome waiting for the finisher). Read-ahead jobs start while outcomes are being
//! written (one landed within [`RECENT`]) or fewer than twice the concurrency are in flight.
//! So when outcomes stop being written (Redis gone, a fail-over in progress), jobs read ahead
//! stop starting within a few ms: their outcomes would be lost and they would run again
//! elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A landing this recent shows outcomes are being written.
const RECENT: Duration = Duration::from_millis(10);

/// The count; see the module doc.
#[derive(Debug)]
pub(crate) struct Flights {
    count: AtomicUsize,
    limit: usize,
    landed: Notify,
    /// When the count was made.
    born: Instant,
    /// When the last job landed, in ns after `born`; 0 before the first.
    last_landed_ns: AtomicU64,
}

/// One job in flight, until dropped (its outcome written, or none to write).
#[derive(Debug)]
pub(crate) struct Flight {
    flights: Arc<Flights>,
}

impl Flights {
    /// At most `limit` jobs in flight for read-ahead jobs to start.
    pub(crate) fn new(limit: usize) -> Flights {
        Flights {
            count: AtomicUsize::new(0),
            limit,
            landed: Notify::new(),
            born: Instant::now(),
            last_landed_ns: AtomicU64::new(0),
        }
    }

    /// Counts a job that starts.
    pub(crate) fn take_off(self: &Arc<Self>) -> Flight {
        self.count.fetch_add(1, Ordering::Relaxed);
        Flight {
            flights: self.clone(),
        }
    }

    /// Whether a read-ahead job may start: see the module doc.
    pub(crate) fn room(&self) -> bool {
        if self.count.load(Ordering::Relaxed) < self.limit {
            return true;
        }
        let last = self.last_landed_ns.load(Ordering::Relaxed);
        let now = self.born.elapsed().as_nanos() as u64;
        last != 0 && now.saturating_sub(last) < RECENT.as_nanos() as u64
    }

    /// Completes when a job has landed since the last call.
    pub(crate) async fn landed(&self) {
        self.landed.notified().await;
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let flights = &self.flights;
        flights.count.fetch_sub(1, Ordering::Relaxed);
        let now = (flights.born.elapsed().as_nanos() as u64).max(1);
        flights.last_landed_ns.store(now, Ordering::Relaxed);
        flights.landed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_below_the_limit_or_while_jobs_land() {
        let flights = Arc::new(Flights::new(2));
        let a = flights.take_off();
        assert!(flights.room());
        let _b = flights.take_off();
        assert!(!flights.room(), "at the limit, nothing landed yet");
        drop(a);
        assert!(flights.room());
        let _c = flights.take_off();
        let _d = flights.take_off();
        assert!(flights.room(), "over the limit, but a job landed just now");
        std::thread::sleep(RECENT * 2);
        assert!(!flights.room(), "over the limit, nothing landed lately");
    }
}
