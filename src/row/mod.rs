//! Job arguments that are database rows (feature `postgres`): a [`Row<T>`] travels as its
//! table, key and optional version, and the worker loads the row from PostgreSQL just before
//! the handler runs.
//!
//! - `policy.rs`: what a task does with a missing or changed row ([`MissingRow`],
//!   [`ChangedRow`]); a leaf, so the job context can carry it;
//! - `arg.rs`: [`Row<T>`], its wire form, and loading one row ([`LoadRow`]);
//! - `query.rs`: the SQL that reads a row, identifiers quoted, the key a bind parameter;
//! - `handler.rs`: [`Loaded<A>`] handlers, [`HasRows`] and the state's pool ([`RowPool`]).

mod arg;
mod handler;
mod policy;
mod query;

pub use arg::{LoadRow, Row};
pub use handler::{HasRows, Loaded, RowPool};
pub(crate) use policy::RowPolicy;
pub use policy::{ChangedRow, MissingRow};

use crate::task::TaskOptions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{Encode, FromRow, Postgres, Type};
use std::fmt;

/// A type that is one row of a table, found by a one-column key. Implement it beside
/// `#[derive(sqlx::FromRow)]` (see [`Row`] for an example).
pub trait TableRow: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static {
    /// The table, optionally with its schema (`billing.invoices`). Quoted as an identifier, so
    /// it is case-sensitive, and a name with a `.` of its own cannot be used.
    const TABLE: &'static str;
    /// The key column (usually the primary key), quoted as an identifier.
    const KEY: &'static str;
    /// The key's Rust type: an integer, a `String`, or any sqlx-encodable, serde type.
    type Key: RowKey;

    /// This row's key.
    fn key(&self) -> Self::Key;

    /// This row's version, if the type has one: a number that changes whenever the row does
    /// (a version column; an `updated_at` as microseconds). [`Row::new`] captures it at
    /// enqueue; `None` (the default) turns off the changed-row check.
    fn version(&self) -> Option<i64> {
        None
    }
}

/// What a row key must be: sent as a bind parameter, written on the wire, and shown in
/// failure reasons (`row users/42 not found`). Implemented for every type that qualifies.
pub trait RowKey:
    Clone
    + fmt::Display
    + fmt::Debug
    + Serialize
    + DeserializeOwned
    + for<'q> Encode<'q, Postgres>
    + Type<Postgres>
    + Send
    + Sync
    + Unpin
    + 'static
{
}

impl<K> RowKey for K where
    K: Clone
        + fmt::Display
        + fmt::Debug
        + Serialize
        + DeserializeOwned
        + for<'q> Encode<'q, Postgres>
        + Type<Postgres>
        + Send
        + Sync
        + Unpin
        + 'static
{
}

/// The row options of a task (feature `postgres`).
impl TaskOptions {
    /// What happens to this task's jobs when a row argument is not in its table at run time;
    /// the default is [`MissingRow::Dead`].
    pub fn missing_row(mut self, missing: MissingRow) -> TaskOptions {
        self.rows.missing = missing;
        self
    }

    /// What happens to this task's jobs when a row's version differs from the one captured at
    /// enqueue; the default is [`ChangedRow::Run`].
    pub fn changed_row(mut self, changed: ChangedRow) -> TaskOptions {
        self.rows.changed = changed;
        self
    }
}
