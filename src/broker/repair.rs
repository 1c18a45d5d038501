//! Repairs for the operations commands (`crate::admin`): re-drive dead jobs, run a delayed job
//! now, purge old dead jobs, pause and resume a group. Each move is one script or one command.

use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::job::duration_ms;
use crate::keys::Keys;
use deadpool_redis::redis::{self, Value};
use std::time::Duration;

use super::enqueue::STATUS_GRACE;

/// What `run_now` did with one delayed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunNow {
    /// Moved into its priority stream as this entry.
    Moved(String),
    /// Not in the delayed set.
    NotDelayed,
    /// In the set without payload: removed (a sign of outside tampering).
    NoPayload,
}

impl Broker {
    /// `lua/dead_retry.lua` for dead entries `(entry id, job id)`: returns per entry the new
    /// entry id in its priority stream, or `None` when the dead entry was gone.
    pub(crate) async fn dead_retry(
        &self,
        keys: &Keys,
        entries: &[(String, String)],
    ) -> Result<Vec<Option<String>>> {
        const OP: &str = "dead retry";
        let mut call = self.scripts().dead_retry.call();
        call.keys(keys.streams())
            .key(keys.dead())
            .arg(duration_ms(STATUS_GRACE))
            .arg(entries.len());
        for (entry_id, job_id) in entries {
            let valid = crate::keys::validate_name("job id", job_id).is_ok();
            let key = call.status_index(keys, job_id, valid);
            call.arg(entry_id).arg(key);
        }
        let mut conn = self.conn().await?;
        let reply: Value = call.invoke(&mut conn, OP).await?;
        reply::array(OP, reply)?
            .iter()
            .map(|v| match v {
                Value::Int(0) => Ok(None),
                other => reply::string(OP, other).map(Some),
            })
            .collect()
    }

    /// `lua/run_now.lua` for job `id`.
    pub(crate) async fn run_now(&self, keys: &Keys, id: &str) -> Result<RunNow> {
        const OP: &str = "run now";
        let mut conn = self.conn().await?;
        let reply: Value = self
            .scripts()
            .run_now
            .call()
            .keys(keys.streams())
            .key(keys.delayed())
            .key(keys.delayed_jobs())
            .key(keys.job(id))
            .arg(id)
            .invoke(&mut conn, OP)
            .await?;
        Ok(match reply {
            Value::Int(0) => RunNow::NotDelayed,
            Value::Int(-1) => RunNow::NoPayload,
            other => RunNow::Moved(reply::string(OP, &other)?),
        })
    }

    /// Deletes the dead entries added more than `older_than` ago by Redis's clock (one
    /// `XTRIM MINID`); returns how many.
    pub(crate) async fn purge_dead(&self, keys: &Keys, older_than: Duration) -> Result<u64> {
        let now_ms = self.redis_time_ms().await?;
        let cutoff = now_ms.saturating_sub(duration_ms(older_than));
        let mut conn = self.conn().await?;
        redis::cmd("XTRIM")
            .arg(keys.dead())
            .arg("MINID")
            .arg(format!("{cutoff}-0"))
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("purge dead"))
    }

    /// Sets the pause flag (its value: Redis time in ms). Returns false when it was set already.
    pub(crate) async fn pause(&self, keys: &Keys) -> Result<bool> {
        let now_ms = self.redis_time_ms().await?;
        let mut conn = self.conn().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(keys.paused())
            .arg(now_ms)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("pause"))?;
        Ok(set.is_some())
    }

    /// Removes the pause flag. Returns false when the group was not paused.
    pub(crate) async fn resume(&self, keys: &Keys) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n: u64 = redis::cmd("DEL")
            .arg(keys.paused())
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("resume"))?;
        Ok(n > 0)
    }
}
