//! Leases on delivered entries: the reaper's take-over of entries whose worker stopped
//! answering, the heartbeat that renews a live worker's entries, and the removal of consumers
//! that are gone.

use super::Delivery;
use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::job::duration_ms;
use crate::keys::Keys;
use crate::priority::Priority;
use deadpool_redis::redis::Value;
use std::time::Duration;

/// One `lua/reap.lua` call's outcome on one stream.
#[derive(Debug, Default)]
pub(crate) struct ReapPage {
    /// Where the next call continues; `0-0` when the scan went through the whole pending list.
    pub(crate) cursor: String,
    /// Entries now owned by this consumer, to run again.
    pub(crate) claimed: Vec<Delivery>,
    /// Entries that were pending but had been deleted (XDEL/XTRIM by someone else): lost jobs.
    pub(crate) deleted: Vec<String>,
}

/// The cursor that starts a scan of a pending list from its beginning.
pub(crate) const SCAN_START: &str = "0-0";

impl Broker {
    /// Takes over at most `count` entries of `priority`'s stream idle longer than `min_idle`,
    /// scanning from `cursor` (`lua/reap.lua`). `None` when the group is paused.
    pub(crate) async fn reap(
        &self,
        keys: &Keys,
        consumer: &str,
        priority: Priority,
        min_idle: Duration,
        cursor: &str,
        count: usize,
    ) -> Result<Option<ReapPage>> {
        const OP: &str = "reap";
        let mut conn = self.conn().await?;
        let value: Value = self
            .scripts()
            .reap
            .call()
            .key(keys.stream(priority))
            .key(keys.paused())
            .arg(keys.group().as_str())
            .arg(consumer)
            .arg(duration_ms(min_idle))
            .arg(cursor)
            .arg(count.max(1))
            .invoke(&mut conn, OP)
            .await?;
        let mut parts = reply::array(OP, value)?.into_iter();
        let (Some(next), Some(claimed), Some(deleted)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Protocol {
                op: OP,
                detail: "expected {cursor, claimed, deleted}".into(),
            });
        };
        let mut page = ReapPage {
            cursor: reply::string(OP, &next)?,
            ..ReapPage::default()
        };
        let claimed = reply::array(OP, claimed)?;
        for entry in claimed.chunks(3) {
            let [id, fields, count] = entry else {
                return Err(reply::unexpected(OP, &Value::Array(entry.to_vec())));
            };
            let fields = match fields {
                Value::Nil => None,
                other => Some(reply::pairs(OP, other.clone())?),
            };
            page.claimed.push(Delivery {
                priority,
                entry_id: reply::string(OP, id)?,
                fields,
                deliveries: u32::try_from(reply::int(OP, count)?).unwrap_or(u32::MAX),
            });
        }
        for id in reply::array(OP, deleted)? {
            page.deleted.push(reply::string(OP, &id)?);
        }
        Ok(Some(page))
    }

    /// Renews this consumer's lease on `entries` (`lua/heartbeat.lua`). Returns, in order,
    /// whether each entry was still ours: `false` means another worker took the job over.
    pub(crate) async fn heartbeat(
        &self,
        keys: &Keys,
        consumer: &str,
        entries: &[(Priority, String)],
    ) -> Result<Vec<bool>> {
        const OP: &str = "heartbeat";
        let mut conn = self.conn().await?;
        let mut call = self.scripts().heartbeat.call();
        call.keys(keys.streams())
            .arg(keys.group().as_str())
            .arg(consumer)
            .arg(entries.len());
        for (priority, entry_id) in entries {
            call.arg(priority.index()).arg(entry_id);
        }
        let value: Value = call.invoke(&mut conn, OP).await?;
        reply::array(OP, value)?
            .iter()
            .map(|v| Ok(reply::int(OP, v)? == 1))
            .collect()
    }

    /// Removes the group's consumers that own nothing and have been idle at least `min_idle`,
    /// except `consumer` itself (`lua/prune_consumers.lua`). Returns the names removed.
    pub(crate) async fn prune_consumers(
        &self,
        keys: &Keys,
        consumer: &str,
        min_idle: Duration,
    ) -> Result<Vec<String>> {
        const OP: &str = "prune consumers";
        let mut conn = self.conn().await?;
        let value: Value = self
            .scripts()
            .prune_consumers
            .call()
            .keys(keys.streams())
            .arg(keys.group().as_str())
            .arg(duration_ms(min_idle))
            .arg(consumer)
            .invoke(&mut conn, OP)
            .await?;
        let items = reply::array(OP, value)?;
        let mut names: Vec<String> = items
            .chunks(2)
            .filter_map(|pair| pair.get(1).and_then(|n| reply::string(OP, n).ok()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}
