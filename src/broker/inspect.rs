//! Reads for the operations commands (`crate::admin`): group discovery, pending entries, and
//! lookups in the streams, the delayed set and the dead stream. Nothing here moves a job;
//! every read is bounded (COUNT, LIMIT, SCAN cursors). Queue figures are in `queues`, Redis's
//! clock in `clock`.

use super::Broker;
use super::reply::{self, Entry, Fields};
use crate::error::{Error, Result};
use crate::keys::{GROUP_SCAN_PATTERN, GroupName, Keys, group_of_key};
use crate::priority::Priority;
use deadpool_redis::redis::{self, Value};
use std::collections::BTreeSet;

/// Keys looked at per SCAN call while discovering groups.
const SCAN_COUNT: usize = 1000;

/// A pending entry as XPENDING reports it, with the entry's fields (`None`: deleted while
/// pending).
#[derive(Debug, Clone)]
pub(crate) struct RawPending {
    pub(crate) priority: Priority,
    pub(crate) entry_id: String,
    pub(crate) consumer: String,
    pub(crate) idle_ms: u64,
    pub(crate) deliveries: u64,
    pub(crate) fields: Option<Fields>,
}

/// One SCAN call for group keys from `cursor`.
fn scan_step(cursor: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(GROUP_SCAN_PATTERN)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
}

impl Broker {
    /// Every group with a stream, a delayed set, a dead stream or a pause flag in Redis, found
    /// by following a SCAN cursor to its end (COUNT [`SCAN_COUNT`] per call); on a cluster, on
    /// every master, or [`Error::IncompleteListing`] when one does not answer.
    pub(crate) async fn scan_groups(&self) -> Result<Vec<GroupName>> {
        let mut groups = BTreeSet::new();
        match self.masters().await? {
            None => {
                let mut conn = self.conn().await?;
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = scan_step(cursor)
                        .query_async(&mut conn)
                        .await
                        .map_err(Error::redis("scan for groups"))?;
                    groups.extend(keys.iter().filter_map(|k| group_of_key(k)));
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            Some(masters) => {
                for node in masters {
                    let mut cursor: u64 = 0;
                    loop {
                        let (next, keys): (u64, Vec<String>) = self
                            .on_node(&node, scan_step(cursor))
                            .await
                            .map_err(|source| Error::IncompleteListing {
                                node: node.to_string(),
                                source,
                            })?;
                        groups.extend(keys.iter().filter_map(|k| group_of_key(k)));
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
            }
        }
        Ok(groups.into_iter().collect())
    }

    /// Whether any key showing the group exists (a stream, the delayed set, the dead stream,
    /// the pause flag).
    pub(crate) async fn group_exists(&self, keys: &Keys) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n: u64 = redis::cmd("EXISTS")
            .arg(keys.streams().as_slice())
            .arg(keys.delayed())
            .arg(keys.dead())
            .arg(keys.paused())
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("group exists"))?;
        Ok(n > 0)
    }

    /// Up to `count` pending entries of one priority stream, oldest first, idle at least
    /// `min_idle_ms`, of `consumer` only when given; with their fields.
    pub(crate) async fn pending(
        &self,
        keys: &Keys,
        priority: Priority,
        min_idle_ms: u64,
        consumer: Option<&str>,
        count: usize,
    ) -> Result<Vec<RawPending>> {
        const OP: &str = "pending";
        let stream = keys.stream(priority);
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(stream)
            .arg(keys.group().as_str())
            .arg("IDLE")
            .arg(min_idle_ms)
            .arg("-")
            .arg("+")
            .arg(count);
        if let Some(c) = consumer {
            cmd.arg(c);
        }
        let rows: Vec<(String, String, u64, u64)> = match cmd.query_async(&mut conn).await {
            Ok(rows) => rows,
            // No stream or no consumer group yet: nothing is pending.
            Err(e) if e.code() == Some("NOGROUP") => return Ok(Vec::new()),
            Err(e) => return Err(Error::redis(OP)(e)),
        };
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, ..) in &rows {
            pipe.cmd("XRANGE").arg(stream).arg(id).arg(id);
        }
        let entries: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        rows.into_iter()
            .zip(entries)
            .map(|((entry_id, consumer, idle_ms, deliveries), entry)| {
                Ok(RawPending {
                    priority,
                    entry_id,
                    consumer,
                    idle_ms,
                    deliveries,
                    fields: reply::entries(OP, entry)?
                        .into_iter()
                        .next()
                        .map(|(_, f)| f),
                })
            })
            .collect()
    }

    /// The pending-list record of one entry: (consumer, idle ms, deliveries), or `None` when
    /// it is not pending.
    pub(crate) async fn pending_entry(
        &self,
        keys: &Keys,
        priority: Priority,
        entry_id: &str,
    ) -> Result<Option<(String, u64, u64)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(String, String, u64, u64)> = match redis::cmd("XPENDING")
            .arg(keys.stream(priority))
            .arg(keys.group().as_str())
            .arg(entry_id)
            .arg(entry_id)
            .arg(1)
            .query_async(&mut conn)
            .await
        {
            Ok(rows) => rows,
            Err(e) if e.code() == Some("NOGROUP") => return Ok(None),
            Err(e) => return Err(Error::redis("pending entry")(e)),
        };
        Ok(rows.into_iter().next().map(|(_, c, idle, n)| (c, idle, n)))
    }

    /// Entries of stream `key` in id order: after `after` (exclusive; from the start when
    /// `None`), up to `count`; newest first from the end when `newest_first`.
    pub(crate) async fn range(
        &self,
        key: &str,
        after: Option<&str>,
        count: usize,
        newest_first: bool,
    ) -> Result<Vec<Entry>> {
        const OP: &str = "range";
        let mut conn = self.conn().await?;
        let mut cmd = if newest_first {
            let mut c = redis::cmd("XREVRANGE");
            c.arg(key)
                .arg(after.map_or("+".to_string(), |a| format!("({a}")))
                .arg("-");
            c
        } else {
            let mut c = redis::cmd("XRANGE");
            c.arg(key)
                .arg(after.map_or("-".to_string(), |a| format!("({a}")))
                .arg("+");
            c
        };
        cmd.arg("COUNT").arg(count);
        let value: Value = cmd.query_async(&mut conn).await.map_err(Error::redis(OP))?;
        reply::entries(OP, value)
    }

    /// One entry of stream `key`, if it exists.
    pub(crate) async fn entry(&self, key: &str, entry_id: &str) -> Result<Option<Fields>> {
        const OP: &str = "entry";
        let mut conn = self.conn().await?;
        let value: Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(entry_id)
            .arg(entry_id)
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        Ok(reply::entries(OP, value)?
            .into_iter()
            .next()
            .map(|(_, f)| f))
    }

    /// Up to `limit` delayed jobs from position `offset`, earliest due first: (job id, due ms,
    /// packed payload).
    pub(crate) async fn delayed_page(
        &self,
        keys: &Keys,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(String, u64, Option<Vec<u8>>)>> {
        const OP: &str = "delayed";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(keys.delayed())
            .arg(offset)
            .arg(offset + limit - 1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let payloads: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(keys.delayed_jobs())
            .arg(members.iter().map(|(id, _)| id).collect::<Vec<_>>())
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        Ok(members
            .into_iter()
            .zip(payloads)
            .map(|((id, due), payload)| (id, due as u64, payload))
            .collect())
    }

    /// One delayed job: (due ms, packed payload), or `None` when it is not in the set.
    pub(crate) async fn delayed_job(
        &self,
        keys: &Keys,
        id: &str,
    ) -> Result<Option<(u64, Option<Vec<u8>>)>> {
        let mut conn = self.conn().await?;
        let (score, payload): (Option<f64>, Option<Vec<u8>>) = redis::pipe()
            .cmd("ZSCORE")
            .arg(keys.delayed())
            .arg(id)
            .cmd("HGET")
            .arg(keys.delayed_jobs())
            .arg(id)
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("delayed job"))?;
        Ok(score.map(|s| (s as u64, payload)))
    }
}
