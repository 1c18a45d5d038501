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
            source.code() == Some("NOGROUP") || source.to_string().contains("no such key")
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

    /// Delivers at most `count` new entries to `consumer`, high priority first (`lua/read.lua`).
    /// `None` when the group is paused.
    pub(crate) async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        keys: &Keys,
        consumer: &str,
        count: usize,
    ) -> Result<Option<Vec<Delivery>>, redis::RedisError> {
        let mut call = self.scripts().read.script().prepare_invoke();
        call.key(keys.streams().as_slice())
            .key(keys.paused())
            .arg(keys.group().as_str())
            .arg(consumer)
            .arg(count);
        let value: Value = call.invoke_async(conn).await?;
        if value == Value::Int(0) {
            return Ok(None);
        }
        parse_deliveries(value).map(Some).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Parse, "read reply", e.to_string()))
        })
    }

    /// Waits up to `block` for an entry the group has not delivered yet, on any priority
    /// stream. Claims nothing (XREAD, not XREADGROUP), so a worker with no free slot can wait
    /// without taking work. Returns whether something is waiting.
    pub(crate) async fn wait_for_new(
        &self,
        conn: &mut MultiplexedConnection,
        keys: &Keys,
        block: Duration,
    ) -> Result<bool, redis::RedisError> {
        let mut pipe = redis::pipe();
        for stream in keys.streams() {
            pipe.cmd("XINFO").arg("GROUPS").arg(stream);
        }
        let infos: Vec<Value> = pipe.query_async(conn).await?;
        let mut last_ids = Vec::with_capacity(3);
        for info in infos {
            let id = last_delivered_id(info, keys.group().as_str()).ok_or_else(|| {
                redis::RedisError::from((
                    redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
                    "NOGROUP",
                    "consumer group missing".to_string(),
                ))
            })?;
            last_ids.push(id);
        }
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(keys.streams().as_slice())
            .arg(&last_ids)
            .query_async(conn)
            .await?;
        Ok(!matches!(reply, Value::Nil))
    }
}

/// The `last-delivered-id` of `group` in an XINFO GROUPS reply.
fn last_delivered_id(info: Value, group: &str) -> Option<String> {
    let groups = reply::array("xinfo groups", info).ok()?;
    for g in groups {
        let fields: Vec<(String, Value)> = match g {
            Value::Map(items) => items
                .into_iter()
                .filter_map(|(k, v)| reply::string("xinfo", &k).ok().map(|k| (k, v)))
                .collect(),
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| match kv {
                    [k, v] => reply::string("xinfo", k).ok().map(|k| (k, v.clone())),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if get("name")
            .and_then(|v| reply::string("xinfo", v).ok())
            .as_deref()
            == Some(group)
        {
            return get("last-delivered-id").and_then(|v| reply::string("xinfo", v).ok());
        }
    }
    None
}

fn parse_deliveries(value: Value) -> Result<Vec<Delivery>> {
    const OP: &str = "read";
    let items = reply::array(OP, value)?;
    let mut out = Vec::with_capacity(items.len() / 3);
    let mut it = items.into_iter();
    while let (Some(p), Some(id), Some(fields)) = (it.next(), it.next(), it.next()) {
        let priority =
            Priority::from_index(reply::int(OP, &p)?).ok_or_else(|| reply::unexpected(OP, &p))?;
        let fields = match fields {
            Value::Nil => None,
            other => Some(reply::pairs(OP, other)?),
        };
        out.push(Delivery {
            priority,
            entry_id: reply::string(OP, &id)?,
            fields,
            deliveries: 1,
        });
    }
    Ok(out)
}
