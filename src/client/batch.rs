//! [`JobBatch`]: enqueues collected while a request or a database transaction runs, sent
//! together, all-or-none, on commit, and never if the work is rolled back.

use super::submit::submit;
use crate::broker::Broker;
use crate::error::Result;
use crate::job::{Job, JobId};

/// Jobs collected during a request or a database transaction and submitted together when it
/// commits, in one atomic round trip; dropped (or [rolled back](JobBatch::rollback)) before
/// that, it sends nothing.
///
/// This is how an application avoids sending the welcome email of a user whose `INSERT` was
/// rolled back: collect the job while the transaction runs, commit the batch after the
/// database committed. The ids exist at once, so the response can already name them.
///
/// ```no_run
/// # async fn demo(client: streamworker::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use streamworker::Job;
///
/// let mut jobs = client.batch();
/// // ... BEGIN; INSERT INTO users ...
/// let id = jobs.push(Job::new("emails", "send_welcome", &serde_json::json!({"user": 42}))?)?;
/// // ... COMMIT succeeded:
/// jobs.commit().await?;
/// println!("welcome email queued as {id}");
/// # Ok(()) }
/// ```
///
/// Order matters: commit the database first, then the batch. If the process dies between the
/// two, the jobs are lost (never sent twice); when that is not acceptable, write the jobs to
/// an outbox table inside the transaction and enqueue from there.
#[derive(Debug)]
#[must_use = "a JobBatch sends nothing until commit() is called"]
pub struct JobBatch {
    /// Where the jobs go on commit.
    broker: Broker,
    /// The limit of the client that started the batch.
    max_payload_bytes: usize,
    /// The jobs collected, in order.
    jobs: Vec<Job>,
}

impl JobBatch {
    /// An empty batch sent through `broker`, checking jobs against `max_payload_bytes`.
    pub(super) fn new(broker: Broker, max_payload_bytes: usize) -> JobBatch {
        JobBatch {
            broker,
            max_payload_bytes,
            jobs: Vec::new(),
        }
    }

    /// Adds `job` and returns its id (allocated already). The job is checked now (payload
    /// size, timeout, uniqueness settings), so a bad job fails the request, not the commit.
    pub fn push(&mut self, job: Job) -> Result<JobId> {
        job.check(self.max_payload_bytes)?;
        let id = job.id().clone();
        self.jobs.push(job);
        Ok(id)
    }

    /// The ids of the jobs collected so far, in order.
    pub fn ids(&self) -> Vec<JobId> {
        self.jobs.iter().map(|j| j.id().clone()).collect()
    }

    /// How many jobs are collected.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is collected.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Submits every collected job in one atomic round trip (see
    /// [`Client::enqueue_atomic`](crate::Client::enqueue_atomic)): all are stored or none.
    /// Returns their ids; a [unique](Job::unique_for) job whose lock is held yields the
    /// holder's id.
    pub async fn commit(mut self) -> Result<Vec<JobId>> {
        let jobs = std::mem::take(&mut self.jobs);
        submit(&self.broker, jobs, self.max_payload_bytes, true).await
    }

    /// Drops every collected job without sending anything (what dropping the batch does).
    pub fn rollback(mut self) {
        self.jobs.clear();
    }
}

impl Drop for JobBatch {
    fn drop(&mut self) {
        if !self.jobs.is_empty() {
            tracing::debug!(
                jobs = self.jobs.len(),
                "job batch dropped without commit: nothing was sent"
            );
        }
    }
}
