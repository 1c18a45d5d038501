//! The reader: a connection of a fetcher's own for its blocking reads (XREAD BLOCK) and the
//! reads that size its fetches, so a wait never holds up the shared connection's commands.
//! On a cluster it is a cluster connection of its own: each blocking read goes to the master
//! that owns the group's slot, and follows the slot when it moves.

use super::link::Link;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection for blocking reads; its response timeout exceeds the longest BLOCK it is
/// opened for. Cheap to clone: clones send on the same connection, so a read and a query
/// can be in flight on it together.
#[derive(Clone)]
pub(crate) struct Reader {
    link: Link,
}

impl Reader {
    /// A reader on `link`, opened with blocking reads' timeouts.
    pub(super) fn new(link: Link) -> Reader {
        Reader { link }
    }
}

impl ConnectionLike for Reader {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.link.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.link.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.link.get_db()
    }
}
