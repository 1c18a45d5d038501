//! Prometheus metrics of a worker: jobs started and finished by outcome, job durations, jobs
//! in flight, queue depths and reaper claims. A [`Metrics`] is a value handed to the worker
//! (no global registry); exposition is `prometheus-client`'s OpenMetrics text encoder.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamworker::Error> {
//! use streamworker::{Metrics, Worker};
//!
//! let metrics = Metrics::new();
//! let worker = Worker::builder("redis://127.0.0.1:6379")
//!     .group("emails")
//!     .fallback(|_payload, _ctx| async { Ok(streamworker::Output::default()) })
//!     .metrics(metrics.clone())                       // record into it
//!     .metrics_addr("127.0.0.1:9898".parse().unwrap()) // and serve GET /metrics
//!     .build()?;
//! # let _ = worker;
//! println!("{}", metrics.encode()); // or serve it from your own HTTP server
//! # Ok(()) }
//! ```

mod server;

pub(crate) use server::serve;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    group: String,
    task: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    group: String,
    priority: String,
}

type Jobs = Family<JobLabels, Counter>;
type Durations = Family<JobLabels, Histogram, fn() -> Histogram>;

/// Job durations from 10 ms to about 45 min, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 19))
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    started: Jobs,
    succeeded: Jobs,
    failed: Jobs,
    retried: Jobs,
    dead: Jobs,
    duration: Durations,
    in_flight: Family<GroupLabels, Gauge>,
    ready: Family<QueueLabels, Gauge>,
    pending: Family<QueueLabels, Gauge>,
    delayed: Family<GroupLabels, Gauge>,
    dead_queue: Family<GroupLabels, Gauge>,
    reaper_claimed: Family<GroupLabels, Counter>,
    // Written by the outbox relay (feature `postgres`); registered either way, so the
    // metric names do not depend on how the binary was built.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    outbox_backlog: Gauge,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    outbox_failed: Gauge,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    outbox_relayed: Counter,
}

/// The metrics one worker (or several sharing it) records. Cheap to clone: clones share the
/// same counters. Give it to [`WorkerBuilder::metrics`](crate::WorkerBuilder::metrics); read it
/// with [`Metrics::encode`] or let the worker serve it
/// ([`WorkerBuilder::metrics_addr`](crate::WorkerBuilder::metrics_addr)).
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut jobs = |name: &str, help: &str| {
            let family = Jobs::default();
            registry.register(name, help, family.clone());
            family
        };
        let started = jobs("streamworker_jobs_started", "Jobs whose handler started");
        let succeeded = jobs(
            "streamworker_jobs_succeeded",
            "Jobs whose handler succeeded",
        );
        let failed = jobs(
            "streamworker_jobs_failed",
            "Attempts that failed (error, panic or timeout), whether retried or dead",
        );
        let retried = jobs(
            "streamworker_jobs_retried",
            "Failed attempts scheduled for another try",
        );
        let dead = jobs(
            "streamworker_jobs_dead",
            "Jobs moved to the dead stream (failures, unknown tasks, undecodable entries)",
        );
        let duration = Durations::new_with_constructor(duration_histogram);
        registry.register(
            "streamworker_job_duration_seconds",
            "How long handlers ran, whatever the outcome",
            duration.clone(),
        );
        let in_flight = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "streamworker_jobs_in_flight",
            "Jobs this worker is running now",
            in_flight.clone(),
        );
        let ready = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "streamworker_queue_ready",
            "Jobs waiting in a priority stream (sampled)",
            ready.clone(),
        );
        let pending = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "streamworker_queue_in_flight",
            "Jobs delivered to any worker and not finished, per priority stream (sampled)",
            pending.clone(),
        );
        let delayed = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "streamworker_queue_delayed",
            "Jobs waiting for a time (sampled)",
            delayed.clone(),
        );
        let dead_queue = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "streamworker_queue_dead",
            "Jobs in the dead stream (sampled)",
            dead_queue.clone(),
        );
        let reaper_claimed = Family::<GroupLabels, Counter>::default();
        registry.register(
            "streamworker_reaper_claimed",
            "Entries a reaper took over from a consumer presumed dead",
            reaper_claimed.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "streamworker_outbox_backlog",
            "Rows waiting in the PostgreSQL outbox for a relay (sampled by a relay)",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "streamworker_outbox_oldest_age_seconds",
            "How long the oldest row waiting in the outbox has waited; 0 when none waits (sampled by a relay)",
            outbox_oldest_age.clone(),
        );
        let outbox_failed = Gauge::default();
        registry.register(
            "streamworker_outbox_failed_rows",
            "Outbox rows a relay could not turn into a job; they wait for a fix (sampled by a relay)",
            outbox_failed.clone(),
        );
        let outbox_relayed = Counter::default();
        registry.register(
            "streamworker_outbox_relayed",
            "Jobs this process's relay moved from the outbox into Redis",
            outbox_relayed.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                started,
                succeeded,
                failed,
                retried,
                dead,
                duration,
                in_flight,
                ready,
                pending,
                delayed,
                dead_queue,
                reaper_claimed,
                outbox_backlog,
                outbox_oldest_age,
                outbox_failed,
                outbox_relayed,
            }),
        }
    }

    /// Every metric as OpenMetrics text (which Prometheus scrapes), content type
    /// [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Records a sample of the outbox: rows waiting, the oldest one's wait, failed rows.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn outbox_sampled(&self, backlog: u64, oldest_age: Duration, failed: u64) {
        self.inner.outbox_backlog.set(backlog as i64);
        self.inner.outbox_oldest_age.set(oldest_age.as_secs_f64());
        self.inner.outbox_failed.set(failed as i64);
    }

    /// Counts `n` jobs a relay moved into Redis.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn outbox_relayed(&self, n: u64) {
        self.inner.outbox_relayed.inc_by(n);
    }

    /// Counts `n` entries a reaper of `group` took over from consumers presumed dead.
    pub fn reaper_claimed(&self, group: &str, n: u64) {
        self.inner
            .reaper_claimed
            .get_or_create(&GroupLabels {
                group: group.to_string(),
            })
            .inc_by(n);
    }

    /// Creates the per-group series at zero (jobs in flight, reaper claims), so a group that
    /// has seen no job yet is present in the exposition.
    pub(crate) fn announce_group(&self, group: &str) {
        self.in_flight_add(group, 0);
        self.reaper_claimed(group, 0);
    }

    /// Starts timing one job of `task` in `group`: counts it started and in flight.
    pub(crate) fn job_started(&self, group: &str, task: &str) -> JobTimer {
        let labels = JobLabels {
            group: group.to_string(),
            task: task.to_string(),
        };
        self.inner.started.get_or_create(&labels).inc();
        self.in_flight_add(group, 1);
        JobTimer {
            metrics: Some(self.clone()),
            labels,
            started: Instant::now(),
        }
    }

    fn in_flight_add(&self, group: &str, delta: i64) {
        self.inner
            .in_flight
            .get_or_create(&GroupLabels {
                group: group.to_string(),
            })
            .inc_by(delta);
    }

    /// Counts a job of `group` moved to dead without running (unknown task, undecodable).
    pub(crate) fn job_dead_unrun(&self, group: &str, task: &str) {
        self.inner
            .dead
            .get_or_create(&JobLabels {
                group: group.to_string(),
                task: task.to_string(),
            })
            .inc();
    }

    /// Records a sample of a group's queue depths.
    pub(crate) fn queue_depths(
        &self,
        group: &str,
        streams: &[(crate::Priority, u64, u64)],
        delayed: u64,
        dead: u64,
    ) {
        let g = GroupLabels {
            group: group.to_string(),
        };
        for (priority, ready, pending) in streams {
            let q = QueueLabels {
                group: group.to_string(),
                priority: priority.to_string(),
            };
            self.inner.ready.get_or_create(&q).set(*ready as i64);
            self.inner.pending.get_or_create(&q).set(*pending as i64);
        }
        self.inner.delayed.get_or_create(&g).set(delayed as i64);
        self.inner.dead_queue.get_or_create(&g).set(dead as i64);
    }
}

/// One job being run: counts its outcome, observes its duration, and leaves the in-flight
/// count when dropped. Built inert (no metrics) when the worker has none.
#[derive(Debug)]
pub(crate) struct JobTimer {
    metrics: Option<Metrics>,
    labels: JobLabels,
    started: Instant,
}

impl JobTimer {
    /// [`Metrics::job_started`] when there are metrics, else an inert timer.
    pub(crate) fn start(metrics: Option<&Metrics>, group: &str, task: &str) -> JobTimer {
        match metrics {
            Some(m) => m.job_started(group, task),
            None => JobTimer {
                metrics: None,
                labels: JobLabels {
                    group: String::new(),
                    task: String::new(),
                },
                started: Instant::now(),
            },
        }
    }

    fn count(&self, pick: impl Fn(&Inner) -> &Jobs) {
        if let Some(m) = &self.metrics {
            pick(&m.inner).get_or_create(&self.labels).inc();
        }
    }

    fn observe(&self) {
        if let Some(m) = &self.metrics {
            m.inner
                .duration
                .get_or_create(&self.labels)
                .observe(self.started.elapsed().as_secs_f64());
        }
    }

    /// The handler succeeded.
    pub(crate) fn succeeded(&self) {
        self.observe();
        self.count(|i| &i.succeeded);
    }

    /// The attempt failed (error, panic or timeout); `retried` or `dead` follows.
    pub(crate) fn failed(&self) {
        self.observe();
        self.count(|i| &i.failed);
    }

    /// The failed job was scheduled for another attempt.
    pub(crate) fn retried(&self) {
        self.count(|i| &i.retried);
    }

    /// The failed job was moved to the dead stream.
    pub(crate) fn dead(&self) {
        self.count(|i| &i.dead);
    }
}

impl Drop for JobTimer {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.in_flight_add(&self.labels.group, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_show_in_the_exposition() {
        let m = Metrics::new();
        m.reaper_claimed("emails", 2);
        m.reaper_claimed("emails", 3);
        {
            let timer = m.job_started("emails", "send");
            assert!(
                m.encode()
                    .contains(r#"streamworker_jobs_in_flight{group="emails"} 1"#)
            );
            timer.failed();
            timer.retried();
        }
        let text = m.encode();
        for line in [
            r#"streamworker_reaper_claimed_total{group="emails"} 5"#,
            r#"streamworker_jobs_started_total{group="emails",task="send"} 1"#,
            r#"streamworker_jobs_failed_total{group="emails",task="send"} 1"#,
            r#"streamworker_jobs_retried_total{group="emails",task="send"} 1"#,
            r#"streamworker_job_duration_seconds_count{group="emails",task="send"} 1"#,
            r#"streamworker_jobs_in_flight{group="emails"} 0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
        let inert = JobTimer::start(None, "g", "t");
        inert.succeeded();
    }
}
