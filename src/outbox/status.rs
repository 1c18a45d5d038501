//! What waits in the outbox: its backlog, the age of its oldest row, and rows that failed.

use super::db_error;
use crate::error::Result;
use sqlx::PgPool;
use std::time::Duration;

/// The outbox table at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Rows waiting for a relay (not counting failed ones).
    pub backlog: u64,
    /// How long the oldest waiting row has waited; `None` when none waits.
    pub oldest_age: Option<Duration>,
    /// Rows a relay could not turn into a job, with their reason, oldest first (at most 20).
    pub failed: Vec<FailedRow>,
    /// How many rows failed in all.
    pub failed_count: u64,
}

/// A row a relay could not turn into a job; it stays in the table until it is fixed (set
/// `error` back to NULL) or deleted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedRow {
    /// The row's `id`.
    pub id: i64,
    /// The row's `job_id`.
    pub job_id: String,
    /// The row's `queue_group`.
    pub queue_group: String,
    /// Why it is not a job.
    pub error: String,
}

/// Reads the outbox's backlog, oldest age and failed rows (what `streamworker outbox status`
/// prints and what the relay's metrics report).
pub async fn status(pool: &PgPool) -> Result<OutboxStatus> {
    const OP: &str = "outbox status";
    let (backlog, oldest_ms, failed_count): (i64, Option<f64>, i64) = sqlx::query_as(
        "SELECT
            (SELECT count(*) FROM streamworker_outbox WHERE error IS NULL),
            (SELECT EXTRACT(EPOCH FROM (clock_timestamp() - created_at)) * 1000
               FROM streamworker_outbox WHERE error IS NULL ORDER BY id LIMIT 1)::float8,
            (SELECT count(*) FROM streamworker_outbox WHERE error IS NOT NULL)",
    )
    .fetch_one(pool)
    .await
    .map_err(db_error(OP))?;
    let failed = sqlx::query_as::<_, FailedRow>(
        "SELECT id, job_id, queue_group, error FROM streamworker_outbox
          WHERE error IS NOT NULL ORDER BY id LIMIT 20",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error(OP))?;
    Ok(OutboxStatus {
        backlog: backlog.max(0) as u64,
        oldest_age: oldest_ms.map(|ms| Duration::from_millis(ms.max(0.0) as u64)),
        failed,
        failed_count: failed_count.max(0) as u64,
    })
}
