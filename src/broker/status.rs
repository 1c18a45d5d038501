//! Status records of tracked jobs (those enqueued with `keep_result`).

use super::{Broker, EntryRef};
use crate::error::{Error, Result};
use crate::job::progress::Progress;
use crate::job::state;
use crate::job::status::field;
use crate::keys::Keys;
use crate::time::duration_ms;
use deadpool_redis::redis;
use std::collections::HashMap;
use std::time::Duration;

use super::enqueue::STATUS_GRACE;

/// A status hash as stored, plus the job's score in the delayed set if it is there.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawStatus {
    pub(crate) fields: HashMap<String, Vec<u8>>,
    pub(crate) delayed_until_ms: Option<u64>,
    /// The job's last progress report, if one is kept.
    pub(crate) progress: Option<Progress>,
}

impl Broker {
    /// Reads the status record of job `id`; `None` when there is none.
    pub(crate) async fn job_status(&self, keys: &Keys, id: &str) -> Result<Option<RawStatus>> {
        let mut conn = self.conn().await?;
        type Hash = HashMap<String, Vec<u8>>;
        let (fields, score, progress): (Hash, Option<f64>, Hash) = redis::pipe()
            .cmd("HGETALL")
            .arg(keys.job(id))
            .cmd("ZSCORE")
            .arg(keys.delayed())
            .arg(id)
            .cmd("HGETALL")
            .arg(keys.progress(id))
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("status"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(RawStatus {
            fields,
            delayed_until_ms: score.map(|s| s as u64),
            progress: Progress::from_fields(&progress),
        }))
    }

    /// Records in a tracked job's status that `consumer` started attempt `attempt` of the job
    /// in `entry` (whose entry id lets `cancel` find it at once).
    pub(crate) async fn mark_running(
        &self,
        keys: &Keys,
        entry: &EntryRef,
        consumer: &str,
        attempt: u32,
        keep_result: Duration,
    ) -> Result<()> {
        let id = entry.job_id.as_str();
        let key = keys.job(id);
        let mut conn = self.conn().await?;
        redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg(field::STATE)
            .arg(state::RUNNING)
            .arg(field::CONSUMER)
            .arg(consumer)
            .arg(field::ATTEMPT)
            .arg(attempt)
            .arg(field::ENTRY)
            .arg(&entry.entry_id)
            .arg(field::PRIORITY)
            .arg(entry.priority.index())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(duration_ms(keep_result + STATUS_GRACE))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::redis("mark running"))
    }
}
