//! The reader: a connection of a fetcher's own for its blocking reads (XREAD BLOCK) and the
//! reads that size its fetches, so a wait never holds up the shared connection's commands.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A connection for blocking reads; its response timeout exceeds the longest BLOCK it is
/// opened for. Cheap to clone: clones send on the same connection, so a read and a query
/// can be in flight on it together.
#[derive(Clone)]
pub(crate) struct Reader {
    link: Link,
}

/// The connection behind a reader, by the kind of deployment.
#[derive(Clone)]
enum Link {
    /// One multiplexed connection to the server the URL names.
    Single(MultiplexedConnection),
}

impl Reader {
    /// Opens a reader on `client`'s server with `config` (its connect and response timeouts).
    pub(super) async fn open(
        client: &redis::Client,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<Reader> {
        let conn = client
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        Ok(Reader {
            link: Link::Single(conn),
        })
    }
}

impl ConnectionLike for Reader {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(c) => c.get_db(),
        }
    }
}
