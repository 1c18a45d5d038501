//! The broker: the only code that talks to Redis for the runtime. Components ask it domain
//! questions (enqueue these, read up to N, finish these, promote what is due) and never build
//! commands themselves.

mod cancel;
mod clock;
mod connection;
mod delayed;
mod enqueue;
mod finish;
mod inspect;
mod lease;
mod queues;
mod read;
mod repair;
mod reply;
mod schedule;
mod server;
mod status;

pub(crate) use cancel::{CancelReply, LockArg};
pub(crate) use connection::{Connection, Connections};
pub(crate) use enqueue::Enqueued;
pub(crate) use finish::{Cancelled, Dead, Done, EntryRef, FinishReport, Retry};
pub(crate) use inspect::Fields;
pub(crate) use lease::{ReapPage, SCAN_START};
pub(crate) use queues::RawQueues;
pub(crate) use read::{Delivery, GroupState, is_missing_group};
pub(crate) use repair::RunNow;
pub(crate) use server::ServerFacts;
pub(crate) use status::RawStatus;

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::redis::redact_url;
use crate::scripts::Scripts;
use deadpool_redis::redis;
use std::sync::Arc;

/// Redis access shared by clients and workers: the connections for short commands plus the
/// scripts.
#[derive(Clone)]
pub(crate) struct Broker {
    connections: Connections,
    /// The URL the connections were opened from, when known; dedicated connections are opened
    /// from it.
    url: Option<String>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.url.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

/// Appends job `job_id`'s status key to a script's KEYS when `track`, and returns its 1-based
/// index there (the scripts' ARGV refer to it), or 0 for an untracked job.
fn track_key(keys: &Keys, script_keys: &mut Vec<String>, job_id: &str, track: bool) -> usize {
    if track {
        script_keys.push(keys.job(job_id));
        script_keys.len()
    } else {
        0
    }
}

impl Broker {
    /// A broker on the shared connection to `url` (opened on first use).
    pub(crate) fn connect(url: &str) -> Result<Broker> {
        Ok(Broker::new(
            Connections::Shared(crate::redis::shared(url)?),
            Some(url.to_string()),
        ))
    }

    /// A broker on an application's pool.
    pub(crate) fn pooled(pool: deadpool_redis::Pool) -> Broker {
        Broker::new(Connections::Pool(pool), None)
    }

    fn new(connections: Connections, url: Option<String>) -> Broker {
        Broker {
            connections,
            url,
            scripts: Arc::new(Scripts::new()),
        }
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// The URL, when the broker was built from one.
    pub(crate) fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// A connection for a short command or a few.
    pub(crate) async fn conn(&self) -> Result<Connection> {
        let connect_error = |source| Error::Connect {
            url: self
                .url
                .as_deref()
                .map_or_else(|| "the pool's Redis".to_string(), redact_url),
            source,
        };
        match &self.connections {
            Connections::Shared(shared) => shared
                .get()
                .await
                .map(Connection::Shared)
                .map_err(connect_error),
            Connections::Pool(pool) => {
                pool.get()
                    .await
                    .map(Connection::Pooled)
                    .map_err(|e| match e {
                        deadpool_redis::PoolError::Backend(source) => connect_error(source),
                        other => Error::Pool(other.to_string()),
                    })
            }
        }
    }

    /// Checks that Redis answers, so a bad URL fails at start-up rather than at first use.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::redis("ping"))
    }
}
