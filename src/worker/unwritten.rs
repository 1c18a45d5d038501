//! Outcomes not written yet: jobs whose handler has ended here and whose outcome waits for
//! the finisher's write (or is being written). While as many wait as the worker has slots and
//! the finisher has written nothing for [`STALLED`], nothing read ahead starts: when Redis
//! stops answering (a master killed, a network cut), a worker would otherwise run its whole
//! read-ahead buffer with nowhere to store the outcomes, and every one of those jobs would run
//! again elsewhere once its lease ran out. A finisher that writes (every millisecond or so in
//! a busy worker) keeps the gate open whatever the count.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long the finisher may go without writing, while outcomes wait, before read-ahead jobs
/// stop starting: a busy finisher writes every millisecond or two.
const STALLED: Duration = Duration::from_millis(10);

/// The count of outcomes not written yet; see the module doc.
#[derive(Debug)]
pub(crate) struct Unwritten {
    count: AtomicUsize,
    /// How many may wait before read-ahead jobs stop starting.
    limit: usize,
    written: Notify,
    /// When the finisher last wrote, in µs since `base`.
    last_write_us: AtomicU64,
    base: Instant,
}

impl Unwritten {
    /// A count that closes at `limit` waiting outcomes (at least one).
    pub(crate) fn new(limit: usize) -> Unwritten {
        Unwritten {
            count: AtomicUsize::new(0),
            limit: limit.max(1),
            written: Notify::new(),
            last_write_us: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// One more outcome sent to the finisher.
    pub(crate) fn sent(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// `n` outcomes written (or given up) by the finisher.
    pub(crate) fn written(&self, n: usize) {
        if n > 0 {
            self.count.fetch_sub(n, Ordering::AcqRel);
            self.last_write_us
                .store(self.base.elapsed().as_micros() as u64, Ordering::Release);
            self.written.notify_waiters();
        }
    }

    /// Whether read-ahead jobs may start: fewer outcomes wait than the limit, or the
    /// finisher wrote within [`STALLED`].
    pub(crate) fn open(&self) -> bool {
        if self.count.load(Ordering::Acquire) < self.limit {
            return true;
        }
        let last = Duration::from_micros(self.last_write_us.load(Ordering::Acquire));
        self.base.elapsed().saturating_sub(last) < STALLED
    }

    /// Waits until [`open`](Self::open) is true.
    pub(crate) async fn opened(&self) {
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if self.open() {
                return;
            }
            written.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn closes_at_the_limit_once_the_finisher_stalls_and_opens_when_written() {
        let u = Unwritten::new(2);
        u.sent();
        u.sent();
        u.sent();
        u.written(1);
        // Just written: open, though as many wait as the limit.
        assert!(u.open());
        std::thread::sleep(STALLED * 2);
        assert!(!u.open());
        u.written(1);
        assert!(u.open());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_outcomes_are_written() {
        let u = Arc::new(Unwritten::new(1));
        u.sent();
        std::thread::sleep(STALLED * 2);
        let waiter = tokio::spawn({
            let u = u.clone();
            async move { u.opened().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        u.written(1);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
    }
}
