//! Cancel: one bounded step of `lua/cancel.lua`; the caller loops on its cursor.

use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::keys::Keys;
use deadpool_redis::redis::{self, Value};
use std::collections::HashMap;

/// The uniqueness lock a cancel step may release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LockArg {
    /// None known yet: the script asks for it if the job holds one.
    Unknown,
    /// This key's lock (validated), passed in KEYS.
    Key(String),
    /// The job's key cannot be a Redis key: leave the lock to its TTL.
    LeaveToTtl,
}

/// What one cancel step found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CancelReply {
    /// The status record says the job already ended in this state.
    Finished(String),
    /// Removed before it ran: from the delayed set (`delayed`) or from its stream.
    Removed { delayed: bool },
    /// Running for `consumer`; `listeners` subscribers got the cancel message.
    Running { consumer: String, listeners: usize },
    /// The job holds this uniqueness key: call again with it.
    NeedLock(String),
    /// The job is a child of this batch: call again with it.
    NeedBatch(String),
    /// Not found within the step's limit: continue from this cursor.
    Continue { stream: usize, from: String },
    /// Nowhere; the status record's state, or empty.
    NotFound(String),
}

impl Broker {
    /// Runs one step of `lua/cancel.lua` for job `id`, scanning from `cursor` (stream index
    /// 1..3, start id) at most `limit` entries. `batch` is the batch the job is a child of, as
    /// the script asked for it (`""` none known, `"*"` count it nowhere).
    pub(crate) async fn cancel_step(
        &self,
        keys: &Keys,
        id: &str,
        cursor: (usize, &str),
        limit: usize,
        lock: &LockArg,
        batch: &str,
    ) -> Result<CancelReply> {
        const OP: &str = "cancel";
        let mut call = self.scripts().cancel.call();
        call.keys(keys.streams())
            .key(keys.delayed())
            .key(keys.delayed_jobs())
            .key(keys.job(id));
        let lock_name = match lock {
            LockArg::Unknown => "",
            LockArg::LeaveToTtl => "*",
            LockArg::Key(k) => {
                call.key(keys.unique(k));
                k.as_str()
            }
        };
        call.arg(keys.group().as_str())
            .arg(id)
            .arg(keys.cancel_channel())
            .arg(cursor.0)
            .arg(cursor.1)
            .arg(limit.max(1))
            .arg(lock_name);
        if !batch.is_empty() && batch != "*" {
            let at = call.key_index(keys.batch(batch));
            call.key(keys.batch_pending(batch))
                .key(keys.batch_failed(batch));
            call.arg(batch).arg(at);
        } else if batch == "*" {
            call.arg(batch).arg(0);
        }
        let mut conn = self.conn().await?;
        let value: Value = call.invoke(&mut conn, OP).await?;
        match parse(value)? {
            CancelReply::Running {
                consumer,
                listeners,
            } => Ok(CancelReply::Running {
                consumer,
                listeners: listeners.max(self.cluster_listeners(keys).await),
            }),
            other => Ok(other),
        }
    }

    /// On a Redis Cluster, the subscribers of the group's cancel channel on every node. The
    /// script's PUBLISH counts only those on the node that ran it (the group's master), while
    /// the message reaches every node and a worker listens on whichever it reached. 0 on a
    /// single node, or when a node does not answer (an ACL without PUBSUB NUMSUB, an outage):
    /// the script's count stands then.
    async fn cluster_listeners(&self, keys: &Keys) -> usize {
        if !matches!(self.is_cluster().await, Ok(true)) {
            return 0;
        }
        let Ok(mut conn) = self.conn().await else {
            return 0;
        };
        // The cluster connection sends PUBSUB NUMSUB to every node and sums the counts.
        let counts: Option<HashMap<String, i64>> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(keys.cancel_channel())
            .query_async(&mut conn)
            .await
            .ok();
        counts
            .and_then(|c| c.values().next().copied())
            .map_or(0, |n| n.max(0) as usize)
    }
}

fn parse(value: Value) -> Result<CancelReply> {
    const OP: &str = "cancel";
    let items = reply::array(OP, value)?;
    let text = |i: usize| -> Result<String> {
        items
            .get(i)
            .ok_or_else(|| Error::Protocol {
                op: OP,
                detail: format!("reply has no item {i}"),
            })
            .and_then(|v| reply::string(OP, v))
    };
    let number = |i: usize| -> Result<i64> {
        items
            .get(i)
            .ok_or_else(|| Error::Protocol {
                op: OP,
                detail: format!("reply has no item {i}"),
            })
            .and_then(|v| reply::int(OP, v))
    };
    Ok(match text(0)?.as_str() {
        "finished" => CancelReply::Finished(text(1)?),
        "removed" => CancelReply::Removed {
            delayed: text(1)? == "delayed",
        },
        "running" => CancelReply::Running {
            consumer: text(1)?,
            listeners: number(2)?.max(0) as usize,
        },
        "need_lock" => CancelReply::NeedLock(text(1)?),
        "need_batch" => CancelReply::NeedBatch(text(1)?),
        "continue" => CancelReply::Continue {
            stream: number(1)?.clamp(1, 3) as usize,
            from: text(2)?,
        },
        "not_found" => CancelReply::NotFound(text(1)?),
        other => {
            return Err(Error::Protocol {
                op: OP,
                detail: format!("unknown cancel reply {other:?}"),
            });
        }
    })
}
