//! How long a failed job waits before its next attempt: exponential, capped, with jitter.

use std::time::Duration;

/// Default delay before the first retry; it doubles per attempt. The worker's defaults
/// (`worker/config.rs`) name it `RETRY_BACKOFF`.
pub(crate) const DEFAULT_FIRST_DELAY: Duration = Duration::from_secs(1);
/// Longest retry delay of the default backoff. The worker's defaults name it
/// `RETRY_BACKOFF_CAP`.
pub(crate) const DEFAULT_CAP: Duration = Duration::from_secs(600);

/// Retry delay policy: attempt `n` (1-based) waits a random time in
/// `[d/2, d]` where `d = min(cap, base * 2^(n-1))`. The jitter spreads retries of jobs that
/// failed together (an outage) so they do not return as one wave.
///
/// ```
/// use std::time::Duration;
/// use streamworker::Backoff;
/// let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// let d = b.delay(3); // between 2 and 4 seconds
/// assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    /// 1 s doubling per attempt, capped at 10 minutes.
    fn default() -> Self {
        Backoff::new(DEFAULT_FIRST_DELAY, DEFAULT_CAP)
    }
}

impl Backoff {
    /// A policy starting at `base` and never exceeding `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The upper bound of the delay after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        self.base.saturating_mul(1u32 << exp.min(31)).min(self.cap)
    }

    /// A delay for attempt `attempt`, drawn from `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = ceiling.saturating_sub(half).as_micros() as u64;
        half + Duration::from_micros(if spread == 0 {
            0
        } else {
            rand::random_range(0..=spread)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(1));
        assert_eq!(b.ceiling(500), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_to_full_ceiling() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for attempt in 1..8 {
            let c = b.ceiling(attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(d >= c / 2 && d <= c, "{d:?} outside [{:?}, {c:?}]", c / 2);
            }
        }
    }
}
