//! [`WorkerBuilder`]: collects a worker's groups, settings, state, tasks, middleware and
//! schedules, and checks them in [`build`](WorkerBuilder::build).

use super::Worker;
use super::config::{MIN_VISIBILITY_TIMEOUT, WorkerConfig};
use crate::backoff::Backoff;
use crate::broker::{self, redact_url};
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::job::Payload;
use crate::keys::GroupName;
use crate::metrics::Metrics;
use crate::middleware::Middleware;
use crate::schedule::Schedule;
use crate::task::{ErasedHandler, Handler, JobResult, Registry, TaskOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`Worker`]: groups, concurrency, state, tasks and middleware. Nothing connects
/// until [`Worker::run`].
///
/// ```no_run
/// use streamworker::{JobContext, State, TaskError, Worker};
///
/// #[derive(Clone)]
/// struct App { sender: String }
///
/// #[derive(serde::Deserialize)]
/// struct Email { to: String }
///
/// async fn send_email(email: Email, ctx: JobContext, app: State<App>) -> Result<(), TaskError> {
///     println!("{} sends to {} (attempt {})", app.sender, email.to, ctx.attempt());
///     Ok(())
/// }
///
/// # async fn demo() -> Result<(), streamworker::Error> {
/// let worker = Worker::builder("redis://127.0.0.1:6379")
///     .group("emails")
///     .concurrency(32)
///     .state(App { sender: "noreply@example.com".into() })
///     .task("send_email", send_email)
///     .build()?;
/// worker.run(async { tokio::signal::ctrl_c().await.ok(); }).await
/// # }
/// ```
pub struct WorkerBuilder<S = ()> {
    /// The Redis URL.
    url: String,
    /// The groups served, as given (checked in `build`).
    groups: Vec<String>,
    /// The settings.
    config: WorkerConfig,
    /// What handlers taking [`State<S>`](crate::State) receive.
    state: S,
    /// The task table.
    registry: Registry<S>,
    /// The middleware, outermost first.
    layers: Vec<Arc<dyn Middleware>>,
    /// The periodic schedules this worker runs.
    schedules: Vec<Schedule>,
    /// A mistake found while building, reported by `build`.
    error: Option<Error>,
}

impl<S> std::fmt::Debug for WorkerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("url", &redact_url(&self.url))
            .field("groups", &self.groups)
            .field("config", &self.config)
            .field("registry", &self.registry)
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl WorkerBuilder<()> {
    /// Sets the per-process state that handlers taking [`State<S>`](crate::State) receive.
    /// Call it before registering tasks.
    pub fn state<S: Clone + Send + Sync + 'static>(self, state: S) -> WorkerBuilder<S> {
        let error = self.error.or_else(|| {
            (!self.registry.is_empty())
                .then(|| Error::Config("call state(..) before registering tasks".into()))
        });
        WorkerBuilder {
            url: self.url,
            groups: self.groups,
            config: self.config,
            state,
            registry: Registry::default(),
            layers: self.layers,
            schedules: self.schedules,
            error,
        }
    }
}

impl<S: Clone + Send + Sync + 'static> WorkerBuilder<S> {
    /// Serves `group`; call once per group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// How many jobs run at once, across all groups (default 16).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Most jobs each group's fetcher reads ahead of the free slots (default 256), so a slot
    /// that frees up starts the next job without a round trip. How deep it reads follows
    /// the handlers' pace: at concurrency 16, jobs of 10 ms read about 80 ahead, jobs of a
    /// second none. A job read ahead that has not started within
    /// 100 ms (at most a third of the visibility timeout) goes back to its stream for
    /// another worker. `0` reads only as many jobs as there are free slots.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.config.prefetch = n;
        self
    }

    /// How long in-flight jobs may run on after a stop (default 30 s); the rest are handed
    /// back to their stream for another worker.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// The retry delay policy (default 1 s doubling, capped at 10 min, with jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Largest `args` decoded (default 512 KiB); larger jobs go to the dead stream.
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.config.max_payload_bytes = limit;
        self
    }

    /// This worker's consumer name (default `host-pid-random`); must be unique per process.
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.config.consumer = name.into();
        self
    }

    /// How long a running job may go without its worker's heartbeat before another worker
    /// takes it over (default 30 s, at least 300 ms). A live worker renews its jobs every third
    /// of it, so long jobs are never taken over; a worker that died or froze loses its jobs
    /// after it.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.config.visibility_timeout = timeout;
        self
    }

    /// Deliveries after which a job whose worker keeps dying or freezing while running it goes
    /// to the dead stream as `stalled N times` (default 5).
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.config.max_deliveries = n;
        self
    }

    /// Retry limit for jobs whose job and task set none (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self
    }

    /// Timeout of one attempt for jobs whose job and task set none (default 30 min).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Most jobs kept in each served group's dead stream (default 10,000); each time this
    /// worker adds to it, the oldest beyond the bound are deleted. 0 keeps no count bound.
    pub fn dead_max_len(mut self, n: u64) -> Self {
        self.config.dead_max_len = n;
        self
    }

    /// Longest time a job is kept in each served group's dead stream (default 180 days); each
    /// time this worker adds to it, older jobs are deleted. `Duration::ZERO` keeps no age
    /// bound.
    pub fn dead_max_age(mut self, age: Duration) -> Self {
        self.config.dead_max_age = age;
        self
    }

    /// Registers `handler` for task `name` with defaults of its own (retry limit, timeout)
    /// for the jobs that set none.
    ///
    /// ```no_run
    /// use streamworker::{TaskError, TaskOptions, Worker};
    ///
    /// async fn charge(order: u64) -> Result<(), TaskError> { Ok(()) }
    ///
    /// let worker = Worker::builder("redis://127.0.0.1:6379")
    ///     .group("payments")
    ///     .task_with("charge", charge, TaskOptions::new().max_retries(10))
    ///     .build();
    /// ```
    pub fn task_with<H, M>(mut self, name: &str, handler: H, options: TaskOptions) -> Self
    where
        H: Handler<S, M>,
    {
        self.registry.add(name, handler);
        self.registry.set_options(name, options);
        self
    }

    /// Registers `handler` for task `name`. Registering a name twice makes
    /// [`build`](Self::build) fail with [`Error::DuplicateTask`] naming both handlers.
    pub fn task<H, M>(mut self, name: &str, handler: H) -> Self
    where
        H: Handler<S, M>,
    {
        self.registry.add(name, handler);
        self
    }

    /// Runs `handler` for every task that has no handler of its own (what `--exec` uses).
    /// Without a fallback, such jobs go to the dead stream as unregistered.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Payload, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let erased: ErasedHandler<S> =
            Arc::new(move |payload: &Payload, ctx, _: &S| Box::pin(handler(payload.clone(), ctx)));
        self.registry.set_fallback(erased);
        self
    }

    /// Records job outcomes, durations, jobs in flight and queue depths (sampled every few
    /// seconds) into `metrics`. Default: no metrics.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.config.metrics = Some(metrics);
        self
    }

    /// Serves the metrics as Prometheus (OpenMetrics) text on `GET http://ADDR/metrics` while
    /// the worker runs; records into a fresh [`Metrics`] unless [`metrics`](Self::metrics)
    /// gave one. Default: not served.
    pub fn metrics_addr(mut self, addr: SocketAddr) -> Self {
        self.config.metrics_addr = Some(addr);
        self
    }

    /// Runs `schedule` in this worker: a [`Scheduler`](crate::Scheduler) enqueues its jobs at its ticks while
    /// the worker runs, exactly once across all the workers that run the same schedule. Its
    /// jobs may go to any group, served by this worker or not.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    /// Adds a middleware layer; see [`crate::middleware`] for the order.
    pub fn layer(mut self, layer: impl Middleware) -> Self {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Validates the settings and the task table.
    pub fn build(mut self) -> Result<Worker<S>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.registry.check()?;
        if self.groups.is_empty() {
            return Err(Error::Config(
                "no group to serve: add .group(\"name\") (CLI: --group NAME)".into(),
            ));
        }
        if self.config.concurrency == 0 {
            return Err(Error::Config("concurrency must be at least 1".into()));
        }
        if self.config.visibility_timeout < MIN_VISIBILITY_TIMEOUT {
            return Err(Error::Config(format!(
                "visibility timeout {} is too short: use at least {}",
                humantime::format_duration(self.config.visibility_timeout),
                humantime::format_duration(MIN_VISIBILITY_TIMEOUT)
            )));
        }
        if self.config.timeout.is_zero() {
            return Err(Error::Config("timeout must be more than 0".into()));
        }
        if self.config.max_deliveries == 0 {
            return Err(Error::Config("max deliveries must be at least 1".into()));
        }
        if self.registry.is_empty() {
            return Err(Error::Config(
                "no task registered: add .task(name, handler) (CLI: --exec CMD)".into(),
            ));
        }
        let mut groups: Vec<GroupName> = Vec::new();
        for g in &self.groups {
            let g = GroupName::new(g.clone())?;
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        broker::check_url(&self.url)?;
        Ok(Worker {
            url: self.url,
            groups,
            config: self.config,
            state: self.state,
            registry: Arc::new(self.registry),
            layers: self.layers.into(),
            schedules: self.schedules,
        })
    }
}

impl Worker<()> {
    /// Starts building a worker that connects to `url`.
    pub fn builder(url: impl Into<String>) -> WorkerBuilder<()> {
        WorkerBuilder {
            url: url.into(),
            groups: Vec::new(),
            config: WorkerConfig::default(),
            state: (),
            registry: Registry::default(),
            layers: Vec::new(),
            schedules: Vec::new(),
            error: None,
        }
    }
}
