//! The pub/sub listener: subscribes to the groups' wake channels, on which enqueues and retries
//! announce a due time earlier than any before (it wakes the group's promoter), and to their
//! cancel channels, on which `cancel` names a running job to stop.

use crate::broker::{Broker, PubSubError};
use crate::outage::Connectivity;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the listener does with a message on one channel.
#[derive(Clone)]
pub(crate) enum OnMessage {
    /// Wakes this promoter; also after every (re)subscribe, in case a message was missed.
    Wake(Arc<Notify>),
    /// Passes the message's payload (text) to this function.
    Call(Arc<dyn Fn(&str) + Send + Sync>),
}

/// Listens on each `(channel, action)` pair; see the module doc.
pub(crate) struct WakeListener {
    /// Subscribes on a connection of its own.
    broker: Broker,
    /// Whether Redis answers.
    connectivity: Arc<Connectivity>,
    /// Each channel and what a message on it does.
    channels: Vec<(String, OnMessage)>,
}

impl WakeListener {
    /// A listener on `channels`.
    pub(crate) fn new(
        broker: Broker,
        connectivity: Arc<Connectivity>,
        channels: Vec<(String, OnMessage)>,
    ) -> WakeListener {
        WakeListener {
            broker,
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
                        self.connectivity.failed("listening for wake-ups and cancel requests (promoters poll every second meanwhile; cancel requests for running jobs are missed)", &e);
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

    /// Subscribes, wakes every promoter, then handles messages until the connection drops.
    async fn listen(&self) -> Result<(), PubSubError> {
        let channels: Vec<&str> = self.channels.iter().map(|(c, _)| c.as_str()).collect();
        let mut subscription = self.broker.subscribe(&channels).await?;
        for (_, action) in &self.channels {
            if let OnMessage::Wake(wake) = action {
                wake.notify_one();
            }
        }
        while let Some(msg) = subscription.next().await {
            let Some((_, action)) = self.channels.iter().find(|(c, _)| *c == msg.channel) else {
                continue;
            };
            match action {
                OnMessage::Wake(wake) => wake.notify_one(),
                OnMessage::Call(call) => {
                    if let Ok(text) = std::str::from_utf8(&msg.payload) {
                        call(text);
                    }
                }
            }
        }
        Err(PubSubError::closed())
    }
}
