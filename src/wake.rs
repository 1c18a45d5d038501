//! The wake-up listener: subscribes to the groups' wake channels, on which enqueues and retries
//! announce a due time earlier than any before, and wakes the group's promoter.

use crate::outage::Connectivity;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Listens on each `(channel, promoter wake-up)` pair; see the module doc.
pub(crate) struct WakeListener {
    client: deadpool_redis::redis::Client,
    connectivity: Arc<Connectivity>,
    channels: Vec<(String, Arc<Notify>)>,
}

impl WakeListener {
    pub(crate) fn new(
        client: deadpool_redis::redis::Client,
        connectivity: Arc<Connectivity>,
        channels: Vec<(String, Arc<Notify>)>,
    ) -> WakeListener {
        WakeListener {
            client,
            connectivity,
            channels,
        }
    }

    /// Listens until `stop` fires, reconnecting with a pause when the connection drops. After a
    /// reconnect every promoter is woken, in case a message was missed meanwhile.
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                res = self.listen() => {
                    if let Err(e) = res {
                        self.connectivity.failed("listening for wake-ups (promoters poll every second meanwhile)", &e);
                    }
                }
                () = stop.cancelled() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500 + rand::random_range(0..500))) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    async fn listen(&self) -> Result<(), deadpool_redis::redis::RedisError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        for (channel, _) in &self.channels {
            pubsub.subscribe(channel).await?;
        }
        for (_, wake) in &self.channels {
            wake.notify_one();
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            if let Some((_, wake)) = self
                .channels
                .iter()
                .find(|(c, _)| c == msg.get_channel_name())
            {
                wake.notify_one();
            }
        }
        Err((
            deadpool_redis::redis::ErrorKind::Io,
            "pub/sub connection closed",
        )
            .into())
    }
}
