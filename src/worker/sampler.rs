//! The depth sampler: reads the queue depths of a worker's groups every few seconds into its
//! metrics (ready and in flight per priority, delayed, dead). Runs only when the worker has
//! metrics.

use crate::broker::Broker;
use crate::keys::Keys;
use crate::metrics::Metrics;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Average time between samples; each wait is jittered by ±20 % so workers started together
/// do not sample together.
const INTERVAL: Duration = Duration::from_secs(5);

/// Samples the queue depths of some groups; see the module doc.
pub(crate) struct DepthSampler {
    /// Where the figures are read.
    broker: Broker,
    /// The groups sampled.
    groups: Vec<Keys>,
    /// Where the depths are recorded.
    metrics: Metrics,
}

impl DepthSampler {
    /// A sampler of `groups` into `metrics`.
    pub(crate) fn new(broker: Broker, groups: Vec<Keys>, metrics: Metrics) -> DepthSampler {
        DepthSampler {
            broker,
            groups,
            metrics,
        }
    }

    /// One sample of every group. A failure is logged and retried at the next sample.
    pub(crate) async fn pass(&self) {
        for keys in &self.groups {
            match self.broker.queues(keys).await {
                Ok(raw) => {
                    let streams: Vec<_> = raw
                        .streams
                        .iter()
                        .map(|s| (s.priority, s.ready(), s.pending()))
                        .collect();
                    self.metrics.queue_depths(
                        keys.group().as_str(),
                        &streams,
                        raw.delayed,
                        raw.dead,
                    );
                }
                Err(e) => {
                    tracing::debug!(group = %keys.group(), error = %e, "sampling queue depths failed")
                }
            }
        }
    }

    /// Samples until `stop` fires.
    pub(crate) async fn run(self, stop: CancellationToken) {
        for keys in &self.groups {
            self.metrics.announce_group(keys.group().as_str());
        }
        loop {
            self.pass().await;
            let jitter = rand::random_range(0.8..1.2);
            tokio::select! {
                () = tokio::time::sleep(INTERVAL.mul_f64(jitter)) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}
