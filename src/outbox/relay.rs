//! The relay: moves committed outbox rows into Redis, each job once.
//!
//! One pass ([`Relay::relay_batch`]) is one PostgreSQL transaction: it locks up to a batch of
//! rows (`FOR UPDATE SKIP LOCKED`: rows another relay holds are skipped, not waited for),
//! enqueues their jobs in one round trip, each [enqueued once](crate::Job::enqueue_once) by
//! its id, then deletes the rows and commits. If Redis fails, the transaction rolls back and
//! the rows wait; if the relay dies after Redis took the jobs and before the commit, the rows
//! come back to the next pass, whose enqueue of the same ids stores nothing. A row that does
//! not describe a job gets its `error` column set and is skipped from then on.
//!
//! Between passes the relay waits for the table's `NOTIFY` (sent when an inserting
//! transaction commits), and looks anyway every [`RelayConfig::poll_interval`], in case a
//! notification was missed while its listening connection was down.

use super::db_error;
use super::row::StoredRow;
use super::schema::CHANNEL;
use super::status::status;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::future::Future;
use std::time::{Duration, Instant};

/// Environment variable of the crash tests: when set, a relay SIGKILLs its own process after
/// its first enqueue into Redis, before it deletes the rows. Not for production use.
pub(crate) const CRASH_AFTER_SEND: &str = "STREAMWORKER_OUTBOX_CRASH_AFTER_SEND";

/// How a [`Relay`] works; every field has a default.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Most rows moved per pass (one PostgreSQL transaction, one Redis round trip). Default 500.
    pub batch: usize,
    /// How long Redis remembers each relayed job id, so that a row sent again (by a relay that
    /// died before it could delete it) stores nothing. A row sent again after longer may run
    /// twice. Default 10 minutes; costs about 100 bytes of Redis per job relayed within it.
    pub dedupe_for: Duration,
    /// How often the relay looks at the table without a notification. Default 1 s.
    pub poll_interval: Duration,
    /// How often the backlog is sampled for the metrics and the log. Default 5 s.
    pub sample_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 500,
            dedupe_for: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            sample_interval: Duration::from_secs(5),
        }
    }
}

/// Moves committed outbox rows into Redis; see the module doc.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use streamworker::{Client, outbox};
///
/// let pool = sqlx::PgPool::connect("postgres://app@127.0.0.1/app").await?;
/// outbox::init(&pool).await?; // the table and its trigger, once
/// let client = Client::connect("redis://127.0.0.1:6379").await?;
/// outbox::Relay::new(pool, client)
///     .run(async { tokio::signal::ctrl_c().await.ok(); })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    client: Client,
    config: RelayConfig,
    metrics: Option<Metrics>,
}

impl Relay {
    /// A relay from the outbox table of `pool` to the Redis of `client`, with default settings.
    pub fn new(pool: PgPool, client: Client) -> Relay {
        Relay {
            pool,
            client,
            config: RelayConfig::default(),
            metrics: None,
        }
    }

    /// Uses `config` instead of the defaults.
    pub fn config(mut self, config: RelayConfig) -> Relay {
        self.config = config;
        self
    }

    /// Reports the backlog, the oldest row's age, failed rows and jobs relayed in `metrics`.
    pub fn metrics(mut self, metrics: Metrics) -> Relay {
        self.metrics = Some(metrics);
        self
    }

    /// Relays until `shutdown` completes (a pass under way finishes first). Fails only when
    /// the outbox cannot be used at all (its table is missing: run `streamworker outbox
    /// init`); while PostgreSQL or Redis fail, it logs once, retries with backoff, and says
    /// when they answer again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        status(&self.pool).await?;
        tokio::pin!(shutdown);
        let mut listener = None;
        let mut failing: Option<(Instant, String)> = None;
        let mut pause = Duration::from_millis(100);
        let mut sampled = Instant::now() - self.config.sample_interval;
        tracing::info!(
            batch = self.config.batch,
            dedupe_for = %humantime::format_duration(self.config.dedupe_for),
            "outbox relay started"
        );
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            if sampled.elapsed() >= self.config.sample_interval {
                sampled = Instant::now();
                self.sample().await;
            }
            match self.relay_batch().await {
                Ok(moved) => {
                    if let Some((since, _)) = failing.take() {
                        tracing::warn!(
                            after = %humantime::format_duration(Duration::from_millis(since.elapsed().as_millis() as u64)),
                            "outbox relay: PostgreSQL and Redis answer again; relaying"
                        );
                    }
                    pause = Duration::from_millis(100);
                    if moved == self.config.batch {
                        continue;
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    match &failing {
                        None => tracing::error!(
                            error = %message,
                            "outbox relay: cannot move rows; they wait in the table, retrying with backoff"
                        ),
                        Some((_, last)) if *last != message => {
                            tracing::warn!(error = %message, "outbox relay: still failing")
                        }
                        Some(_) => {}
                    }
                    let since = failing.map_or_else(Instant::now, |(since, _)| since);
                    failing = Some((since, message));
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            // Caught up: wait for a commit's notification, or the poll interval.
            let woken = async {
                match listener.as_mut() {
                    Some(l) => match l.try_recv().await {
                        // `None`: the connection was lost; the next call reconnects.
                        Ok(Some(_)) => true,
                        Ok(None) | Err(_) => false,
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                ok = woken => if !ok {
                    listener = None;
                },
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::info!("outbox relay stopped");
        Ok(())
    }

    /// A connection listening on the table's channel, or `None` (logged) if PostgreSQL does
    /// not answer: the relay then polls until it does.
    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "outbox relay: cannot listen for notifications yet");
                return None;
            }
        };
        // A pass after a lost connection finds what was missed; no need to replay it.
        listener.ignore_pool_close_event(true);
        match listener.listen(CHANNEL).await {
            Ok(()) => Some(listener),
            Err(e) => {
                tracing::debug!(error = %e, "outbox relay: cannot listen for notifications yet");
                None
            }
        }
    }

    /// Samples the backlog into the metrics, and warns about rows that failed.
    async fn sample(&self) {
        let Ok(s) = status(&self.pool).await else {
            return;
        };
        if let Some(m) = &self.metrics {
            m.outbox_sampled(s.backlog, s.oldest_age.unwrap_or_default(), s.failed_count);
        }
        if s.failed_count > 0 {
            tracing::warn!(
                rows = s.failed_count,
                "outbox rows that are not jobs wait for a fix: see `streamworker outbox status`"
            );
        }
    }

    /// One pass: moves up to a batch of rows into Redis and deletes them, in one PostgreSQL
    /// transaction; returns how many rows it took (moved, or marked failed). On an error
    /// nothing is deleted.
    pub async fn relay_batch(&self) -> Result<usize> {
        const OP: &str = "outbox relay";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        let rows: Vec<StoredRow> = sqlx::query_as(
            "SELECT id, job_id, queue_group, task, encoding, args, options
               FROM streamworker_outbox
              WHERE error IS NULL
              ORDER BY id
              LIMIT $1
                FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error(OP))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let taken = rows.len();
        let mut ids = Vec::with_capacity(taken);
        let mut jobs = Vec::with_capacity(taken);
        let mut failed_ids = Vec::new();
        let mut failed_errors = Vec::new();
        for row in rows {
            let id = row.id;
            let job = row.job().and_then(|job| {
                job.check(self.client.payload_limit())
                    .map(|()| job)
                    .map_err(|e| e.to_string())
            });
            match job {
                Ok(job) => {
                    ids.push(id);
                    jobs.push(job.enqueue_once(self.config.dedupe_for));
                }
                Err(error) => {
                    tracing::error!(row = id, %error, "outbox row is not a job: marked failed, skipped until fixed");
                    failed_ids.push(id);
                    failed_errors.push(error);
                }
            }
        }
        if !jobs.is_empty() {
            self.client.broker().enqueue(&jobs, false).await?;
            if std::env::var_os(CRASH_AFTER_SEND).is_some() {
                crash();
            }
        }
        if !failed_ids.is_empty() {
            sqlx::query(
                "UPDATE streamworker_outbox AS o SET error = f.error
                   FROM UNNEST($1::bigint[], $2::text[]) AS f(id, error)
                  WHERE o.id = f.id",
            )
            .bind(&failed_ids)
            .bind(&failed_errors)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        }
        if !ids.is_empty() {
            sqlx::query("DELETE FROM streamworker_outbox WHERE id = ANY($1)")
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(db_error(OP))?;
        }
        tx.commit().await.map_err(db_error(OP))?;
        if let Some(m) = &self.metrics {
            m.outbox_relayed(ids.len() as u64);
        }
        tracing::debug!(
            relayed = ids.len(),
            failed = failed_ids.len(),
            "outbox pass"
        );
        Ok(taken)
    }
}

/// The crash tests' SIGKILL of this process (see [`CRASH_AFTER_SEND`]).
fn crash() -> ! {
    tracing::warn!("{CRASH_AFTER_SEND} is set: killing this process after the send");
    let me = rustix::process::getpid();
    let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
    std::process::abort()
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        Error::Database {
            op: "postgres",
            message: e.to_string(),
        }
    }
}
