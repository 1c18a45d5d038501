//! streamworker: a background job queue on Redis Streams consumer groups.
//!
//! Producers enqueue jobs (from Rust with [`Client`], from the `streamworker enqueue` command,
//! or with a plain `redis-cli XADD`); a [`Worker`] runs them with your handlers, retries what
//! fails with backoff, and moves what cannot succeed to a dead stream with the reason. Every
//! move of a job between places is one Lua script, so a job is always in exactly one place.
//!
//! ```no_run
//! use streamworker::{Client, Job, TaskError, Worker};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Email { to: String }
//!
//! async fn send_email(email: Email) -> Result<(), TaskError> {
//!     println!("sending to {}", email.to);
//!     Ok(())
//! }
//!
//! # async fn demo() -> Result<(), streamworker::Error> {
//! let url = "redis://127.0.0.1:6379";
//! let client = Client::connect(url).await?;
//! client.enqueue(Job::new("emails", "send_email", &Email { to: "a@b.c".into() })?).await?;
//!
//! let worker = Worker::builder(url).group("emails").task("send_email", send_email).build()?;
//! worker.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`keys`]: every Redis key, under one hash tag per group.
//! - `job`: everything stored per job, each name spelled once: the stream fields ([`Job`]
//!   writes them, workers decode them), [`JobId`], [`Payload`], unique keys, the status
//!   record ([`JobStatus`], [`JobState`]) and what a dead entry adds.
//! - [`Client`]: enqueue, bulk and atomic enqueue, status, wait for a result, cancel;
//!   [`JobBatch`] sends a request's jobs only when it commits; [`Job::unique_for`] makes a
//!   job unique.
//! - [`Worker`] (`worker/`, one file per role): per group a fetcher and a promoter; per worker a
//!   reaper, a finisher, a heartbeat, a pub/sub listener and, when configured, a scheduler and
//!   a depth sampler; every default in `worker/config.rs`.
//! - [`Schedule`] and [`Scheduler`]: periodic jobs, each tick enqueued once across schedulers;
//!   `schedule` holds the tick arithmetic and a schedule's stored form.
//! - `broker`: the only code that talks to Redis (its connections, commands and reply
//!   parsers); its `scripts` embeds `lua/`, assembled by `build.rs` from the scripts and the
//!   shared fragments of `lua/lib/`.
//! - [`Metrics`]: Prometheus metrics of a worker, served with `--metrics-addr`.
//! - [`admin`]: the operations queries and repairs (status, pending, dead, delayed, pause).
//! - [`cli`]: the `streamworker` command line, reusable in your own binary.
//! - [`outbox`] (feature `postgres`): enqueue inside a PostgreSQL transaction, and the relay
//!   that moves committed jobs into Redis once.
//! - [`Job::header`] and [`JobContext::header`]: a job's headers (`job/headers.rs`); with the
//!   `axum` feature, `RequestOrigin` captures a web request's origin into them (`origin.rs`).
//! - `time`: milliseconds since the epoch to and from Rust times, and times as UTC text.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod admin;
mod backoff;
mod batch;
mod broker;
mod chain;
pub mod cli;
mod client;
mod context;
mod error;
mod job;
pub mod keys;
mod metrics;
pub mod middleware;
#[cfg(feature = "axum")]
mod origin;
mod outage;
#[cfg(feature = "postgres")]
pub mod outbox;
mod priority;
#[cfg(feature = "postgres")]
mod row;
mod schedule;
mod scheduler;
mod task;
mod time;
mod worker;

pub use backoff::Backoff;
pub use batch::{
    BATCH_FAILED_HEADER_MAX, Batch, BatchCallback, BatchPolicy, BatchStatus, DEFAULT_BATCH_TTL,
};
pub use broker::{DEFAULT_REDIS_URL, redact_url};
pub use chain::Chain;
pub use client::{CancelOutcome, Client, JobBatch};
pub use context::{JobContext, ORIGIN_HEADER, State};
pub use error::{Error, Result};
pub use job::{
    DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Encoding, Job, JobId,
    JobState, JobStatus, Payload,
};
pub use job::{MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_BYTES, MAX_HEADERS};
pub use job::{MAX_PROGRESS_MESSAGE_BYTES, Progress};
pub use keys::GroupName;
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
pub use middleware::{Middleware, Next};
#[cfg(feature = "axum")]
pub use origin::{OriginConfig, OriginRejection, RequestOrigin};
pub use priority::{ParsePriorityError, Priority};
#[cfg(feature = "postgres")]
pub use row::{ChangedRow, HasRows, LoadRow, Loaded, MissingRow, Row, RowKey, RowPool, TableRow};
pub use schedule::{DEFAULT_GRACE, MAX_SCHEDULE_NAME_LEN, Missed, Schedule, ScheduleInfo};
pub use scheduler::Scheduler;
pub use task::{Handler, IntoOutput, JobResult, Output, TaskError, TaskOptions};
pub use worker::{Worker, WorkerBuilder};
