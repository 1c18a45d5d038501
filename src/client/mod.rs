//! The producer side: [`Client`] enqueues jobs and reads the status of tracked ones.
//!
//! - this file: [`Client`] and [`CancelOutcome`];
//! - `batch`: [`JobBatch`], jobs sent together when a request commits;
//! - `submit`: the checks and the round trip both of them enqueue with.

mod batch;
mod submit;

pub use batch::JobBatch;

use crate::broker::{Broker, CancelReply, LockArg, Pool};
use crate::error::{Error, Result};
use crate::job::{DEFAULT_MAX_PAYLOAD_BYTES, Job, JobId, JobState, JobStatus};
use crate::keys::{GroupName, Keys, validate_name};
use crate::schedule::ScheduleInfo;
use std::time::{Duration, Instant};

/// Enqueues jobs and reads their status. Cheap to clone; build one per application and share
/// it (an HTTP handler can hold a clone). No global configuration is involved.
///
/// ```no_run
/// # async fn demo() -> Result<(), streamworker::Error> {
/// use streamworker::{Client, Job};
/// let client = Client::connect("redis://127.0.0.1:6379").await?;
/// let id = client
///     .enqueue(Job::new("emails", "send_email", &serde_json::json!({"to": "a@b.c"}))?)
///     .await?;
/// println!("queued {id}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    /// Where its commands go.
    broker: Broker,
    /// Largest encoded arguments accepted (see [`Client::max_payload_bytes`]).
    max_payload_bytes: usize,
}

/// Entries read per cancel round trip while scanning the streams for a job.
const CANCEL_SCAN_LIMIT: usize = 1000;
/// Round trips one cancel may take: bounds the scan to 100,000 entries.
const CANCEL_MAX_CALLS: usize = 100;

/// What [`Client::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was waiting and has been removed: it will not run.
    Removed {
        /// Whether it was waiting for a due time (delay or retry) rather than in its stream.
        was_scheduled: bool,
    },
    /// The job is running: its worker was asked to stop it.
    Requested {
        /// The consumer (worker) running it.
        consumer: String,
        /// How many workers received the request; 0 means no worker of the group is
        /// listening (all disconnected), so the job runs on to its end.
        listeners: usize,
    },
    /// The job already ended (its status record says so): nothing to cancel.
    AlreadyFinished(JobState),
    /// No job with this id is waiting, scheduled or running in the group (finished jobs are
    /// only known when they kept their result).
    NotFound,
}

impl Client {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port[/db]`) and checks
    /// that it answers. The client and its clones send their commands on one shared
    /// multiplexed connection, one round trip per command; a connection that breaks is
    /// replaced on the next call.
    ///
    /// A node of a Redis Cluster is found to be one (`INFO cluster`) and the client talks to
    /// the whole cluster; several seed URLs may be given, comma-separated
    /// (`redis://a:7000,redis://b:7001`), so that it starts while one seed is down.
    /// `redis+sentinel://host:26379[,host:port...]/MASTER-NAME` finds the master through
    /// Sentinel, and finds it again after a fail-over.
    pub async fn connect(url: &str) -> Result<Client> {
        let client = Client {
            broker: Broker::connect(url)?,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        };
        client.broker.ping().await?;
        Ok(client)
    }

    /// The broker this client sends through.
    pub(crate) fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Uses an existing connection pool, a `deadpool_redis::Pool` (the one the application
    /// already has).
    ///
    /// Each call checks a connection out of the pool, and `deadpool_redis`'s manager sends a
    /// PING (and UNWATCH) on every checkout of an open connection: a command costs two round
    /// trips this way. [`Client::connect`] shares one multiplexed connection instead, where a
    /// command costs one.
    pub fn from_pool(pool: Pool) -> Client {
        Client {
            broker: Broker::pooled(pool),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Sets the largest encoded arguments accepted (default
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`]); larger jobs are refused before they reach Redis.
    pub fn max_payload_bytes(mut self, limit: usize) -> Client {
        self.max_payload_bytes = limit;
        self
    }

    /// Checks `job` as an enqueue through this client would (see [`Job::check`]).
    pub(crate) fn check(&self, job: &Job) -> Result<()> {
        job.check(self.max_payload_bytes)
    }

    /// The largest encoded arguments this client accepts.
    pub(crate) fn payload_limit(&self) -> usize {
        self.max_payload_bytes
    }

    /// Enqueues one job and returns its id (the one [`Job::id`] showed before). For a
    /// [unique](Job::unique_for) job whose lock is held, nothing is stored and the id returned
    /// is the one of the job holding the lock: compare it with [`Job::id`] to tell.
    pub async fn enqueue(&self, job: Job) -> Result<JobId> {
        self.check(&job)?;
        let outcome = self
            .broker
            .enqueue(std::slice::from_ref(&job), false)
            .await?;
        let mut ids = submit::resolve(vec![job], outcome)?;
        Ok(ids.remove(0))
    }

    /// Enqueues many jobs in one round trip. Each job is stored whole, but the batch is not
    /// atomic: if Redis fails midway, some jobs may be stored and others not (the error says
    /// so). Use [`Client::enqueue_atomic`] when the batch must be all-or-none. As with
    /// [`Client::enqueue`], a unique job whose lock is held yields the holder's id.
    pub async fn enqueue_many(&self, jobs: impl IntoIterator<Item = Job>) -> Result<Vec<JobId>> {
        self.submit(jobs.into_iter().collect(), false).await
    }

    /// Enqueues many jobs all-or-none in one round trip: either every job is stored or none.
    /// Jobs of several groups are made atomic with MULTI/EXEC, which needs them on one Redis
    /// node (not a Redis Cluster); jobs of one group are always one slot.
    pub async fn enqueue_atomic(&self, jobs: impl IntoIterator<Item = Job>) -> Result<Vec<JobId>> {
        self.submit(jobs.into_iter().collect(), true).await
    }

    /// Checks and enqueues `jobs` in one round trip, all-or-none when `atomic`.
    async fn submit(&self, jobs: Vec<Job>, atomic: bool) -> Result<Vec<JobId>> {
        submit::submit(&self.broker, jobs, self.max_payload_bytes, atomic).await
    }

    /// Starts collecting jobs that are submitted together, all-or-none, only when
    /// [`JobBatch::commit`] is called: enqueue with your request's database transaction.
    pub fn batch(&self) -> JobBatch {
        JobBatch::new(self.broker.clone(), self.max_payload_bytes)
    }

    /// Enqueues `batch` (its children, its callbacks held until they have all finished) in one
    /// atomic script call, and returns its id. Fails with [`Error::InvalidBatch`] for a batch
    /// without children, a job of another group, or a callback with options a held job
    /// cannot have.
    pub async fn enqueue_batch(&self, batch: crate::Batch) -> Result<String> {
        let (shape, jobs, callbacks) = batch.prepare()?;
        self.create_batch(&shape, jobs, callbacks).await
    }

    /// Enqueues `chain` in one atomic script call: its first step runs now, each later one is
    /// held in the chain's batch until the step before it succeeds. Returns the chain's id,
    /// whose state [`Client::batch_status`] reads. Fails with [`Error::InvalidBatch`] for a
    /// chain without steps, a step of another group, or a later step with options a held job
    /// cannot have (delay, keep_result, unique, enqueue_once).
    pub async fn enqueue_chain(&self, chain: crate::Chain) -> Result<String> {
        let (shape, jobs, callbacks) = chain.prepare()?;
        self.create_batch(&shape, jobs, callbacks).await
    }

    /// Creates batch `shape` (its id, group, TTL and policy) with `jobs`, the callbacks among
    /// them named by `callbacks`.
    async fn create_batch(
        &self,
        shape: &crate::Batch,
        jobs: Vec<Job>,
        callbacks: crate::batch::Callbacks,
    ) -> Result<String> {
        let id = shape.id.clone();
        let group = shape.group.clone();
        let ttl = shape.keep_for;
        let policy = shape.policy.as_str();
        for job in &jobs {
            self.check(job)?;
        }
        let refs: Vec<&Job> = jobs.iter().collect();
        let trailer = crate::broker::BatchTrailer {
            mode: crate::broker::BatchMode::Create,
            id: &id,
            ttl,
            policy,
            callbacks,
        };
        self.broker
            .enqueue_batch(&Keys::new(&group), &refs, &trailer)
            .await?;
        Ok(id)
    }

    /// Adds `jobs` as children of the running batch `batch_id` of `group`, atomically: the
    /// batch's callbacks then wait for them too. Call it from a child of the batch before it
    /// returns (its id is [`JobContext::batch_id`](crate::JobContext::batch_id)): while that
    /// child is pending, the batch cannot complete. Fails with [`Error::InvalidBatch`] when the
    /// batch is not running (done, expired, or unknown).
    pub async fn add_to_batch(
        &self,
        group: &str,
        batch_id: &str,
        jobs: impl IntoIterator<Item = Job>,
    ) -> Result<Vec<JobId>> {
        let group = GroupName::new(group)?;
        let jobs = crate::batch::mark_children(&group, batch_id, jobs.into_iter().collect())?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        for job in &jobs {
            self.check(job)?;
        }
        let refs: Vec<&Job> = jobs.iter().collect();
        let trailer = crate::broker::BatchTrailer {
            mode: crate::broker::BatchMode::Add,
            id: batch_id,
            ttl: crate::DEFAULT_BATCH_TTL,
            policy: "fail",
            callbacks: Vec::new(),
        };
        let outcome = self
            .broker
            .enqueue_batch(&Keys::new(&group), &refs, &trailer)
            .await?;
        submit::resolve(jobs, outcome)
    }

    /// Reads batch `id` of `group`: counts, state, failed children, callbacks; `None` when
    /// there is no such batch (never created, or expired after it completed).
    pub async fn batch_status(&self, group: &str, id: &str) -> Result<Option<crate::BatchStatus>> {
        let group = GroupName::new(group)?;
        validate_name("batch id", id)?;
        let record = self.broker.batch_record(&Keys::new(&group), id).await?;
        Ok(record.map(|r| crate::BatchStatus::from_record(id, r)))
    }

    /// The periodic schedules registered for `group` by the schedulers that run them, sorted
    /// by name, with their next run (by Redis's clock) and last run.
    pub async fn schedules(&self, group: &str) -> Result<Vec<ScheduleInfo>> {
        let keys = Keys::new(&GroupName::new(group)?);
        let (now, stored) = self.broker.list_schedules(&keys).await?;
        Ok(stored
            .into_iter()
            .map(|s| ScheduleInfo::from_stored(now, s.name, s.definition, &s.state))
            .collect())
    }

    /// Cancels job `id` of `group`:
    ///
    /// - waiting in its stream or scheduled (a delay or a retry's backoff): removed in one
    ///   atomic step; it will not run;
    /// - running: the request is published to the group's workers; the one running it fires
    ///   the job's [cancellation token](crate::JobContext::cancellation), drops the handler
    ///   (an `--exec` child is killed) and records the job as cancelled;
    /// - finished, or unknown: nothing changes, and the outcome says which.
    ///
    /// A tracked job's status becomes [`JobState::Cancelled`]; a unique job's lock is
    /// released. Finding a job: the delayed set, then the entry its status record names
    /// (tracked jobs), then a scan of the group's streams of at most 100,000 entries, 1,000
    /// per round trip.
    ///
    /// ```no_run
    /// # async fn demo(client: streamworker::Client, id: streamworker::JobId) -> streamworker::Result<()> {
    /// use streamworker::CancelOutcome;
    /// match client.cancel("reports", &id).await? {
    ///     CancelOutcome::Removed { .. } => println!("it will not run"),
    ///     CancelOutcome::Requested { consumer, .. } => println!("{consumer} is stopping it"),
    ///     CancelOutcome::AlreadyFinished(state) => println!("too late: {}", state.as_str()),
    ///     CancelOutcome::NotFound => println!("no such job"),
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, group: &str, id: &JobId) -> Result<CancelOutcome> {
        let keys = Keys::new(&GroupName::new(group)?);
        let mut cursor = (1usize, "-".to_string());
        let mut lock = LockArg::Unknown;
        let mut batch = String::new();
        for _ in 0..CANCEL_MAX_CALLS {
            let reply = self
                .broker
                .cancel_step(
                    &keys,
                    id.as_str(),
                    (cursor.0, &cursor.1),
                    CANCEL_SCAN_LIMIT,
                    &lock,
                    &batch,
                )
                .await?;
            return Ok(match reply {
                CancelReply::NeedLock(key) => {
                    lock = if validate_name("unique key", &key).is_ok() {
                        LockArg::Key(key)
                    } else {
                        LockArg::LeaveToTtl
                    };
                    continue;
                }
                CancelReply::NeedBatch(id) => {
                    batch = if validate_name("batch id", &id).is_ok() {
                        id
                    } else {
                        "*".into()
                    };
                    continue;
                }
                CancelReply::Continue { stream, from } => {
                    cursor = (stream, from);
                    continue;
                }
                CancelReply::Removed { delayed } => CancelOutcome::Removed {
                    was_scheduled: delayed,
                },
                CancelReply::Running {
                    consumer,
                    listeners,
                } => CancelOutcome::Requested {
                    consumer,
                    listeners,
                },
                CancelReply::Finished(state) => {
                    CancelOutcome::AlreadyFinished(JobState::finished(&state))
                }
                CancelReply::NotFound(_) => CancelOutcome::NotFound,
            });
        }
        Ok(CancelOutcome::NotFound)
    }

    /// The status of a job enqueued with [`Job::keep_result`]; `None` when there is no record
    /// (the job is not tracked, or its record expired).
    pub async fn status(&self, group: &str, id: &JobId) -> Result<Option<JobStatus>> {
        let keys = Keys::new(&GroupName::new(group)?);
        Ok(self
            .broker
            .job_status(&keys, id.as_str())
            .await?
            .map(|raw| JobStatus {
                progress: raw.progress.clone(),
                ..JobStatus::from_record(&raw.fields, raw.delayed_until_ms)
            }))
    }

    /// Waits until a tracked job has finished (succeeded or dead) and returns its status, or
    /// [`Error::WaitTimeout`] after `timeout`. Polls the status record, starting at 5 ms and
    /// backing off to 200 ms between reads.
    pub async fn wait_for_result(
        &self,
        group: &str,
        id: &JobId,
        timeout: Duration,
    ) -> Result<JobStatus> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match self.status(group, id).await? {
                Some(status) if status.state.is_finished() => return Ok(status),
                Some(_) => {}
                None => {
                    return Err(Error::NotTracked {
                        group: group.to_string(),
                        id: id.to_string(),
                    });
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::WaitTimeout {
                    id: id.to_string(),
                    waited,
                });
            }
            tokio::time::sleep(pause.min(timeout - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}
