//! Pub/sub: a connection of its own, subscribed to a few channels, and the messages that
//! arrive on it.

use futures_util::StreamExt;
use redis::aio::PubSub;
use redis::{ErrorKind, RedisError};

/// A pub/sub connection subscribed to its channels; see [`Subscription::next`].
pub(crate) struct Subscription {
    pubsub: PubSub,
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
        PubSubError((ErrorKind::Io, "pub/sub connection closed").into())
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
    /// Opens a pub/sub connection to the first of `clients` that answers and subscribes it to
    /// `channels`, one after another.
    pub(super) async fn open(
        clients: &[redis::Client],
        channels: &[&str],
    ) -> Result<Subscription, PubSubError> {
        let mut last_error = PubSubError::closed();
        for client in clients {
            match Subscription::open_on(client, channels).await {
                Ok(subscription) => return Ok(subscription),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn open_on(
        client: &redis::Client,
        channels: &[&str],
    ) -> Result<Subscription, PubSubError> {
        let mut pubsub = client.get_async_pubsub().await.map_err(PubSubError)?;
        for channel in channels {
            pubsub.subscribe(channel).await.map_err(PubSubError)?;
        }
        Ok(Subscription { pubsub })
    }

    /// The next message on any subscribed channel; `None` once the connection has closed.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        let msg = self.pubsub.on_message().next().await?;
        Some(Message {
            channel: msg.get_channel_name().to_string(),
            payload: msg.get_payload_bytes().to_vec(),
        })
    }
}
