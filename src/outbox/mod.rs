//! Enqueue inside a PostgreSQL transaction (the `postgres` feature): a transactional outbox.
//!
//! [`enqueue_in_tx`] writes the job as a row of the outbox table in the caller's transaction:
//! a rollback leaves it nowhere, a commit makes it durable, and its id is known at once. A
//! [`Relay`] moves committed rows to Redis: it wakes on the table's `NOTIFY`, takes rows with
//! `FOR UPDATE SKIP LOCKED` (so several relays share the work), enqueues them in batches, each
//! job [enqueued once](crate::Job::enqueue_once) by its id, and deletes the rows in the same
//! transaction once Redis has them. A relay that dies between Redis and the delete leaves the
//! rows for the next one, whose enqueue of the same ids stores nothing: each job goes into
//! Redis once.
//!
//! One file per concern: [`schema`] the table, its trigger and [`init`]; [`row`] a job as a
//! row and back; [`write`] the producer side; [`relay`] the mover; [`status`] the backlog.

mod relay;
mod row;
mod schema;
mod status;
mod write;

pub use relay::{Relay, RelayConfig};
pub use schema::{CHANNEL, TABLE, init};
pub use status::{FailedRow, OutboxStatus, status};
pub use write::{enqueue_all_in_tx, enqueue_in_tx};

/// A database error, as [`crate::Error::Database`], saying what streamworker was doing.
pub(crate) fn db_error(op: &'static str) -> impl FnOnce(sqlx::Error) -> crate::Error {
    move |e| crate::Error::Database {
        op,
        message: e.to_string(),
    }
}
