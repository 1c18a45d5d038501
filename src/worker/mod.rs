//! The [`Worker`]: a pool of concurrent job executions for one or more groups, and its
//! builder.
//!
//! `run` starts, per group, one fetcher (reads at most the free slots, on a connection of its
//! own) and one promoter (moves due jobs from the delayed set), plus one finisher, one pub/sub
//! listener (wake-ups and cancel requests) and, when it has schedules, one scheduler for the
//! whole worker. Jobs run as tasks of their own.

mod cancel;
mod executor;
mod fetcher;
mod finisher;
mod heartbeat;
mod launch;
mod preflight;
mod promoter;
mod reaper;
mod sampler;
mod wake;

use crate::backoff::Backoff;
use crate::broker::Broker;
use crate::client::Client;
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::job::{DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Payload};
use crate::keys::{GroupName, Keys};
use crate::metrics::Metrics;
use crate::middleware::Middleware;
use crate::outage::Connectivity;
use crate::redis;
use crate::schedule::Schedule;
use crate::scheduler::Scheduler;
use crate::task::{ErasedHandler, Handler, JobResult, Registry, TaskOptions};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use executor::Completion;
use promoter::Promoter;
use sampler::DepthSampler;
use wake::{OnMessage, WakeListener};

/// Settings of a worker; [`Default`] holds every default in one place.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    /// Jobs run at once across all groups. Default 16.
    pub(crate) concurrency: usize,
    /// How long an idle fetcher blocks waiting for new jobs before it checks for shutdown.
    /// Default 1 s: short enough that a stop is noticed at once, long enough to cost nothing.
    pub(crate) block: Duration,
    /// How long in-flight jobs may run on after a stop before they are handed back. Default 30 s.
    pub(crate) shutdown_grace: Duration,
    /// Retry delays. Default: 1 s doubling, capped at 10 min.
    pub(crate) backoff: Backoff,
    /// Largest `args` a worker decodes; larger entries go to the dead stream undecoded.
    /// Default 512 KiB.
    pub(crate) max_payload_bytes: usize,
    /// Most delayed jobs moved per promote call. Default 500.
    pub(crate) promote_batch: usize,
    /// This worker's consumer name in the groups. Default `host-pid-random`.
    pub(crate) consumer: String,
    /// How long a delivered entry may go without a sign of life from its worker before the
    /// reaper of any worker takes it over. Default 30 s. Heartbeats renew it every third.
    pub(crate) visibility_timeout: Duration,
    /// Deliveries after which an entry that keeps stalling goes to the dead stream. Default 5.
    pub(crate) max_deliveries: u32,
    /// Retry limit of jobs whose job and task set none. Default 3.
    pub(crate) max_retries: u32,
    /// Timeout of jobs whose job and task set none. Default 30 min.
    pub(crate) timeout: Duration,
    /// Where job outcomes, durations and queue depths are recorded. Default none.
    pub(crate) metrics: Option<Metrics>,
    /// Address to serve `GET /metrics` on while running. Default none (not served).
    pub(crate) metrics_addr: Option<SocketAddr>,
}

/// Shortest visibility timeout accepted: heartbeats go out every third of it.
pub(crate) const MIN_VISIBILITY_TIMEOUT: Duration = Duration::from_millis(300);

impl WorkerConfig {
    /// How often leases are renewed: a third of the visibility timeout.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.visibility_timeout / 3
    }

    /// How often the reaper looks for stalled entries: a third of the visibility timeout,
    /// at most every 10 s.
    pub(crate) fn reap_interval(&self) -> Duration {
        (self.visibility_timeout / 3).min(Duration::from_secs(10))
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 16,
            block: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            backoff: Backoff::default(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            promote_batch: 500,
            consumer: default_consumer_name(),
            visibility_timeout: Duration::from_secs(30),
            max_deliveries: 5,
            max_retries: DEFAULT_MAX_RETRIES,
            timeout: DEFAULT_TIMEOUT,
            metrics: None,
            metrics_addr: None,
        }
    }
}

fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

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
    url: String,
    groups: Vec<String>,
    config: WorkerConfig,
    state: S,
    registry: Registry<S>,
    layers: Vec<Arc<dyn Middleware>>,
    schedules: Vec<Schedule>,
    error: Option<Error>,
}

impl<S> std::fmt::Debug for WorkerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("url", &redis::redact_url(&self.url))
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

    /// Runs `schedule` in this worker: a [`Scheduler`] enqueues its jobs at its ticks while
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
        redis::open(&self.url)?;
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

/// A configured worker, ready to [`run`](Worker::run).
pub struct Worker<S = ()> {
    url: String,
    groups: Vec<GroupName>,
    config: WorkerConfig,
    state: S,
    registry: Arc<Registry<S>>,
    layers: Arc<[Arc<dyn Middleware>]>,
    schedules: Vec<Schedule>,
}

impl<S> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("url", &redis::redact_url(&self.url))
            .field("groups", &self.groups)
            .field("config", &self.config)
            .finish_non_exhaustive()
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

/// What the worker's components share.
pub(crate) struct Shared<S> {
    pub(crate) broker: Broker,
    pub(crate) config: WorkerConfig,
    pub(crate) state: S,
    pub(crate) registry: Arc<Registry<S>>,
    pub(crate) layers: Arc<[Arc<dyn Middleware>]>,
    /// Jobs whose handler is running, by (group, entry id): what a stop hands back.
    pub(crate) running: Mutex<HashMap<(GroupName, String), executor::Running>>,
    /// Whether Redis answers; logs each outage once.
    pub(crate) connectivity: Arc<Connectivity>,
    /// Cancel requests, by (group, job id), that matched no running job yet (see `cancel`).
    pub(crate) cancel_requests: Mutex<HashMap<(GroupName, String), std::time::Instant>>,
}

impl<S: Clone + Send + Sync + 'static> Worker<S> {
    /// The consumer name this worker uses in its groups.
    pub fn consumer_name(&self) -> &str {
        &self.config.consumer
    }

    /// Serves the groups until `shutdown` completes, then stops in two phases: stop fetching,
    /// let in-flight jobs finish within the grace period, hand the rest back to their streams.
    /// Returns an error only when it cannot start (Redis unreachable, say).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let client = redis::open(&self.url)?;
        let broker = Broker::connect(&self.url)?;
        broker.ping().await?;
        preflight::check(&broker, &redis::redact_url(&self.url)).await?;
        let scheduler = (!self.schedules.is_empty()).then(|| {
            let client = Client::from_broker(broker.clone());
            let mut scheduler = Scheduler::new(&client);
            for s in self.schedules {
                scheduler = scheduler.schedule(s);
            }
            (client, scheduler)
        });
        if let Some((client, scheduler)) = &scheduler {
            Scheduler::check(client, scheduler.schedules())?;
        }
        let all_keys: Vec<Keys> = self.groups.iter().map(Keys::new).collect();
        for keys in &all_keys {
            broker.ensure_groups(keys).await?;
        }
        let mut config = self.config.clone();
        let metrics_server = match config.metrics_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    Error::Config(format!(
                        "cannot serve metrics on {addr}: {e} (pick another --metrics-addr)"
                    ))
                })?;
                let metrics = config.metrics.get_or_insert_with(Metrics::new).clone();
                Some((listener, metrics))
            }
            None => None,
        };
        tracing::info!(
            groups = ?self.groups.iter().map(GroupName::as_str).collect::<Vec<_>>(),
            tasks = ?self.registry.names(),
            concurrency = config.concurrency,
            consumer = %config.consumer,
            visibility_timeout = %humantime::format_duration(config.visibility_timeout),
            max_deliveries = config.max_deliveries,
            shutdown_grace = %humantime::format_duration(config.shutdown_grace),
            redis = %redis::redact_url(&self.url),
            retry_backoff = %format!(
                "{} doubling, capped at {}",
                humantime::format_duration(config.backoff.ceiling(1)),
                humantime::format_duration(config.backoff.ceiling(u32::MAX))
            ),
            max_payload_bytes = config.max_payload_bytes,
            metrics = %config.metrics_addr.map_or("off".to_string(), |a| format!("http://{a}/metrics")),
            "worker started"
        );
        let connectivity = Arc::new(Connectivity::default());
        let shared = Arc::new(Shared {
            broker: broker.clone(),
            config: config.clone(),
            state: self.state,
            registry: self.registry,
            layers: self.layers,
            running: Mutex::new(HashMap::new()),
            connectivity: connectivity.clone(),
            cancel_requests: Mutex::new(HashMap::new()),
        });

        let stop_fetching = CancellationToken::new();
        let stop_background = CancellationToken::new();
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let jobs = TaskTracker::new();
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Completion>();

        let scheduler = scheduler.map(|(_, scheduler)| {
            tokio::spawn(scheduler.run(stop_background.clone().cancelled_owned()))
        });
        let finisher = tokio::spawn(
            finisher::Finisher {
                broker: broker.clone(),
                consumer: config.consumer.clone(),
                connectivity: connectivity.clone(),
                give_up_after: config.visibility_timeout,
                outcomes: done_rx,
            }
            .run(),
        );
        let launcher = launch::Launcher {
            shared: shared.clone(),
            jobs: jobs.clone(),
            done: done_tx.clone(),
        };
        let wakes: Vec<Arc<Notify>> = all_keys.iter().map(|_| Arc::new(Notify::new())).collect();
        let mut subscriptions = Vec::new();
        for (keys, wake) in all_keys.iter().zip(&wakes) {
            subscriptions.push((keys.wake_channel(), OnMessage::Wake(wake.clone())));
            let (shared, group) = (shared.clone(), keys.group().clone());
            let on_cancel = move |job_id: &str| cancel::request(&shared, &group, job_id);
            subscriptions.push((keys.cancel_channel(), OnMessage::Call(Arc::new(on_cancel))));
        }
        let listener = tokio::spawn(
            WakeListener::new(client.clone(), connectivity.clone(), subscriptions)
                .run(stop_background.clone()),
        );
        let heartbeat = tokio::spawn(
            heartbeat::Heartbeat {
                shared: shared.clone(),
            }
            .run(stop_background.clone()),
        );
        let mut promoters = Vec::new();
        let mut fetchers = Vec::new();
        for (keys, wake) in all_keys.iter().zip(wakes) {
            let promoter = Promoter::new(
                broker.clone(),
                keys.clone(),
                wake,
                config.promote_batch,
                connectivity.clone(),
            );
            promoters.push(tokio::spawn(promoter.run(stop_background.clone())));
            let fetcher = fetcher::Fetcher {
                launcher: launcher.clone(),
                client: client.clone(),
                keys: keys.clone(),
                slots: slots.clone(),
                paused: Default::default(),
            };
            fetchers.push(tokio::spawn(fetcher.run(stop_fetching.clone())));
        }
        fetchers.push(tokio::spawn(
            reaper::Reaper::new(launcher, all_keys.clone(), slots.clone())
                .run(stop_fetching.clone()),
        ));
        drop(done_tx);
        let mut samplers = Vec::new();
        if let Some(metrics) = &config.metrics {
            let sampler = DepthSampler::new(broker.clone(), all_keys.clone(), metrics.clone());
            samplers.push(tokio::spawn(sampler.run(stop_background.clone())));
        }
        if let Some((listener, metrics)) = metrics_server {
            samplers.push(tokio::spawn(crate::metrics::serve(
                listener,
                metrics,
                stop_background.clone(),
            )));
        }

        shutdown.await;
        // Phase one: stop taking work. Fetchers finish the read in flight (bounded by BLOCK),
        // the reaper its pass, and they exit; nothing new starts after this. Heartbeats go on
        // until the last job is finished or handed back.
        tracing::info!("stopping: no new jobs are fetched");
        stop_fetching.cancel();
        for f in fetchers {
            let _ = f.await;
        }
        // Phase two: let running jobs finish within the grace period, then hand back the rest.
        jobs.close();
        if tokio::time::timeout(config.shutdown_grace, jobs.wait())
            .await
            .is_err()
        {
            executor::hand_back_running(&shared).await;
            jobs.wait().await;
        }
        // The finisher drains the outcomes already sent and exits when every sender is gone;
        // the promoters, the listener and the scheduler stop last, so retries scheduled above
        // get promoted by whichever worker is still running.
        let _ = finisher.await;
        stop_background.cancel();
        let _ = heartbeat.await;
        for p in promoters.into_iter().chain(samplers) {
            let _ = p.await;
        }
        let _ = listener.await;
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        tracing::info!("worker stopped");
        Ok(())
    }
}
