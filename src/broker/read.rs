//! Fetch: consumer-group creation, strict-priority reads sized to the fetcher's room, and the
//! idle fetcher's blocking read.

use super::{Broker, Reader, reply};
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::priority::Priority;
use deadpool_redis::redis::{self, RedisError, Value};
use std::time::Duration;

/// One entry delivered to this consumer.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) priority: Priority,
    pub(crate) entry_id: String,
    /// `None` when the entry was deleted while pending.
    pub(crate) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// How many times the entry has been delivered, this delivery included: 1 for a fresh
    /// read, more when the reaper took it over from a worker that stopped answering.
    pub(crate) deliveries: u32,
}

/// The error of a fetch's command during `op`: [`Error::MissingGroup`] when Redis says a
/// stream of the group or its consumer group is gone (Redis lost its data, or someone deleted
/// the key), else [`Error::Redis`].
fn fetch_error<'a>(keys: &'a Keys, op: &'static str) -> impl FnOnce(RedisError) -> Error + 'a {
    move |source| {
        if reply::says_group_missing(&source) {
            missing_group(keys)
        } else {
            Error::Redis { op, source }
        }
    }
}

/// [`Error::MissingGroup`] for the group of `keys`.
fn missing_group(keys: &Keys) -> Error {
    Error::MissingGroup {
        group: keys.group().as_str().to_string(),
    }
}

impl Broker {
    /// Creates the consumer group on each priority stream (at id 0, so jobs enqueued before
    /// the group existed are served; MKSTREAM). Returns how many groups were created, which is
    /// 0 when they all existed (BUSYGROUP).
    pub(crate) async fn ensure_groups(&self, keys: &Keys) -> Result<usize> {
        let mut conn = self.conn().await?;
        let mut created = 0;
        for stream in keys.streams() {
            let res = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(keys.group().as_str())
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<()>(&mut conn)
                .await;
            match res {
                Ok(()) => created += 1,
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(Error::redis("create consumer group")(e)),
            }
        }
        Ok(created)
    }

    /// The reads of one fetch, in one round trip: the pause flag, then an XREADGROUP per
    /// entry of `plan` (a stream and how many entries to take from it, highest priority
    /// first). Returns whether the group is paused, and the entries delivered.
    ///
    /// The reads are plain commands, not a script: Redis copies every entry a script reads
    /// into Lua and back (several µs per entry). So the pause flag is read in the same round
    /// trip rather than before: when it is set, the caller hands back what was delivered.
    pub(crate) async fn read_planned(
        &self,
        conn: &mut Reader,
        keys: &Keys,
        consumer: &str,
        plan: &[(Priority, usize)],
    ) -> Result<(bool, Vec<Delivery>)> {
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg(keys.paused());
        for &(priority, count) in plan {
            pipe.cmd("XREADGROUP")
                .arg("GROUP")
                .arg(keys.group().as_str())
                .arg(consumer)
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(keys.stream(priority))
                .arg(">");
        }
        let replies: Vec<Value> = pipe
            .query_async(conn)
            .await
            .map_err(fetch_error(keys, "read"))?;
        let paused = matches!(replies.first(), Some(Value::Int(1)));
        let mut deliveries = Vec::new();
        for (reply, &(priority, _)) in replies.into_iter().skip(1).zip(plan) {
            deliveries.extend(reply::deliveries(priority, reply)?);
        }
        Ok((paused, deliveries))
    }

    /// An idle fetcher's read, in one round trip: an XREADGROUP of up to `count` entries per
    /// stream that blocks up to `block` until something arrives on the high, default or low
    /// stream (one hop from XADD to delivery, as a bare consumer), then the pause flag and the
    /// group's state, which Redis answers only once the read has returned. Returns whether
    /// the group is paused (the caller then hands back what was delivered), the entries
    /// delivered, highest priority first, and the state.
    pub(crate) async fn read_blocking(
        &self,
        conn: &mut Reader,
        keys: &Keys,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<(bool, Vec<Delivery>, Vec<GroupState>)> {
        let streams = keys.streams();
        let mut pipe = redis::pipe();
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(keys.group().as_str())
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(streams.as_slice())
            .arg([">", ">", ">"].as_slice());
        pipe.cmd("EXISTS").arg(keys.paused());
        for stream in streams.iter() {
            pipe.cmd("XINFO").arg("GROUPS").arg(stream);
        }
        let mut replies: Vec<Value> = pipe
            .query_async(conn)
            .await
            .map_err(fetch_error(keys, "wait for jobs"))?;
        let infos = replies.split_off(2);
        let paused = matches!(replies.get(1), Some(Value::Int(1)));
        let read = replies.swap_remove(0);
        let mut deliveries = Vec::new();
        for (name, stream_reply) in reply::streams_replied(read)? {
            if let Some(i) = streams.iter().position(|s| *s == name) {
                deliveries.push((i, reply::deliveries_of(Priority::ALL[i], stream_reply)?));
            }
        }
        deliveries.sort_by_key(|(i, _)| *i);
        let deliveries = deliveries.into_iter().flat_map(|(_, d)| d).collect();
        Ok((paused, deliveries, states_of(keys, infos)?))
    }

    /// The consumer group's state on the high, default and low streams (XINFO GROUPS), which
    /// sizes the next fetch. For the streams in `probe` whose lag Redis cannot tell, the newest
    /// entry (XREVRANGE) tells whether anything is undelivered.
    pub(crate) async fn group_states(
        &self,
        conn: &mut Reader,
        keys: &Keys,
        probe: &[Priority],
    ) -> Result<Vec<GroupState>> {
        let mut pipe = redis::pipe();
        for stream in keys.streams() {
            pipe.cmd("XINFO").arg("GROUPS").arg(stream);
        }
        for &priority in probe {
            pipe.cmd("XREVRANGE")
                .arg(keys.stream(priority))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let mut infos: Vec<Value> = pipe
            .query_async(conn)
            .await
            .map_err(fetch_error(keys, "read"))?;
        let probes = infos.split_off(3);
        let mut streams = states_of(keys, infos)?;
        for (reply, &priority) in probes.into_iter().zip(probe) {
            let state = &mut streams[priority.index() - 1];
            if state.lag.is_none() {
                let newest = reply::first_id("read", reply)?;
                let beyond =
                    newest.is_some_and(|id| id_order(&id) > id_order(&state.last_delivered));
                if !beyond {
                    state.lag = Some(0);
                }
            }
        }
        Ok(streams)
    }
}

/// The group's state on each stream from its `XINFO GROUPS` reply;
/// [`Error::MissingGroup`] when a stream lacks the consumer group.
fn states_of(keys: &Keys, infos: Vec<Value>) -> Result<Vec<GroupState>> {
    infos
        .into_iter()
        .map(|info| {
            reply::group_state(info, keys.group().as_str()).ok_or_else(|| missing_group(keys))
        })
        .collect()
}

/// The consumer group's state on one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupState {
    /// The id of the last entry delivered to the group.
    pub(crate) last_delivered: String,
    /// Entries not delivered yet; `None` when Redis cannot tell (entries were deleted past
    /// the group's position).
    pub(crate) lag: Option<u64>,
}

/// A stream id as (milliseconds, sequence), for comparing and sorting ids; what does not
/// parse sorts first (Redis then rejects it, and a finish reports it stale).
pub(crate) fn id_order(id: &str) -> (u64, u64) {
    id.split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .unwrap_or((0, 0))
}
