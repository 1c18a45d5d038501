//! Starting a worker: check Redis and the settings, create the consumer groups, then spawn
//! every part, in this order: the scheduler, the finisher, the pub/sub listener, the
//! heartbeat, per group a promoter and a fetcher, the reaper, the depth sampler and the
//! metrics endpoint.

use super::buffer::Buffer;
use super::config::WorkerConfig;
use super::finisher::Finisher;
use super::heartbeat::Heartbeat;
use super::launch::Launcher;
use super::promoter::Promoter;
use super::reaper::Reaper;
use super::room::Room;
use super::running::RunningJobs;
use super::sampler::DepthSampler;
use super::shared::Shared;
use super::stop::Started;
use super::unwritten::Unwritten;
use super::wake::{OnMessage, WakeListener};
use super::{Completion, Worker, fetcher, preflight};
use crate::broker::{Broker, DeadRetention, redact_url};
use crate::error::{Error, Result};
use crate::job::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::keys::{GroupName, Keys};
use crate::metrics::Metrics;
use crate::outage::Connectivity;
use crate::schedule::Schedule;
use crate::scheduler::Scheduler;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

impl<S: Clone + Send + Sync + 'static> Worker<S> {
    /// Checks, prepares and spawns every part; see the module doc. Fails, having spawned
    /// nothing, when Redis is unreachable or unsafe, a schedule is invalid or the metrics
    /// address cannot be bound.
    pub(super) async fn start(self) -> Result<Started<S>> {
        let broker = Broker::connect(&self.url)?;
        broker.ping().await?;
        preflight::check(&broker, &redact_url(&self.url)).await?;
        let scheduler = scheduler(&broker, self.schedules)?;
        let all_keys = ensure_groups(&broker, &self.groups).await?;
        let mut config = self.config.clone();
        let metrics_server = bind_metrics(&mut config).await?;
        log_started(&self.url, &self.groups, &self.registry.names(), &config);
        let connectivity = Arc::new(Connectivity::default());
        let running = Arc::new(RunningJobs::default());
        let unwritten = Arc::new(Unwritten::new(config.concurrency));
        let shared = Arc::new(Shared {
            broker: broker.clone(),
            config: config.clone(),
            state: self.state,
            registry: self.registry,
            layers: self.layers,
            running: running.clone(),
            connectivity: connectivity.clone(),
            unwritten: unwritten.clone(),
        });

        let stop_fetching = CancellationToken::new();
        let stop_background = CancellationToken::new();
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let jobs = TaskTracker::new();
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Completion>();

        let scheduler = scheduler.map(|scheduler| {
            tokio::spawn(scheduler.run(stop_background.clone().cancelled_owned()))
        });
        let finisher = tokio::spawn(
            Finisher {
                broker: broker.clone(),
                consumer: config.consumer.clone(),
                dead_retention: DeadRetention {
                    max_len: config.dead_max_len,
                    max_age: config.dead_max_age,
                },
                connectivity: connectivity.clone(),
                give_up_after: config.visibility_timeout,
                outcomes: done_rx,
                slots: slots.clone(),
                concurrency: config.concurrency,
                unwritten,
            }
            .run(),
        );
        let launcher = Launcher {
            shared: shared.clone(),
            jobs: jobs.clone(),
            done: done_tx,
        };
        let wakes: Vec<Arc<Notify>> = all_keys.iter().map(|_| Arc::new(Notify::new())).collect();
        let listener = tokio::spawn(
            WakeListener::new(
                broker.clone(),
                connectivity.clone(),
                subscriptions(&all_keys, &wakes, &running),
            )
            .run(stop_background.clone()),
        );
        let heartbeat = tokio::spawn(
            Heartbeat {
                broker: broker.clone(),
                consumer: config.consumer.clone(),
                interval: config.heartbeat_interval(),
                running,
                connectivity: connectivity.clone(),
            }
            .run(stop_background.clone()),
        );
        let mut promoters = Vec::new();
        let mut fetchers = Vec::new();
        let mut buffers = Vec::new();
        for (keys, wake) in all_keys.iter().zip(wakes) {
            let promoter = Promoter::new(
                broker.clone(),
                keys.clone(),
                wake,
                config.promote_batch,
                connectivity.clone(),
            );
            promoters.push(tokio::spawn(promoter.run(stop_background.clone())));
            let buffer = Arc::new(Buffer::default());
            buffers.push(buffer.clone());
            let fetcher = fetcher::Fetcher {
                launcher: launcher.clone(),
                keys: keys.clone(),
                slots: slots.clone(),
                room: Arc::new(Room::default()),
                buffer,
                paused: Default::default(),
                handed_back: Default::default(),
            };
            fetchers.push(tokio::spawn(fetcher.run(stop_fetching.clone())));
        }
        // The reaper takes the last launcher, and with it the last outcome sender outside the
        // job tasks: the finisher ends once the fetchers, the reaper and the jobs are done.
        fetchers.push(tokio::spawn(
            Reaper::new(launcher, all_keys.clone(), slots.clone(), buffers)
                .run(stop_fetching.clone()),
        ));
        let samplers = spawn_metrics(
            &config,
            &broker,
            &all_keys,
            metrics_server,
            &stop_background,
        );

        Ok(Started {
            shared,
            stop_fetching,
            stop_background,
            jobs,
            fetchers,
            finisher,
            heartbeat,
            promoters,
            samplers,
            listener,
            scheduler,
        })
    }
}

/// The scheduler of the worker's schedules, checked; none without schedules. It refuses jobs
/// over the producers' default payload limit.
fn scheduler(broker: &Broker, schedules: Vec<Schedule>) -> Result<Option<Scheduler>> {
    if schedules.is_empty() {
        return Ok(None);
    }
    let mut scheduler = Scheduler::on_broker(broker.clone(), DEFAULT_MAX_PAYLOAD_BYTES);
    for s in schedules {
        scheduler = scheduler.schedule(s);
    }
    scheduler.check()?;
    Ok(Some(scheduler))
}

/// Creates the consumer groups of every group served that lack them; returns their keys.
async fn ensure_groups(broker: &Broker, groups: &[GroupName]) -> Result<Vec<Keys>> {
    let all_keys: Vec<Keys> = groups.iter().map(Keys::new).collect();
    for keys in &all_keys {
        broker.ensure_groups(keys).await?;
    }
    Ok(all_keys)
}

/// Binds the metrics endpoint when an address is set, creating the metrics to serve if none
/// were given.
async fn bind_metrics(config: &mut WorkerConfig) -> Result<Option<(TcpListener, Metrics)>> {
    let Some(addr) = config.metrics_addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(format!(
            "cannot serve metrics on {addr}: {e} (pick another --metrics-addr)"
        ))
    })?;
    let metrics = config.metrics.get_or_insert_with(Metrics::new).clone();
    Ok(Some((listener, metrics)))
}

/// Logs the settings in force, once.
fn log_started(url: &str, groups: &[GroupName], tasks: &[&str], config: &WorkerConfig) {
    tracing::info!(
        groups = ?groups.iter().map(GroupName::as_str).collect::<Vec<_>>(),
        tasks = ?tasks,
        concurrency = config.concurrency,
        consumer = %config.consumer,
        visibility_timeout = %humantime::format_duration(config.visibility_timeout),
        max_deliveries = config.max_deliveries,
        shutdown_grace = %humantime::format_duration(config.shutdown_grace),
        redis = %redact_url(url),
        retry_backoff = %format!(
            "{} doubling, capped at {}",
            humantime::format_duration(config.backoff.ceiling(1)),
            humantime::format_duration(config.backoff.ceiling(u32::MAX))
        ),
        max_payload_bytes = config.max_payload_bytes,
        dead_max_len = config.dead_max_len,
        dead_max_age = %humantime::format_duration(config.dead_max_age),
        metrics = %config.metrics_addr.map_or("off".to_string(), |a| format!("http://{a}/metrics")),
        "worker started"
    );
}

/// The pub/sub listener's channels: per group, its wake channel (wakes the group's promoter)
/// and its cancel channel (passes job ids to the running jobs).
fn subscriptions(
    all_keys: &[Keys],
    wakes: &[Arc<Notify>],
    running: &Arc<RunningJobs>,
) -> Vec<(String, OnMessage)> {
    let mut subscriptions = Vec::new();
    for (keys, wake) in all_keys.iter().zip(wakes) {
        subscriptions.push((keys.wake_channel(), OnMessage::Wake(wake.clone())));
        let (running, group) = (running.clone(), keys.group().clone());
        let on_cancel = move |job_id: &str| running.request_cancel(&group, job_id);
        subscriptions.push((keys.cancel_channel(), OnMessage::Call(Arc::new(on_cancel))));
    }
    subscriptions
}

/// Spawns the depth sampler when the worker has metrics, and the metrics endpoint when it
/// serves them.
fn spawn_metrics(
    config: &WorkerConfig,
    broker: &Broker,
    all_keys: &[Keys],
    server: Option<(TcpListener, Metrics)>,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut samplers = Vec::new();
    if let Some(metrics) = &config.metrics {
        let sampler = DepthSampler::new(broker.clone(), all_keys.to_vec(), metrics.clone());
        samplers.push(tokio::spawn(sampler.run(stop.clone())));
    }
    if let Some((listener, metrics)) = server {
        samplers.push(tokio::spawn(crate::metrics::serve(
            listener,
            metrics,
            stop.clone(),
        )));
    }
    samplers
}
