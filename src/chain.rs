//! Chains: jobs run one after another, each enqueued by the script that records the success
//! of the one before, with that one's result (README "Chains and batches"). A chain is a batch
//! whose steps are held in its hash until their turn, so it is read back, and expires, as a
//! batch does.

use crate::batch::{Batch, BatchPolicy, Callbacks, check_callback, mark_children};
use crate::error::{Error, Result};
use crate::job::Job;
use std::time::Duration;

/// A chain under construction: steps A → B → C, each enqueued only once the step before it
/// succeeded, and given its result ([`JobContext::prev_result`](crate::JobContext::prev_result),
/// `STREAMWORKER_PREV_RESULT` for `--exec`). A step that goes dead or is cancelled stops the
/// chain: the steps after it are listed as not run in
/// [`BatchStatus::not_run`](crate::BatchStatus::not_run).
///
/// ```no_run
/// # async fn demo(client: streamworker::Client) -> Result<(), streamworker::Error> {
/// use streamworker::{Chain, Job};
/// let chain = Chain::new("media")?
///     .then(Job::new("media", "resize", &"a.png")?)
///     .then(Job::new("media", "upload", &())?)
///     .then(Job::new("media", "notify", &())?);
/// let id = client.enqueue_chain(chain).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Chain {
    batch: Batch,
    steps: Vec<Job>,
}

impl Chain {
    /// An empty chain of `group`, with a new id.
    pub fn new(group: &str) -> Result<Chain> {
        Ok(Chain {
            batch: Batch::new(group)?,
            steps: Vec::new(),
        })
    }

    /// The chain's id (its batch's id), known before it is enqueued.
    pub fn id(&self) -> &str {
        self.batch.id()
    }

    /// Adds a step after the others.
    pub fn then(mut self, job: Job) -> Chain {
        self.steps.push(job);
        self
    }

    /// The job enqueued once when every step has succeeded.
    pub fn on_success(mut self, job: Job) -> Chain {
        self.batch = self.batch.on_success(job);
        self
    }

    /// The job enqueued once when the chain ends, all steps run or stopped by a failure.
    pub fn on_complete(mut self, job: Job) -> Chain {
        self.batch = self.batch.on_complete(job);
        self
    }

    /// How long the chain's state stays readable after it ends (default
    /// [`DEFAULT_BATCH_TTL`](crate::DEFAULT_BATCH_TTL)).
    pub fn keep_for(mut self, ttl: Duration) -> Chain {
        self.batch = self.batch.keep_for(ttl);
        self
    }

    /// The batch to create: the first step as its child, the later ones held as callbacks
    /// `step_<i>`.
    pub(crate) fn prepare(self) -> Result<(Batch, Vec<Job>, Callbacks)> {
        let mut steps = self.steps.into_iter();
        let Some(first) = steps.next() else {
            return Err(Error::InvalidBatch(format!(
                "chain {} has no step: add steps with Chain::then before enqueueing it",
                self.batch.id()
            )));
        };
        let batch = self.batch.policy(BatchPolicy::Fail);
        let mut later = Vec::new();
        for (i, job) in steps.enumerate() {
            check_callback(&batch.group, "step", &job)?;
            later.push((i + 2, job));
        }
        let (batch, mut jobs, mut callbacks) = batch.job(first).prepare()?;
        let mark = |mut job: Job, step: usize| {
            job.chain_step = Some(step as u32);
            job
        };
        jobs[0].chain_step = Some(1);
        // Steps are children of the chain's batch too: the script counts them when they end.
        let marked = mark_children(
            &batch.group,
            &batch.id,
            later.iter().map(|(_, j)| j.clone()).collect(),
        )?;
        for ((step, _), job) in later.into_iter().zip(marked) {
            callbacks.push((jobs.len(), format!("step_{step}")));
            jobs.push(mark(job, step));
        }
        Ok((batch, jobs, callbacks))
    }
}
