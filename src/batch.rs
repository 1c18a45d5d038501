//! Batches: children whose callbacks are enqueued exactly once when they have all finished
//! (README "Chains and batches").
//!
//! - [`Batch`]: the builder, enqueued with [`Client::enqueue_batch`](crate::Client::enqueue_batch);
//! - [`BatchPolicy`]: what a child that died or was cancelled does to `on_success`;
//! - [`BatchStatus`]: a batch read back with [`Client::batch_status`](crate::Client::batch_status).

use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::keys::{GroupName, validate_name};
use std::time::Duration;

/// How long a batch's keys stay in Redis after it completes, unless [`Batch::keep_for`] says
/// otherwise.
pub const DEFAULT_BATCH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest list of failed ids an `on_complete`/`on_success` callback carries in its
/// `batch_failed` header; a longer list is cut at a whole id and ends with `,...` (the batch's
/// failed set, read with [`Client::batch_status`](crate::Client::batch_status), has them all).
pub const BATCH_FAILED_HEADER_MAX: usize = 4000;

/// The callbacks of a batch's script call: per callback, its index among the call's jobs and
/// its name (`on_success`, `on_complete`, a chain's `step_<i>`), or, for a child with a policy
/// of its own, its index and the policy (`fail`, `ignore`).
pub(crate) type Callbacks = Vec<(usize, String)>;

/// What a child that went dead or was cancelled does to the batch's `on_success` callback:
/// the batch's default ([`Batch::policy`]), or one child's own ([`Batch::job_with_policy`]).
/// Either way the batch goes on (the other children run) and `on_complete` fires once all
/// children finished; the failed child's id is in the failed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchPolicy {
    /// The batch fails: `on_success` never fires.
    #[default]
    Fail,
    /// The child counts as a success for `on_success` (its id is still in the failed list).
    Ignore,
}

impl BatchPolicy {
    /// The name the scripts know it by.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BatchPolicy::Fail => "fail",
            BatchPolicy::Ignore => "ignore",
        }
    }
}

/// A batch under construction: its children, its callbacks and options, with its id already
/// allocated. Every job of a batch is of the batch's group (so one script, on one hash slot,
/// creates it and counts it, also on a Redis Cluster).
///
/// ```no_run
/// # async fn demo(client: streamworker::Client) -> Result<(), streamworker::Error> {
/// use streamworker::{Batch, Job};
/// let mut batch = Batch::new("thumbs")?;
/// for n in 0..500 {
///     batch = batch.job(Job::new("thumbs", "resize", &n)?);
/// }
/// let batch = batch.on_success(Job::new("thumbs", "build_zip", &())?);
/// let id = client.enqueue_batch(batch).await?;
/// println!("batch {id}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    pub(crate) group: GroupName,
    pub(crate) id: String,
    pub(crate) children: Vec<Job>,
    /// Children with a policy of their own: (index in `children`, policy).
    pub(crate) child_policies: Vec<(usize, BatchPolicy)>,
    pub(crate) on_success: Option<Job>,
    pub(crate) on_complete: Option<Job>,
    pub(crate) policy: BatchPolicy,
    pub(crate) keep_for: Duration,
}

impl Batch {
    /// An empty batch of `group`, with a new id.
    pub fn new(group: &str) -> Result<Batch> {
        Ok(Batch {
            group: GroupName::new(group)?,
            id: JobId::generate().to_string(),
            children: Vec::new(),
            child_policies: Vec::new(),
            on_success: None,
            on_complete: None,
            policy: BatchPolicy::default(),
            keep_for: DEFAULT_BATCH_TTL,
        })
    }

    /// The batch's id, known before it is enqueued.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a child.
    pub fn job(mut self, job: Job) -> Batch {
        self.children.push(job);
        self
    }

    /// Adds a child with a policy of its own, which overrides the batch's
    /// ([`Batch::policy`]) for it: e.g. an optional child whose failure should not stop
    /// `on_success`.
    pub fn job_with_policy(mut self, job: Job, policy: BatchPolicy) -> Batch {
        self.child_policies.push((self.children.len(), policy));
        self.children.push(job);
        self
    }

    /// Adds children.
    pub fn jobs(mut self, jobs: impl IntoIterator<Item = Job>) -> Batch {
        self.children.extend(jobs);
        self
    }

    /// The job enqueued once when every child has finished and none failed (or the policy is
    /// [`BatchPolicy::Ignore`]). It gets headers `batch_id` and `batch_failed` (the failed
    /// children's ids, comma-separated).
    pub fn on_success(mut self, job: Job) -> Batch {
        self.on_success = Some(job);
        self
    }

    /// The job enqueued once when every child has finished, however they ended, with the
    /// same headers as [`Batch::on_success`].
    pub fn on_complete(mut self, job: Job) -> Batch {
        self.on_complete = Some(job);
        self
    }

    /// What a failed child does to `on_success` (default [`BatchPolicy::Fail`]).
    pub fn policy(mut self, policy: BatchPolicy) -> Batch {
        self.policy = policy;
        self
    }

    /// How long the batch's state stays readable after it completes (default
    /// [`DEFAULT_BATCH_TTL`]).
    pub fn keep_for(mut self, ttl: Duration) -> Batch {
        self.keep_for = ttl;
        self
    }

    /// Checks the batch and marks its children: returns the batch without its jobs, the jobs
    /// in script order (children then callbacks) and the callbacks' (index, name).
    pub(crate) fn prepare(mut self) -> Result<(Batch, Vec<Job>, Callbacks)> {
        if self.children.is_empty() {
            return Err(Error::InvalidBatch(format!(
                "batch {} has no job: add children with Batch::job before enqueueing it",
                self.id
            )));
        }
        if self.keep_for.as_millis() == 0 {
            return Err(Error::InvalidBatch("keep_for must be at least 1 ms".into()));
        }
        let children = std::mem::take(&mut self.children);
        let mut jobs = mark_children(&self.group, &self.id, children)?;
        let mut callbacks: Callbacks = std::mem::take(&mut self.child_policies)
            .into_iter()
            .map(|(i, policy)| (i, policy.as_str().to_string()))
            .collect();
        for (name, job) in [
            ("on_success", self.on_success.take()),
            ("on_complete", self.on_complete.take()),
        ] {
            let Some(job) = job else { continue };
            check_callback(&self.group, name, &job)?;
            callbacks.push((jobs.len(), name.to_string()));
            jobs.push(job);
        }
        Ok((self, jobs, callbacks))
    }
}

/// Sets the `batch` field of each of `jobs`, after checking they are of `group` and of no
/// other batch.
pub(crate) fn mark_children(group: &GroupName, id: &str, jobs: Vec<Job>) -> Result<Vec<Job>> {
    validate_name("batch id", id)?;
    jobs.into_iter()
        .map(|mut job| {
            if job.group != *group {
                return Err(Error::InvalidBatch(format!(
                    "job {} is of group {}, the batch of group {group}: a batch and its jobs share one group (one hash slot); use Job::new(\"{group}\", ...)",
                    job.id, job.group
                )));
            }
            if job.batch.is_some() {
                return Err(Error::InvalidBatch(format!(
                    "job {} is already a child of batch {}: a job belongs to one batch",
                    job.id,
                    job.batch.as_deref().unwrap_or_default()
                )));
            }
            job.batch = Some(id.to_string());
            Ok(job)
        })
        .collect()
}

/// A callback is stored whole in the batch's hash and added to its stream when the batch
/// completes: it must be of the batch's group and need no enqueue-time condition.
pub(crate) fn check_callback(group: &GroupName, name: &str, job: &Job) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::InvalidBatch(format!(
            "the {name} callback {} {what}",
            job.id
        )))
    };
    if job.group != *group {
        return refuse(&format!(
            "is of group {}, the batch of group {group}: build it with Job::new(\"{group}\", ...)",
            job.group
        ));
    }
    if job.due.is_some()
        || job.keep_result.is_some()
        || job.unique_key.is_some()
        || job.once_ttl.is_some()
        || job.tick.is_some()
    {
        return refuse(
            "uses delay, keep_result, unique or enqueue_once: a callback is added as a plain job when the batch completes; drop those options",
        );
    }
    Ok(())
}

/// A batch as read back: counts, state, failed children and callbacks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BatchStatus {
    /// The batch id.
    pub id: String,
    /// `running` while children are pending, `done` once all finished.
    pub state: String,
    /// Children added (at creation and since).
    pub total: u64,
    /// Children that succeeded.
    pub succeeded: u64,
    /// Children that went dead or were cancelled.
    pub failed: u64,
    /// Of those, the ones whose policy is [`BatchPolicy::Ignore`]: they do not stop
    /// `on_success`.
    pub ignored: u64,
    /// Children not finished yet.
    pub pending: u64,
    /// Ids of some of them (at most 20), sorted.
    pub pending_ids: Vec<String>,
    /// `fail` or `ignore` (see [`BatchPolicy`]).
    pub policy: String,
    /// Once done: `succeeded` (no child failed) or `failed`.
    pub outcome: Option<String>,
    /// When it was created, in ms since the Unix epoch (Redis time).
    pub created_ms: Option<u64>,
    /// When it completed, in ms since the Unix epoch (Redis time).
    pub finished_ms: Option<u64>,
    /// Ids of the children that went dead or were cancelled, sorted.
    pub failed_ids: Vec<String>,
    /// Its callbacks, in order `on_success`, `on_complete`, each with the entry id it was
    /// added as once fired.
    pub callbacks: Vec<BatchCallback>,
    /// For a chain: its number of steps; `None` for a batch.
    pub steps: Option<u64>,
    /// For a chain stopped by a failed step: the ids of the steps after it, which never ran.
    pub not_run: Vec<String>,
}

/// One callback of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BatchCallback {
    /// `on_success` or `on_complete`.
    pub name: String,
    /// The entry id it was added to its stream as, once the batch completed and it fired.
    pub fired_entry: Option<String>,
}

impl BatchStatus {
    /// Builds the status of batch `id` from its stored record.
    pub(crate) fn from_record(id: &str, record: crate::broker::BatchRecord) -> BatchStatus {
        let text = |name: &str| {
            record
                .fields
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let number = |name: &str| text(name).and_then(|t| t.parse::<u64>().ok());
        let callbacks = ["on_success", "on_complete"]
            .into_iter()
            .filter(|name| record.fields.contains_key(&format!("cb_{name}")))
            .map(|name| BatchCallback {
                name: name.to_string(),
                fired_entry: text(&format!("fired_{name}")),
            })
            .collect();
        BatchStatus {
            id: id.to_string(),
            state: text("state").unwrap_or_default(),
            total: number("total").unwrap_or(0),
            succeeded: number("succeeded").unwrap_or(0),
            failed: number("failed").unwrap_or(0),
            ignored: number("ignored").unwrap_or(0),
            pending: record.pending,
            pending_ids: record.pending_sample.clone(),
            policy: text("policy").unwrap_or_default(),
            outcome: text("outcome"),
            created_ms: number("created_ms"),
            finished_ms: number("finished_ms"),
            failed_ids: record.failed.clone(),
            callbacks,
            steps: number("steps"),
            not_run: text("not_run")
                .filter(|t| !t.is_empty())
                .map(|t| t.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }
}
