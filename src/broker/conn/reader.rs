//! The reader: a connection of a fetcher's own for its blocking reads (XREAD BLOCK) and the
//! reads that size its fetches, so a wait never holds up the shared connection's commands.
//! On a cluster it is a cluster connection of its own: each blocking read goes to the master
//! that owns the group's slot, and follows the slot when it moves.
//!
//! On a cluster, the commands of a fetch's pipeline go out as separate requests, all at once
//! (still one round trip), rather than as one pipeline: while the group's slot migrates to
//! another master, a key the source no longer holds, or never held (the `paused` flag is
//! usually absent), is answered with `-ASK`, and the client library redirects a pipeline as a
//! whole, sending `ASKING` before its first command only. The rest of it then meets `-MOVED`
//! on the target and the whole pipeline is sent again, its XREADGROUPs delivering more entries
//! each time that nobody runs, until the retries run out: no fetch could complete for as long
//! as the slot migrated. Sent apart, each command follows its own redirect. A fetch's commands
//! are reads of separate keys (and XREADGROUPs of separate streams), so their order on the
//! server does not matter.

use super::link::Link;
use futures_util::future::try_join_all;
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
        match &self.link {
            // See the module doc. A transaction must stay one piece; fetches send none.
            Link::Cluster(conn) if !pipeline.is_transaction() => {
                let conn = conn.clone();
                Box::pin(async move {
                    let replies = try_join_all(pipeline.cmd_iter().map(|cmd| {
                        let mut conn = conn.clone();
                        async move { conn.req_packed_command(cmd).await }
                    }))
                    .await?;
                    Ok(replies.into_iter().skip(offset).take(count).collect())
                })
            }
            _ => self.link.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        self.link.get_db()
    }
}
