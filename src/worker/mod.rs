//! The [`Worker`]: a pool of concurrent job executions for one or more groups.
//!
//! [`Worker::run`] starts, per group, one fetcher (reads the free slots and a bounded depth
//! ahead, on a connection of its own, and starts what it read as slots free up) and one promoter (moves due jobs from the delayed set), plus, for
//! the whole worker, one reaper, one finisher, one heartbeat, one pub/sub listener (wake-ups
//! and cancel requests), and, when configured, one scheduler, one depth sampler and the
//! metrics endpoint. Jobs run as tasks of their own; `stop.rs` documents the order of a stop.
//!
//! Files, one role each:
//! - `config`: the settings and every default; `builder`: [`WorkerBuilder`];
//! - `run`: [`Worker::run`] (start, wait for the signal, stop); `start`: the checks, then
//!   every part spawned; `stop`: the ordered stop;
//! - `shared`: what the job path shares; `running`: the running jobs and cancel requests;
//! - the job path: `fetcher` (reads and dispatches), `plan` (what the last read saw, and the
//!   next read), `room` (how far it reads ahead), `slot` (what a running job holds),
//!   `buffer` (what it read that waits for a slot), `reaper` (takes over stalled entries), `launch`
//!   (spawns job tasks), `executor` (runs one job), `finisher` (writes outcomes);
//! - the loops beside it: `heartbeat`, `promoter`, `wake` (the pub/sub listener), `sampler`;
//! - `preflight`: the start-up checks of the Redis server.

mod buffer;
mod builder;
pub(crate) mod config;
mod executor;
mod fetcher;
mod finisher;
mod heartbeat;
mod launch;
mod plan;
mod preflight;
mod promoter;
mod reaper;
mod room;
mod run;
mod running;
mod sampler;
mod shared;
mod slot;
mod start;
mod stop;
mod unwritten;
mod wake;

pub use builder::WorkerBuilder;
pub(crate) use executor::Completion;

use crate::broker::redact_url;
use crate::keys::GroupName;
use crate::middleware::Middleware;
use crate::schedule::Schedule;
use crate::task::Registry;
use config::WorkerConfig;
use std::sync::Arc;

/// A configured worker, ready to [`run`](Worker::run).
pub struct Worker<S = ()> {
    /// The Redis URL.
    url: String,
    /// The groups served, each once.
    groups: Vec<GroupName>,
    /// The settings.
    config: WorkerConfig,
    /// What handlers taking [`State<S>`](crate::State) receive.
    state: S,
    /// The task table.
    registry: Arc<Registry<S>>,
    /// The middleware, outermost first.
    layers: Arc<[Arc<dyn Middleware>]>,
    /// The periodic schedules this worker runs.
    schedules: Vec<Schedule>,
}

impl<S> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("url", &redact_url(&self.url))
            .field("groups", &self.groups)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S> Worker<S> {
    /// The consumer name this worker uses in its groups.
    pub fn consumer_name(&self) -> &str {
        &self.config.consumer
    }
}
