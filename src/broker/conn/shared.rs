//! The shared connection for short commands: one multiplexed connection that every task of a
//! `Client`, an `Admin` or a worker sends its commands on concurrently, so a command costs one
//! round trip (a pool that checks each connection out with a PING costs two).
//!
//! The connection is opened on first use. A command that fails in a way that leaves the
//! connection in doubt (an I/O error, a response timeout, a reply that does not parse, a
//! `READONLY` replica after a fail-over) retires it, and the next caller opens a new one; the
//! failed command itself is not sent again (it may have run). A connection quiet for
//! [`QUIET`] is checked with a PING before use, so one that Redis closed while nobody used it
//! (a restart, its idle `timeout`) is replaced before a command is lost on it.

use super::endpoint::{Endpoint, Timeouts};
use super::link::Link;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the connection may go without a reply before it is checked with a PING.
const QUIET: Duration = Duration::from_secs(1);

/// One multiplexed connection shared by every clone, replaced when it breaks; see the module
/// doc. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SharedConnection {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    timeouts: Timeouts,
    /// The connection in use, if one is open and not retired.
    current: Mutex<Option<Arc<Live>>>,
    /// Held while opening or checking a connection: one attempt at a time.
    opening: tokio::sync::Mutex<Attempts>,
}

/// The outcome of the latest attempt to open a connection, for callers that waited for it.
#[derive(Default)]
struct Attempts {
    /// Counts finished attempts.
    count: u64,
    /// The error of the latest attempt, if it failed.
    failure: Option<RedisError>,
}

/// An open connection and when it last answered.
struct Live {
    conn: Link,
    opened: Instant,
    /// Milliseconds from `opened` to the latest reply.
    last_reply_ms: AtomicU64,
}

impl Live {
    fn new(conn: Link) -> Live {
        Live {
            conn,
            opened: Instant::now(),
            last_reply_ms: AtomicU64::new(0),
        }
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn replied(&self) {
        self.last_reply_ms
            .fetch_max(self.millis(), Ordering::Relaxed);
    }

    /// Whether it answered within [`QUIET`]. A cluster connection is always taken as fresh:
    /// it watches its nodes itself, and a PING would go to every node.
    fn is_fresh(&self) -> bool {
        if self.conn.is_cluster() {
            return true;
        }
        let now = self.millis();
        let quiet = now.saturating_sub(self.last_reply_ms.load(Ordering::Relaxed));
        u128::from(quiet) < QUIET.as_millis()
    }
}

/// Whether `error` leaves the connection it came from in doubt, so that it must be replaced:
/// I/O errors (the connection dropped, or a reply timed out: the link may be half-open), errors
/// the client library says need a new connection (a reply that does not parse), and `READONLY`
/// (after a fail-over the address now leads to a replica; a new connection may find the new
/// primary). Errors Redis replied with otherwise (NOSCRIPT, NOGROUP, LOADING, ...) leave it
/// usable.
pub(crate) fn breaks_connection(error: &RedisError) -> bool {
    error.is_io_error() || error.is_unrecoverable_error() || error.code() == Some("READONLY")
}

/// Whether a reply says `READONLY`, alone or as one reply of a pipeline. The client library
/// hands error replies back as values (`query_async` turns them into errors only after the
/// connection returned them), so a connection that judged only its `Err`s would never see a
/// replica's `READONLY` and would keep sending to a demoted master for good.
fn says_readonly(reply: &Value) -> bool {
    match reply {
        Value::ServerError(e) => e.code() == "READONLY",
        Value::Array(replies) => replies
            .iter()
            .any(|r| matches!(r, Value::ServerError(e) if e.code() == "READONLY")),
        _ => false,
    }
}

impl SharedConnection {
    /// A shared connection to `endpoint`, opened with `timeouts` on first use.
    pub(crate) fn new(endpoint: Endpoint, timeouts: Timeouts) -> SharedConnection {
        SharedConnection {
            inner: Arc::new(Inner {
                endpoint,
                timeouts,
                current: Mutex::new(None),
                opening: tokio::sync::Mutex::new(Attempts::default()),
            }),
        }
    }

    /// A handle on the connection for a command or a few: the open one when it answered
    /// within [`QUIET`]; else the open one after it answered a PING; else a new one. Callers
    /// that wait while another opens a connection share that attempt's outcome, so an
    /// unreachable Redis costs one connect timeout, not one per waiting caller.
    pub(crate) async fn get(&self) -> RedisResult<SharedHandle> {
        if let Some(live) = self.inner.current().filter(|live| live.is_fresh()) {
            return Ok(self.handle(live));
        }
        let seen = self.inner.opening.try_lock().map(|a| a.count).ok();
        let mut attempts = self.inner.opening.lock().await;
        if let Some(live) = self.inner.current().filter(|live| live.is_fresh()) {
            return Ok(self.handle(live));
        }
        if seen.is_none_or(|seen| seen != attempts.count)
            && let Some(failure) = &attempts.failure
        {
            // An attempt failed while this caller waited for it.
            return Err(failure.clone());
        }
        if let Some(live) = self.inner.current() {
            let mut handle = self.handle(live);
            match redis::cmd("PING").query_async::<()>(&mut handle).await {
                Ok(()) => return Ok(handle),
                // Redis answered, with an error (an ACL without PING, say): the link works.
                Err(e) if !breaks_connection(&e) => return Ok(handle),
                // The handle retired the connection: open another below.
                Err(_) => {}
            }
        }
        let opened = self.inner.endpoint.link(self.inner.timeouts).await;
        attempts.count += 1;
        match opened {
            Ok(conn) => {
                attempts.failure = None;
                let live = Arc::new(Live::new(conn));
                *self.inner.current.lock().expect("connection slot") = Some(live.clone());
                Ok(self.handle(live))
            }
            Err(e) => {
                attempts.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    fn handle(&self, live: Arc<Live>) -> SharedHandle {
        SharedHandle {
            conn: live.conn.clone(),
            live,
            owner: self.inner.clone(),
        }
    }
}

impl Inner {
    fn current(&self) -> Option<Arc<Live>> {
        self.current.lock().expect("connection slot").clone()
    }

    /// Forgets `live` if it is still the connection in use. Commands in flight on it finish
    /// (or fail) on their own; it closes when the last handle on it is dropped.
    fn retire(&self, live: &Arc<Live>) {
        let mut current = self.current.lock().expect("connection slot");
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, live)) {
            *current = None;
        }
    }
}

/// The shared connection as one caller uses it: sends on the multiplexed connection and
/// retires it when a command fails in a way that [breaks](breaks_connection) it.
pub(crate) struct SharedHandle {
    conn: Link,
    live: Arc<Live>,
    owner: Arc<Inner>,
}

impl SharedHandle {
    /// The link this handle sends on.
    pub(crate) fn link(&mut self) -> &mut Link {
        &mut self.conn
    }

    /// Retires the connection after an error or a reply that [breaks](breaks_connection) it
    /// (a `READONLY` reply included, see [`says_readonly`]); else notes that it answered.
    fn observe<'r>(&self, result: Result<impl IntoIterator<Item = &'r Value>, &RedisError>) {
        let broken = match result {
            Err(e) => breaks_connection(e),
            Ok(replies) => replies.into_iter().any(says_readonly),
        };
        if broken {
            self.owner.retire(&self.live);
        } else {
            self.live.replied();
        }
    }
}

impl ConnectionLike for SharedHandle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            self.observe(result.as_ref().map(std::iter::once));
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.observe(result.as_ref());
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ErrorKind;
    use std::io;

    #[test]
    fn io_errors_and_timeouts_break_the_connection() {
        for kind in [
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::TimedOut,
        ] {
            assert!(breaks_connection(&RedisError::from(io::Error::from(kind))));
        }
        assert!(breaks_connection(&RedisError::from((
            ErrorKind::Parse,
            "bad reply"
        ))));
    }

    #[test]
    fn replies_with_an_error_leave_it_usable() {
        let replied = |text: &str| match redis::parse_redis_value(format!("-{text}\r\n").as_bytes())
        {
            Ok(value) => value.extract_error().unwrap_err(),
            Err(e) => e,
        };
        assert!(!breaks_connection(&replied("NOSCRIPT No matching script")));
        assert!(!breaks_connection(&replied("NOGROUP No such key")));
        assert!(!breaks_connection(&replied("LOADING Redis is loading")));
        assert!(!breaks_connection(&replied(
            "ERR wrong number of arguments"
        )));
        assert!(breaks_connection(&replied(
            "READONLY You can't write against a read only replica."
        )));
    }

    #[test]
    fn a_readonly_reply_is_seen_alone_and_in_a_pipeline() {
        let value = |text: &str| redis::parse_redis_value(text.as_bytes()).unwrap();
        let readonly = "-READONLY You can't write against a read only replica.\r\n";
        assert!(says_readonly(&value(readonly)));
        assert!(says_readonly(&value(&format!("*2\r\n:1\r\n{readonly}"))));
        assert!(!says_readonly(&value("-NOGROUP No such key\r\n")));
        assert!(!says_readonly(&value("*2\r\n:1\r\n-NOSCRIPT x\r\n")));
        assert!(!says_readonly(&value("+OK\r\n")));
    }
}
