//! When a slot may start its next child: at once after a clean run, later and later while its
//! children keep failing without answering a job, so a command that crashes at every start
//! does not start thousands of processes a second.

use std::time::{Duration, Instant};

/// The delay before the third start in a row without an answer; it doubles per failure.
pub(super) const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two starts.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(10);

/// A slot's failures in a row: children that exited, failed to start or broke the protocol,
/// counted until one answers a job.
#[derive(Debug, Default)]
pub(super) struct Failures {
    /// Failures since the last answer.
    count: u32,
    /// When the last one happened.
    last: Option<Instant>,
}

impl Failures {
    /// A child answered a job: the next start is immediate again.
    pub(super) fn answered(&mut self) {
        self.count = 0;
        self.last = None;
    }

    /// A child failed; returns the failures in a row and the delay before the next start.
    pub(super) fn failed(&mut self) -> (u32, Duration) {
        self.count = self.count.saturating_add(1);
        self.last = Some(Instant::now());
        (self.count, delay(self.count))
    }

    /// When the next child may start (`None`: now).
    pub(super) fn next_start(&self) -> Option<Instant> {
        self.last.map(|last| last + delay(self.count))
    }
}

/// The delay before a start after `count` failures in a row: none after one (a child that
/// died once is replaced at once), then 100 ms doubling to 10 s.
fn delay(count: u32) -> Duration {
    match count {
        0 | 1 => Duration::ZERO,
        n => FIRST_DELAY
            .saturating_mul(1 << (n - 2).min(16))
            .min(MAX_DELAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_with_failures_in_a_row_and_resets_on_an_answer() {
        let mut failures = Failures::default();
        assert_eq!(failures.next_start(), None);
        let delays: Vec<u64> = (0..10)
            .map(|_| failures.failed().1.as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert!(failures.next_start().unwrap() > Instant::now() + Duration::from_secs(9));
        failures.answered();
        assert_eq!(failures.next_start(), None);
        assert_eq!(failures.failed(), (1, Duration::ZERO));
    }
}
