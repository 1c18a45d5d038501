//! Fetch: consumer-group creation, strict-priority reads sized to free slots, and the
//! blocking wait for new entries that claims nothing.

use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::priority::Priority;
use deadpool_redis::redis::{self, Value, aio::MultiplexedConnection};
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

/// Whether an error says a stream or its consumer group is gone (Redis lost its data, or
/// someone deleted the key).
pub(crate) fn is_missing_group(e: &Error) -> bool {
    match e {
        Error::Redis { source, .. } => {
            // In a pipeline the error comes wrapped ("Pipeline failure: [(Index 1, error:
            // \"NOGROUP\": ...)]"), so the text is checked too.
            let text = source.to_string();
            source.code() == Some("NOGROUP")
                || text.contains("NOGROUP")
                || text.to_lowercase().contains("no such key")
        }
        _ => false,
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
        conn: &mut MultiplexedConnection,
        keys: &Keys,
        consumer: &str,
        plan: &[(Priority, usize)],
    ) -> Result<(bool, Vec<Delivery>), redis::RedisError> {
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
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        let paused = matches!(replies.first(), Some(Value::Int(1)));
        let mut deliveries = Vec::new();
        for (reply, &(priority, _)) in replies.into_iter().skip(1).zip(plan) {
            deliveries.extend(parse_read(priority, reply).map_err(parse_error)?);
        }
        Ok((paused, deliveries))
    }

    /// The consumer group's state on the high, default and low streams (XINFO GROUPS), which
    /// sizes the next fetch. For the streams in `probe` whose lag Redis cannot tell, the newest
    /// entry (XREVRANGE) tells whether anything is undelivered.
    pub(crate) async fn group_states(
        &self,
        conn: &mut MultiplexedConnection,
        keys: &Keys,
        probe: &[Priority],
    ) -> Result<Vec<GroupState>, redis::RedisError> {
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
        let mut infos: Vec<Value> = pipe.query_async(conn).await?;
        let probes = infos.split_off(3);
        let mut streams = Vec::with_capacity(3);
        for info in infos {
            let state = group_state(info, keys.group().as_str()).ok_or_else(missing_group)?;
            streams.push(state);
        }
        for (reply, &priority) in probes.into_iter().zip(probe) {
            let state = &mut streams[priority.index() - 1];
            if state.lag.is_none() {
                let newest = parse_read_entries(priority, reply).map_err(parse_error)?;
                let beyond = newest
                    .first()
                    .is_some_and(|e| id_order(&e.entry_id) > id_order(&state.last_delivered));
                if !beyond {
                    state.lag = Some(0);
                }
            }
        }
        Ok(streams)
    }

    /// Waits up to `block` for an entry past `last_ids` (the group's last-delivered ids of the
    /// high, default and low streams) without claiming anything (XREAD, not XREADGROUP), so a
    /// pause set meanwhile is seen by the fetch that follows. Returns the priorities of the
    /// streams where something arrived.
    pub(crate) async fn wait_for_new(
        &self,
        conn: &mut MultiplexedConnection,
        keys: &Keys,
        last_ids: &[String],
        block: Duration,
    ) -> Result<Vec<Priority>, redis::RedisError> {
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(keys.streams().as_slice())
            .arg(last_ids)
            .query_async(conn)
            .await?;
        let streams = keys.streams();
        let mut arrived = Vec::new();
        if let Value::Array(items) = reply {
            for item in items {
                let key = match item {
                    Value::Array(mut kv) if !kv.is_empty() => kv.swap_remove(0),
                    _ => continue,
                };
                if let Ok(name) = reply::string("xread", &key)
                    && let Some(i) = streams.iter().position(|s| *s == name)
                {
                    arrived.push(Priority::ALL[i]);
                }
            }
        }
        Ok(arrived)
    }
}

/// The consumer group's state on one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupState {
    pub(crate) last_delivered: String,
    /// Entries not delivered yet; `None` when Redis cannot tell (entries were deleted past
    /// the group's position).
    pub(crate) lag: Option<u64>,
}

fn parse_error(e: crate::error::Error) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Parse, "fetch reply", e.to_string()))
}

fn missing_group() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
        "NOGROUP",
        "consumer group missing".to_string(),
    ))
}

/// The state of `group` in an XINFO GROUPS reply (RESP2 arrays or RESP3 maps).
fn group_state(info: Value, group: &str) -> Option<GroupState> {
    let groups = reply::array("xinfo groups", info).ok()?;
    for g in groups {
        let fields: Vec<(String, Value)> = match g {
            Value::Map(items) => items
                .into_iter()
                .filter_map(|(k, v)| reply::string("xinfo", &k).ok().map(|k| (k, v)))
                .collect(),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if let Ok(k) = reply::string("xinfo", &k) {
                        out.push((k, v));
                    }
                }
                out
            }
            _ => continue,
        };
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if get("name")
            .and_then(|v| reply::string("xinfo", v).ok())
            .as_deref()
            == Some(group)
        {
            return Some(GroupState {
                last_delivered: get("last-delivered-id")
                    .and_then(|v| reply::string("xinfo", v).ok())?,
                lag: get("lag")
                    .and_then(|v| reply::int("xinfo", v).ok())
                    .map(|n| n.max(0) as u64),
            });
        }
    }
    None
}

/// A stream id as (milliseconds, sequence), for comparing and sorting ids; what does not
/// parse sorts first (Redis then rejects it, and a finish reports it stale).
pub(crate) fn id_order(id: &str) -> (u64, u64) {
    id.split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .unwrap_or((0, 0))
}

/// The entries of an XREADGROUP reply on one stream of `priority` (nil: none).
fn parse_read(priority: Priority, value: Value) -> Result<Vec<Delivery>> {
    const OP: &str = "read";
    if value == Value::Nil {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for stream in reply::array(OP, value)? {
        let entries = match stream {
            Value::Array(mut kv) if kv.len() == 2 => kv.pop().expect("two items"),
            Value::Map(mut kv) if kv.len() == 1 => kv.pop().expect("one item").1,
            other => return Err(reply::unexpected(OP, &other)),
        };
        out.extend(parse_read_entries(priority, entries)?);
    }
    Ok(out)
}

/// Entries as XRANGE or one stream of XREADGROUP lists them.
fn parse_read_entries(priority: Priority, entries: Value) -> Result<Vec<Delivery>> {
    const OP: &str = "read";
    let mut out = Vec::new();
    for entry in reply::array(OP, entries)? {
        let mut pair = reply::array(OP, entry)?.into_iter();
        let (Some(id), Some(fields)) = (pair.next(), pair.next()) else {
            return Err(Error::Protocol {
                op: OP,
                detail: "an entry without id and fields".into(),
            });
        };
        out.push(Delivery {
            priority,
            entry_id: reply::string(OP, &id)?,
            fields: match fields {
                Value::Nil => None,
                other => Some(reply::pairs(OP, other)?),
            },
            deliveries: 1,
        });
    }
    Ok(out)
}
