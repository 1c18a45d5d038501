//! Every connection to Redis, and every timeout: the shared connection for short commands
//! (`shared`), where a short command takes its connection (`source`: the shared one or an
//! application's pool), a connection of its own for a fetcher's blocking reads (`reader`), and
//! one for pub/sub (`pubsub`). An [`Endpoint`] is a parsed URL they are all opened from; it
//! finds whether the URL names one node, a Redis Cluster or a master behind Sentinel
//! (`endpoint`, `sentinel`), and a [`Link`] is one open connection to whichever it is.

mod endpoint;
mod link;
mod pubsub;
mod reader;
mod sentinel;
mod shared;
mod source;

pub(crate) use endpoint::{Endpoint, Timeouts, Topology};

pub(crate) use pubsub::{PubSubError, Subscription};
pub(crate) use reader::Reader;
pub(crate) use source::{Connection, Connections, Pool};

use crate::error::{Error, Result};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, RedisError, RedisResult};
use shared::SharedConnection;
use std::time::Duration;

/// The URL used when neither `--redis` nor `REDIS_URL` is given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a short command may wait for its reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP settings of every connection streamworker opens: `TCP_NODELAY` on. The client
/// library leaves Nagle's algorithm on unless told otherwise, and with it a small write waits
/// for the ACK of the data sent before it: a request written while another is unanswered on
/// the same connection (a multiplexed connection's concurrent callers), or the tail of a
/// request longer than one segment, waits for Redis's delayed ACK, 40 ms on Linux.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// A client for `info` whose connections use [`tcp_settings`].
fn client(info: impl IntoConnectionInfo) -> RedisResult<redis::Client> {
    redis::Client::open(
        info.into_connection_info()?
            .set_tcp_settings(tcp_settings()),
    )
}

/// Replaces the password in a Redis URL by `***`, so errors and logs never print it.
///
/// ```
/// assert_eq!(
///     streamworker::redact_url("redis://user:secret@host:6379/0"),
///     "redis://user:***@host:6379/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    // Several seed URLs of a cluster: each loses its password.
    if url.contains(',') && url.matches("://").count() > 1 {
        return url.split(',').map(redact_one).collect::<Vec<_>>().join(",");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://***@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

/// [`Error::Connect`] for a failure to reach the Redis at `url`, without its password.
fn connect_error(url: &str, source: RedisError) -> Error {
    Error::Connect {
        url: redact_url(url),
        source,
    }
}

/// [`Error::Connect`] for the Redis at `url` (without its password), or for an application's
/// pool's Redis when there is no URL.
pub(crate) fn cannot_connect(url: Option<&str>, source: RedisError) -> Error {
    match url {
        Some(url) => connect_error(url, source),
        None => Error::Connect {
            url: "the pool's Redis".to_string(),
            source,
        },
    }
}

/// Whether Redis refused this client's credentials (NOAUTH: a password is needed and none was
/// given; WRONGPASS; NOPERM), which the first command after connecting meets, not the connect.
pub(crate) fn is_refused_login(error: &RedisError) -> bool {
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
}

/// Checks that `url` is a Redis URL the client library accepts; no connection is made.
pub(crate) fn check_url(url: &str) -> Result<()> {
    Endpoint::open(url).map(drop)
}

/// The timeouts of connections for short commands.
const SHORT_COMMANDS: Timeouts = Timeouts {
    connect: CONNECT_TIMEOUT,
    response: RESPONSE_TIMEOUT,
};

/// The timeouts of a connection for blocking reads: its response timeout exceeds any BLOCK up
/// to `block`, so Redis answers a wait before the client gives up on it.
fn blocking_reads(block: Duration) -> Timeouts {
    Timeouts {
        connect: CONNECT_TIMEOUT,
        response: block + RESPONSE_TIMEOUT,
    }
}

impl Endpoint {
    /// Parses `url`; [`Error::Connect`] when it is not a Redis URL the client accepts.
    pub(crate) fn open(url: &str) -> Result<Endpoint> {
        Endpoint::parse(url).map_err(|source| connect_error(url, source))
    }

    /// The shared connection for short commands (opened on first use).
    pub(crate) fn shared(&self) -> SharedConnection {
        SharedConnection::new(self.clone(), SHORT_COMMANDS)
    }

    /// A new reader for blocking reads of up to `block`.
    pub(crate) async fn reader(&self, block: Duration) -> Result<Reader> {
        self.link(blocking_reads(block))
            .await
            .map(Reader::new)
            .map_err(|source| connect_error(self.url(), source))
    }

    /// A new pub/sub connection subscribed to `channels`.
    pub(crate) async fn subscribe(&self, channels: &[&str]) -> Result<Subscription, PubSubError> {
        let clients = self.pubsub_clients().await.map_err(PubSubError::from)?;
        let (subscription, index) = Subscription::open(&clients, channels, SHORT_COMMANDS).await?;
        self.pubsub_opened(index, clients.len());
        Ok(subscription)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact_url("rediss://u:p@ss@h/2"), "rediss://u:***@h/2");
        assert_eq!(redact_url("redis://token@h"), "redis://***@h");
        assert_eq!(
            redact_url("redis://:a@h:1,redis://:b@h:2"),
            "redis://:***@h:1,redis://:***@h:2"
        );
        assert_eq!(
            redact_url("redis+sentinel://u:p@s1,s2:26380/mymaster"),
            "redis+sentinel://u:***@s1,s2:26380/mymaster"
        );
    }
}
