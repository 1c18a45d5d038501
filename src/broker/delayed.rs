//! Promotion of due jobs from the delayed set into their priority streams.

use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::keys::Keys;
use deadpool_redis::redis::Value;

/// What one `promote` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Promoted {
    /// Jobs moved into their streams.
    pub(crate) moved: usize,
    /// Due time of the earliest job left, in ms since the epoch (Redis clock).
    pub(crate) next_due_ms: Option<u64>,
    /// Redis's clock when the call ran, in ms since the epoch.
    pub(crate) now_ms: u64,
    /// Microseconds of Redis time past `now_ms`, so the promoter can sleep to the µs.
    pub(crate) now_micros: u64,
    /// Members that had no payload (removed; a sign of outside tampering).
    pub(crate) orphans: usize,
}

impl Broker {
    /// Moves at most `limit` due jobs (`lua/promote.lua`).
    pub(crate) async fn promote_due(&self, keys: &Keys, limit: usize) -> Result<Promoted> {
        const OP: &str = "promote";
        let mut conn = self.conn().await?;
        let reply: Value = self
            .scripts()
            .promote
            .call()
            .keys(keys.streams())
            .key(keys.delayed())
            .key(keys.delayed_jobs())
            .arg(limit)
            .invoke(&mut conn, OP)
            .await?;
        let items = reply::array(OP, reply)?;
        let [moved, next, now, orphans, micros] = items.as_slice() else {
            return Err(Error::Protocol {
                op: OP,
                detail: format!("expected 5 items, got {}", items.len()),
            });
        };
        let next = reply::int(OP, next)?;
        Ok(Promoted {
            moved: reply::int(OP, moved)? as usize,
            next_due_ms: (next >= 0).then_some(next as u64),
            now_ms: reply::int(OP, now)? as u64,
            now_micros: reply::int(OP, micros)? as u64,
            orphans: reply::int(OP, orphans)? as usize,
        })
    }
}
