//! Pub/sub: a connection of its own, subscribed to a few channels, and the messages that
//! arrive on it.
//!
//! A subscription hears nothing when nothing is published, so a node that hangs (SIGSTOP, a
//! frozen VM) keeps it open without a word, and one that went away without closing the
//! connection (a lost host) too: opening one and each quiet spell are bounded. Opening
//! (connect, subscribe) must finish within the connect plus the response timeout; after
//! [`QUIET`] without a message the connection is asked for a PING, and a PING unanswered
//! within the response timeout ends the subscription like a closed connection, so the
//! listener subscribes again, on a node that answers.

use super::endpoint::Timeouts;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::{ErrorKind, RedisError, Value};
use std::time::Duration;

/// How long a subscription may hear nothing before its connection is checked with a PING.
const QUIET: Duration = Duration::from_secs(5);

/// A pub/sub connection subscribed to its channels; see [`Subscription::next`].
pub(crate) struct Subscription {
    sink: PubSubSink,
    stream: PubSubStream,
    timeouts: Timeouts,
}

/// One message published on a subscribed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The channel's name (`?` when it is not UTF-8).
    pub(crate) channel: String,
    /// The message as published.
    pub(crate) payload: Vec<u8>,
}

/// Why a subscription could not be made or went on no longer; it reads as the client
/// library's error.
#[derive(Debug)]
pub(crate) struct PubSubError(RedisError);

impl PubSubError {
    /// The connection closed: [`Subscription::next`] returned `None`.
    pub(crate) fn closed() -> PubSubError {
        PubSubError(
            (
                ErrorKind::Io,
                "pub/sub connection closed or stopped answering",
            )
                .into(),
        )
    }

    /// Subscriptions need a URL to open their connection from, which a broker on an
    /// application's pool does not have.
    pub(in crate::broker) fn no_url() -> PubSubError {
        PubSubError(
            (
                ErrorKind::InvalidClientConfig,
                "pub/sub needs a broker opened from a URL, not from a pool",
            )
                .into(),
        )
    }
}

impl std::fmt::Display for PubSubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PubSubError {}

impl From<RedisError> for PubSubError {
    fn from(error: RedisError) -> PubSubError {
        PubSubError(error)
    }
}

impl Subscription {
    /// Opens a pub/sub connection to the first of `clients` that answers within `timeouts`
    /// and subscribes it to `channels`, one after another; also says which of `clients` it is.
    pub(super) async fn open(
        clients: &[redis::Client],
        channels: &[&str],
        timeouts: Timeouts,
    ) -> Result<(Subscription, usize), PubSubError> {
        let mut last_error = PubSubError::closed();
        let limit = timeouts.connect + timeouts.response;
        for (index, client) in clients.iter().enumerate() {
            match tokio::time::timeout(limit, Subscription::open_on(client, channels)).await {
                Ok(Ok((sink, stream))) => {
                    let subscription = Subscription {
                        sink,
                        stream,
                        timeouts,
                    };
                    return Ok((subscription, index));
                }
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = PubSubError(timed_out("subscribing")),
            }
        }
        Err(last_error)
    }

    async fn open_on(
        client: &redis::Client,
        channels: &[&str],
    ) -> Result<(PubSubSink, PubSubStream), PubSubError> {
        let mut pubsub = client.get_async_pubsub().await.map_err(PubSubError)?;
        for channel in channels {
            pubsub.subscribe(channel).await.map_err(PubSubError)?;
        }
        Ok(pubsub.split())
    }

    /// The next message on any subscribed channel; `None` once the connection has closed, or
    /// did not answer a PING within the response timeout after a quiet spell (see the module
    /// doc).
    pub(crate) async fn next(&mut self) -> Option<Message> {
        loop {
            match tokio::time::timeout(QUIET, self.stream.next()).await {
                Ok(Some(msg)) => {
                    return Some(Message {
                        channel: msg.get_channel_name().to_string(),
                        payload: msg.get_payload_bytes().to_vec(),
                    });
                }
                Ok(None) => return None,
                Err(_quiet) => {
                    let ping = self.sink.ping::<Value>();
                    match tokio::time::timeout(self.timeouts.response, ping).await {
                        // Any reply, an error reply included, says the connection works.
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) if !(e.is_io_error() || e.is_unrecoverable_error()) => {}
                        _ => return None,
                    }
                }
            }
        }
    }
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer in time"),
    ))
}
