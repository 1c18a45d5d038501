//! Connections: the shared connection for short commands (`shared`), and dedicated
//! connections for blocking reads and pub/sub. Every timeout is set here.

mod shared;

pub(crate) use shared::{SharedConnection, SharedHandle};

use crate::error::{Error, Result};
use deadpool_redis::redis::{self, AsyncConnectionConfig};
use std::time::Duration;

/// The URL used when neither `--redis` nor `REDIS_URL` is given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long a connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a short command may wait for its reply.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Replaces the password in a Redis URL by `***`, so errors and logs never print it.
///
/// ```
/// assert_eq!(
///     streamworker::redact_url("redis://user:secret@host:6379/0"),
///     "redis://user:***@host:6379/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
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

/// Opens a client for `url` (no connection is made yet).
pub(crate) fn open(url: &str) -> Result<redis::Client> {
    redis::Client::open(url).map_err(|source| Error::Connect {
        url: redact_url(url),
        source,
    })
}

/// The timeouts of connections for short commands.
fn short_command_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// The shared connection for short commands to `url` (opened on first use).
pub(crate) fn shared(url: &str) -> Result<SharedConnection> {
    Ok(SharedConnection::new(open(url)?, short_command_config()))
}

/// A connection of its own for blocking reads: its response timeout exceeds any BLOCK we send.
pub(crate) async fn blocking_connection(
    client: &redis::Client,
    url: &str,
    block: Duration,
) -> Result<redis::aio::MultiplexedConnection> {
    client
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(block + RESPONSE_TIMEOUT)),
        )
        .await
        .map_err(|source| Error::Connect {
            url: redact_url(url),
            source,
        })
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
    }
}
