//! The figures of a group's queues, read in three round trips: stream lengths and consumer
//! groups, the delayed set, the dead stream and its retention, the pause flag and the outcome
//! counts. `status`
//! shows them and a worker's depth sampler records them.

use super::{Broker, Connection, reply};
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::priority::Priority;
use crate::time::time_reply_ms;
use deadpool_redis::redis::{self, Value};
use std::collections::HashMap;

/// What the group's consumer group on one priority stream reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawGroupInfo {
    /// Entries delivered and not acknowledged.
    pub(crate) pending: u64,
    /// Entries not delivered yet, when Redis can tell (`lag`).
    pub(crate) lag: Option<u64>,
    /// The id of the last entry delivered to the group.
    pub(crate) last_delivered: String,
    /// (name, pending, idle ms) per consumer.
    pub(crate) consumers: Vec<(String, u64, u64)>,
}

/// Figures of one priority stream.
#[derive(Debug, Clone)]
pub(crate) struct RawStream {
    /// Which stream.
    pub(crate) priority: Priority,
    /// Entries in the stream (XLEN).
    pub(crate) len: u64,
    /// `None` when no worker has created the consumer group yet.
    pub(crate) group: Option<RawGroupInfo>,
    /// Id of the oldest entry not delivered yet.
    pub(crate) oldest_ready: Option<String>,
}

impl RawStream {
    /// Entries delivered and not finished.
    pub(crate) fn pending(&self) -> u64 {
        self.group.as_ref().map_or(0, |g| g.pending)
    }

    /// Entries not delivered yet: Redis's `lag` when it can tell, else length minus pending
    /// (finished entries are deleted, so the rest of the stream is waiting).
    pub(crate) fn ready(&self) -> u64 {
        match &self.group {
            None => self.len,
            Some(g) => g.lag.unwrap_or_else(|| self.len.saturating_sub(g.pending)),
        }
    }
}

/// Everything `status` needs about one group, read in three round trips.
#[derive(Debug, Clone)]
pub(crate) struct RawQueues {
    /// Redis's clock, in ms since the epoch.
    pub(crate) now_ms: u64,
    /// The high, default and low streams, in that order.
    pub(crate) streams: Vec<RawStream>,
    /// Jobs in the delayed set.
    pub(crate) delayed: u64,
    /// When the earliest delayed job is due, in ms since the epoch.
    pub(crate) next_due_ms: Option<u64>,
    /// Entries in the dead stream.
    pub(crate) dead: u64,
    /// The dead stream's retention hash as the last worker to add to it wrote it
    /// (`max_len`, `max_age_ms`); empty when none has yet.
    pub(crate) dead_retention: HashMap<String, String>,
    /// The pause flag's value (Redis time in ms when the pause began), when paused.
    pub(crate) paused: Option<String>,
    /// The stats hash: `<kind>:<10 s slot>` → count.
    pub(crate) stats: HashMap<String, i64>,
}

impl Broker {
    /// The figures of every queue of the group.
    pub(crate) async fn queues(&self, keys: &Keys) -> Result<RawQueues> {
        const OP: &str = "status";
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for s in keys.streams() {
            pipe.cmd("XLEN").arg(s);
        }
        pipe.cmd("ZCARD").arg(keys.delayed());
        pipe.cmd("ZRANGE")
            .arg(keys.delayed())
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        pipe.cmd("XLEN").arg(keys.dead());
        pipe.cmd("HGETALL").arg(keys.dead_retention());
        pipe.cmd("GET").arg(keys.paused());
        pipe.cmd("HGETALL").arg(keys.stats());
        type First = (
            (u64, u64),
            u64,
            u64,
            u64,
            u64,
            Vec<(String, f64)>,
            u64,
            HashMap<String, String>,
            Option<String>,
            HashMap<String, i64>,
        );
        let (
            (secs, micros),
            high,
            default,
            low,
            delayed,
            first_due,
            dead,
            dead_retention,
            paused,
            stats,
        ): First = pipe
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        let mut streams = Vec::with_capacity(3);
        for (priority, len) in Priority::ALL.into_iter().zip([high, default, low]) {
            let stream = keys.stream(priority);
            let group = if len > 0 || self.key_exists(&mut conn, stream).await? {
                self.group_info(&mut conn, stream, keys.group().as_str())
                    .await?
            } else {
                None
            };
            let from = match &group {
                Some(g) => format!("({}", g.last_delivered),
                None => "-".to_string(),
            };
            let oldest_ready = if len > 0 {
                reply::first_id(
                    "range",
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg(&from)
                        .arg("+")
                        .arg("COUNT")
                        .arg(1)
                        .query_async(&mut conn)
                        .await
                        .map_err(Error::redis(OP))?,
                )?
            } else {
                None
            };
            streams.push(RawStream {
                priority,
                len,
                group,
                oldest_ready,
            });
        }
        Ok(RawQueues {
            now_ms: time_reply_ms(secs, micros),
            streams,
            delayed,
            next_due_ms: first_due.first().map(|(_, score)| *score as u64),
            dead,
            dead_retention,
            paused,
            stats,
        })
    }

    /// Whether `key` exists.
    async fn key_exists(&self, conn: &mut Connection, key: &str) -> Result<bool> {
        redis::cmd("EXISTS")
            .arg(key)
            .query_async(conn)
            .await
            .map_err(Error::redis("status"))
    }

    /// The consumer group `group` on `stream` (pending count, last delivered id, consumers);
    /// `None` when it does not exist.
    async fn group_info(
        &self,
        conn: &mut Connection,
        stream: &str,
        group: &str,
    ) -> Result<Option<RawGroupInfo>> {
        const OP: &str = "xinfo groups";
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn)
            .await
            .map_err(Error::redis(OP))?;
        let Some(mut info) = reply::group_info(OP, groups, group)? else {
            return Ok(None);
        };
        let consumers: Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg(group)
            .query_async(conn)
            .await
            .map_err(Error::redis("xinfo consumers"))?;
        info.consumers = reply::consumers(OP, consumers)?;
        Ok(Some(info))
    }
}
