//! Submitting jobs: the checks, one round trip to the broker, and the id each job ends up
//! with. Shared by [`Client`](super::Client) and [`JobBatch`](super::JobBatch).

use crate::broker::{Broker, Enqueued};
use crate::error::{Error, Result};
use crate::job::{Job, JobId};

/// Checks `jobs` (see [`Job::check`]) and enqueues them in one round trip, all-or-none when
/// `atomic`; returns their ids as [`resolve`] pairs them.
pub(super) async fn submit(
    broker: &Broker,
    jobs: Vec<Job>,
    max_payload_bytes: usize,
    atomic: bool,
) -> Result<Vec<JobId>> {
    for job in &jobs {
        job.check(max_payload_bytes)?;
    }
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let outcome = broker.enqueue(&jobs, atomic).await?;
    resolve(jobs, outcome)
}

/// Pairs each job with what the enqueue did: its own id, or the id of the job holding its
/// uniqueness lock.
pub(super) fn resolve(jobs: Vec<Job>, outcome: Vec<Enqueued>) -> Result<Vec<JobId>> {
    jobs.into_iter()
        .zip(outcome)
        .map(|(job, what)| match what {
            Enqueued::Duplicate(holder) => JobId::parse(holder).map_err(|_| Error::Protocol {
                op: "enqueue",
                detail: "the uniqueness lock holds an invalid job id".into(),
            }),
            _ => Ok(job.id),
        })
        .collect()
}
