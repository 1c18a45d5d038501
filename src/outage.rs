//! Redis outages as a worker sees them. Every background loop reports its failures and
//! successes here; an outage is logged once when it starts (with the first error) and once
//! when it ends (with its length), however many loops fail meanwhile and however often they
//! retry.

use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Whether Redis is reachable, from the worker's point of view; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct Connectivity {
    /// Fast path: `true` while an outage is on.
    down: AtomicBool,
    /// When the current outage started.
    since: Mutex<Option<Instant>>,
}

impl Connectivity {
    /// Reports that `what` failed with `error`. Logs only the first failure of an outage.
    pub(crate) fn failed(&self, what: &str, error: &dyn Display) {
        let mut since = self.since.lock().expect("connectivity lock");
        if since.is_none() {
            *since = Some(Instant::now());
            self.down.store(true, Ordering::Release);
            tracing::error!(
                during = what,
                error = %error,
                "Redis is failing; retrying with backoff (further errors are not logged until it answers again)"
            );
        } else {
            tracing::debug!(during = what, error = %error, "Redis still failing");
        }
    }

    /// Reports a successful call. Logs the end of an outage, if one was on.
    pub(crate) fn ok(&self) {
        if !self.down.load(Ordering::Acquire) {
            return;
        }
        let mut since = self.since.lock().expect("connectivity lock");
        if let Some(start) = since.take() {
            self.down.store(false, Ordering::Release);
            let lasted = std::time::Duration::from_millis(start.elapsed().as_millis() as u64);
            tracing::warn!(
                after = %humantime::format_duration(lasted),
                "Redis answers again; carrying on"
            );
        }
    }

    /// Whether an outage is on.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_once_and_ends_once() {
        let c = Connectivity::default();
        assert!(!c.is_down());
        c.ok();
        c.failed("read", &"connection refused");
        c.failed("finish", &"connection refused");
        assert!(c.is_down());
        c.ok();
        assert!(!c.is_down());
        c.failed("read", &"connection refused");
        assert!(c.is_down());
    }
}
