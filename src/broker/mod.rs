//! The broker: the only code that talks to Redis. Components ask it domain questions (enqueue
//! these, read up to N, finish these, promote what is due) and never build commands, open
//! connections or read raw replies themselves.
//!
//! # Layout
//! - `conn`: every connection and timeout: the shared connection or an application's pool
//!   for short commands, a [`Reader`] for a fetcher's blocking reads, a [`Subscription`] for
//!   pub/sub.
//! - `reply`: every reader of raw replies (values, stream entries, consumer-group facts, the
//!   error replies the broker acts on).
//! - `scripts`: the Lua scripts of `lua/`, embedded as `build.rs` assembles them, and
//!   `ScriptCall`, the one way to call them.
//! - Commands by domain: `enqueue`; `read` (consumer groups, fetches, the wait for new
//!   entries); `finish`; `lease` (reaper, heartbeat, gone consumers); `delayed` (promotion);
//!   `cancel`; `status` (tracked jobs); `schedule`; `server` (start-up checks); `clock`
//!   (Redis's `TIME`); `queues` (a group's queue figures, for `status` and the depth sampler);
//!   `inspect` and `repair` (the operations commands); `nodes` (a Redis Cluster's masters, for
//!   what must ask each of them); `per_group` (commands for several groups: one
//!   pipeline, or one per group's slot on a cluster).

mod batch;
mod cancel;
mod clock;
mod conn;
mod delayed;
mod enqueue;
mod finish;
mod inspect;
mod lease;
mod nodes;
mod per_group;
mod progress;
mod queues;
mod read;
mod repair;
mod reply;
mod schedule;
mod scripts;
mod server;
mod status;

pub(crate) use batch::{BatchMode, BatchRecord, BatchTrailer};
pub(crate) use cancel::{CancelReply, LockArg};
pub(crate) use conn::{Connection, Pool, PubSubError, Reader, Subscription, check_url};
pub use conn::{DEFAULT_REDIS_URL, redact_url};
pub(crate) use enqueue::Enqueued;
pub(crate) use finish::{Cancelled, Dead, DeadRetention, Done, EntryRef, FinishReport, Retry};
pub(crate) use lease::{ReapPage, SCAN_START};
pub(crate) use progress::ProgressTarget;
pub(crate) use queues::RawQueues;
pub(crate) use read::{Delivery, GroupState};
pub(crate) use repair::RunNow;
pub(crate) use reply::Fields;
pub(crate) use server::ServerFacts;

use crate::error::{Error, Result};
use conn::{Connections, Endpoint};
use deadpool_redis::redis;
use scripts::Scripts;
use std::sync::Arc;
use std::time::Duration;

/// Redis access shared by clients and workers: the connections for short commands, the URL
/// that dedicated connections are opened from (when known), and the scripts.
#[derive(Clone)]
pub(crate) struct Broker {
    connections: Connections,
    /// The Redis the connections were opened from, when the broker was built from a URL;
    /// dedicated connections (readers, subscriptions) are opened from it.
    endpoint: Option<Endpoint>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.url().map(redact_url))
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker on the shared connection to `url` (opened on first use).
    pub(crate) fn connect(url: &str) -> Result<Broker> {
        let endpoint = Endpoint::open(url)?;
        Ok(Broker::new(
            Connections::Shared(endpoint.shared()),
            Some(endpoint),
        ))
    }

    /// A broker on an application's pool.
    pub(crate) fn pooled(pool: Pool) -> Broker {
        Broker::new(Connections::Pool(pool), None)
    }

    fn new(connections: Connections, endpoint: Option<Endpoint>) -> Broker {
        Broker {
            connections,
            endpoint,
            scripts: Arc::new(Scripts::new()),
        }
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// The URL, when the broker was built from one.
    fn url(&self) -> Option<&str> {
        self.endpoint.as_ref().map(Endpoint::url)
    }

    /// A connection for a short command or a few.
    pub(crate) async fn conn(&self) -> Result<Connection> {
        self.connections.get(self.url()).await
    }

    /// A new reader: a connection of its own for blocking reads of up to `block`.
    pub(crate) async fn reader(&self, block: Duration) -> Result<Reader> {
        match &self.endpoint {
            Some(endpoint) => endpoint.reader(block).await,
            None => Err(Error::Config(
                "blocking reads need a broker opened from a URL, not from a pool".into(),
            )),
        }
    }

    /// A new pub/sub connection subscribed to `channels`.
    pub(crate) async fn subscribe(&self, channels: &[&str]) -> Result<Subscription, PubSubError> {
        match &self.endpoint {
            Some(endpoint) => endpoint.subscribe(channels).await,
            None => Err(PubSubError::no_url()),
        }
    }

    /// Checks that Redis answers, so a bad URL fails at start-up rather than at first use.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| {
                // A refused login shows at the first command: say where and what to check.
                if conn::is_refused_login(&e) {
                    conn::cannot_connect(self.url(), e)
                } else {
                    Error::redis("ping")(e)
                }
            })
    }
}
