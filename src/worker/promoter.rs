//! The promoter: moves due jobs from a group's delayed set into their priority streams. It
//! sleeps until the earliest due time, or until woken because an earlier job was added.

use crate::broker::Broker;
use crate::keys::Keys;
use crate::outage::Connectivity;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest sleep between promote calls even when nothing is due: bounds the delay if a
/// wake-up message is lost (pub/sub is fire-and-forget).
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Moves due jobs of one group; see the module doc.
pub(crate) struct Promoter {
    /// Where jobs are promoted.
    broker: Broker,
    /// The group's keys.
    keys: Keys,
    /// Notified by the pub/sub listener when an earlier due time was announced.
    wake: Arc<Notify>,
    /// Most jobs moved per call.
    batch: usize,
    /// Whether Redis answers.
    connectivity: Arc<Connectivity>,
}

impl Promoter {
    /// A promoter of the group of `keys`.
    pub(crate) fn new(
        broker: Broker,
        keys: Keys,
        wake: Arc<Notify>,
        batch: usize,
        connectivity: Arc<Connectivity>,
    ) -> Promoter {
        Promoter {
            broker,
            keys,
            wake,
            batch,
            connectivity,
        }
    }

    /// One pass: promotes what is due and returns how long to sleep before the next.
    pub(crate) async fn pass(&self) -> Duration {
        match self.broker.promote_due(&self.keys, self.batch).await {
            Ok(p) => {
                self.connectivity.ok();
                if p.orphans > 0 {
                    tracing::error!(group = %self.keys.group(), orphans = p.orphans, "delayed set held job ids without payload; removed");
                }
                if p.moved >= self.batch {
                    return Duration::ZERO;
                }
                // To the µs: the timer then fires within its 1 ms tick of the due time, not
                // up to 2 ms after it.
                p.next_due_ms
                    .map_or(MAX_SLEEP, |due| {
                        Duration::from_micros(
                            (due * 1000).saturating_sub(p.now_ms * 1000 + p.now_micros),
                        )
                    })
                    .min(MAX_SLEEP)
            }
            Err(e) => {
                self.connectivity.failed("promoting due jobs", &e);
                // Jittered, so workers do not retry in step after an outage.
                MAX_SLEEP.mul_f64(rand::random_range(0.5..1.0))
            }
        }
    }

    /// Promotes until `stop` fires.
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            let sleep = self.pass().await;
            if sleep.is_zero() {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.notified() => {}
                () = stop.cancelled() => return,
            }
        }
    }
}
