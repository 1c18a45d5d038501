//! The producer side: jobs written as outbox rows inside the caller's transaction.

use super::db_error;
use super::row::NewRow;
use crate::error::Result;
use crate::job::{DEFAULT_MAX_PAYLOAD_BYTES, Job, JobId};
use sqlx::PgConnection;

/// Writes `job` to the outbox table inside the caller's transaction and returns its id.
///
/// Pass `&mut tx` of a [`sqlx::Transaction`] (or a connection inside a transaction you opened
/// yourself). If the transaction rolls back, the job exists nowhere; once it commits, a
/// [`Relay`](super::Relay) enqueues it into Redis exactly once, even if this process dies at
/// once. The job is checked as [`Client::enqueue`](crate::Client::enqueue) checks it (names,
/// unique key, payload of at most 512 KiB) before anything is written.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use streamworker::{Job, outbox};
///
/// let mut tx = pool.begin().await?;
/// let user_id: i64 = sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
///     .bind("a@b.c")
///     .fetch_one(&mut *tx)
///     .await?;
/// let job = Job::new("emails", "send_welcome", &serde_json::json!({ "user": user_id }))?;
/// let id = outbox::enqueue_in_tx(&mut tx, job).await?;
/// tx.commit().await?;
/// println!("accepted: job {id}");
/// # Ok(()) }
/// ```
pub async fn enqueue_in_tx(conn: &mut PgConnection, job: Job) -> Result<JobId> {
    let mut ids = enqueue_all_in_tx(conn, [job]).await?;
    Ok(ids.remove(0))
}

/// Writes several jobs to the outbox table inside the caller's transaction, in one statement;
/// returns their ids in order. See [`enqueue_in_tx`].
pub async fn enqueue_all_in_tx(
    conn: &mut PgConnection,
    jobs: impl IntoIterator<Item = Job>,
) -> Result<Vec<JobId>> {
    let jobs: Vec<Job> = jobs.into_iter().collect();
    for job in &jobs {
        job.check(DEFAULT_MAX_PAYLOAD_BYTES)?;
    }
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<NewRow> = jobs.iter().map(NewRow::of).collect();
    let mut job_ids = Vec::with_capacity(rows.len());
    let mut groups = Vec::with_capacity(rows.len());
    let mut tasks = Vec::with_capacity(rows.len());
    let mut encodings = Vec::with_capacity(rows.len());
    let mut args = Vec::with_capacity(rows.len());
    let mut options = Vec::with_capacity(rows.len());
    for row in rows {
        job_ids.push(row.job_id);
        groups.push(row.group);
        tasks.push(row.task);
        encodings.push(row.encoding);
        args.push(row.args);
        options.push(row.options);
    }
    sqlx::query(
        "INSERT INTO streamworker_outbox (job_id, queue_group, task, encoding, args, options)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::jsonb[])",
    )
    .bind(&job_ids)
    .bind(&groups)
    .bind(&tasks)
    .bind(&encodings)
    .bind(&args)
    .bind(&options)
    .execute(conn)
    .await
    .map_err(db_error("outbox enqueue"))?;
    Ok(jobs.into_iter().map(|job| job.id).collect())
}
