//! The outbox table, the trigger that announces new rows, and [`init`], which creates both.
//!
//! The table is plain enough for producers in any language to insert into it directly (see
//! README, "Enqueue inside your database transaction").

use super::db_error;
use crate::error::Result;
use sqlx::PgPool;

/// The outbox table's name (in the connection's `search_path`, usually `public`).
pub const TABLE: &str = "streamworker_outbox";

/// The channel the table's trigger notifies on each statement that inserts rows; relays
/// `LISTEN` on it.
pub const CHANNEL: &str = "streamworker_outbox";

/// The statements [`init`] runs, in one transaction; each may run again.
const STATEMENTS: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS streamworker_outbox (
        id          bigserial   PRIMARY KEY,
        job_id      text        NOT NULL,
        queue_group text        NOT NULL,
        task        text        NOT NULL,
        encoding    text        NOT NULL DEFAULT 'json',
        args        bytea       NOT NULL,
        options     jsonb       NOT NULL DEFAULT '{}',
        created_at  timestamptz NOT NULL DEFAULT now(),
        error       text
    )",
    "CREATE OR REPLACE FUNCTION streamworker_outbox_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('streamworker_outbox', '');
            RETURN NULL;
        END
        $$",
    "DROP TRIGGER IF EXISTS streamworker_outbox_notify ON streamworker_outbox",
    "CREATE TRIGGER streamworker_outbox_notify
        AFTER INSERT ON streamworker_outbox
        FOR EACH STATEMENT EXECUTE FUNCTION streamworker_outbox_notify()",
    // Rows a relay could not turn into a job: kept, listed by `outbox status`, skipped by
    // the relay's scan.
    "CREATE INDEX IF NOT EXISTS streamworker_outbox_failed
        ON streamworker_outbox (id) WHERE error IS NOT NULL",
];

/// Creates the outbox table, its index and its trigger, if missing (what `streamworker outbox
/// init` runs). Safe to run again, and from several processes at once.
pub async fn init(pool: &PgPool) -> Result<()> {
    const OP: &str = "outbox init";
    let mut tx = pool.begin().await.map_err(db_error(OP))?;
    // Two processes creating the table at once would race on the catalog: one waits.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('streamworker_outbox'))")
        .execute(&mut *tx)
        .await
        .map_err(db_error(OP))?;
    for statement in STATEMENTS {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
    }
    tx.commit().await.map_err(db_error(OP))
}
