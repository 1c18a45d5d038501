//! Outcomes not written yet: jobs whose handler has ended here and whose outcome waits for
//! the finisher's write (or is being written). While as many wait as the worker has slots,
//! nothing read ahead starts: when Redis stops answering (a master killed, a network cut), a
//! worker would otherwise run its whole read-ahead buffer with nowhere to store the outcomes,
//! and every one of those jobs would run again elsewhere once its lease ran out.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// The count of outcomes not written yet; see the module doc.
#[derive(Debug)]
pub(crate) struct Unwritten {
    count: AtomicUsize,
    /// How many may wait before read-ahead jobs stop starting.
    limit: usize,
    written: Notify,
}

impl Unwritten {
    /// A count that closes at `limit` waiting outcomes (at least one).
    pub(crate) fn new(limit: usize) -> Unwritten {
        Unwritten {
            count: AtomicUsize::new(0),
            limit: limit.max(1),
            written: Notify::new(),
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
            self.written.notify_waiters();
        }
    }

    /// Whether read-ahead jobs may start: fewer outcomes wait than the limit.
    pub(crate) fn open(&self) -> bool {
        self.count.load(Ordering::Acquire) < self.limit
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
    fn closes_at_the_limit_and_opens_when_written() {
        let u = Unwritten::new(2);
        assert!(u.open());
        u.sent();
        assert!(u.open());
        u.sent();
        assert!(!u.open());
        u.written(1);
        assert!(u.open());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_outcomes_are_written() {
        let u = Arc::new(Unwritten::new(1));
        u.sent();
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
