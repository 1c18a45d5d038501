//! Where the broker takes a connection for short commands: the shared multiplexed connection
//! (one round trip per command), or a `deadpool_redis::Pool` an application handed over (its
//! manager checks each connection out with a round trip of its own).

use super::cannot_connect;
use super::link::Link;
use super::shared::{SharedConnection, SharedHandle};
use crate::error::{Error, Result};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// An application's connection pool, as `Client::from_pool` and `Admin::from_pool` take it.
pub(crate) type Pool = deadpool_redis::Pool;

/// The source of connections for short commands.
#[derive(Clone)]
pub(crate) enum Connections {
    /// One multiplexed connection shared by every task, replaced when it breaks.
    Shared(SharedConnection),
    /// An application's pool.
    Pool(Pool),
}

/// A connection for one call of the broker, from either source.
pub(crate) enum Connection {
    /// On the shared connection.
    Shared(SharedHandle),
    /// Checked out of a pool; goes back to it when dropped.
    Pooled(deadpool_redis::Connection),
}

impl Connections {
    /// A connection for a short command or a few. A failure to connect names `url` (without
    /// its password), or the pool's Redis when there is no URL.
    pub(crate) async fn get(&self, url: Option<&str>) -> Result<Connection> {
        let cannot_connect = |source| cannot_connect(url, source);
        match self {
            Connections::Shared(shared) => shared
                .get()
                .await
                .map(Connection::Shared)
                .map_err(cannot_connect),
            Connections::Pool(pool) => {
                pool.get()
                    .await
                    .map(Connection::Pooled)
                    .map_err(|e| match e {
                        deadpool_redis::PoolError::Backend(source) => cannot_connect(source),
                        other => Error::Pool(other.to_string()),
                    })
            }
        }
    }
}

impl Connection {
    /// The link under a shared connection (`None` for a pool's connection, always one node).
    pub(crate) fn link(&mut self) -> Option<&mut Link> {
        match self {
            Connection::Shared(c) => Some(c.link()),
            Connection::Pooled(_) => None,
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Shared(c) => c.req_packed_command(cmd),
            Connection::Pooled(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Shared(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Pooled(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Shared(c) => c.get_db(),
            Connection::Pooled(c) => c.get_db(),
        }
    }
}
