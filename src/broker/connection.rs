//! Where the broker takes a connection for short commands: the shared multiplexed connection
//! (one round trip per command), or a `deadpool_redis::Pool` an application handed over (its
//! manager checks each connection out with a round trip of its own).

use crate::redis::{SharedConnection, SharedHandle};
use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{Cmd, Pipeline, RedisFuture, Value};

/// The source of connections for short commands.
#[derive(Clone)]
pub(crate) enum Connections {
    /// One multiplexed connection shared by every task, replaced when it breaks.
    Shared(SharedConnection),
    /// An application's pool.
    Pool(deadpool_redis::Pool),
}

/// A connection for one call of the broker, from either source.
pub(crate) enum Connection {
    /// On the shared connection.
    Shared(SharedHandle),
    /// Checked out of a pool; goes back to it when dropped.
    Pooled(deadpool_redis::Connection),
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
