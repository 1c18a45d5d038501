//! Progress reports of running jobs: written under the job's lease, read by the status API and
//! `streamworker job ID`.

use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::job::progress::{self, PROGRESS_TTL, Progress};
use crate::keys::Keys;
use crate::priority::Priority;
use crate::time::duration_ms;
use std::collections::HashMap;

/// Where a running job reports its progress: its group, entry and the consumer running it.
#[derive(Debug, Clone)]
pub(crate) struct ProgressTarget {
    pub(crate) keys: Keys,
    pub(crate) priority: Priority,
    pub(crate) entry_id: String,
    pub(crate) job_id: String,
    pub(crate) consumer: String,
}

impl Broker {
    /// Records `percent` and `message` for the job of `target` while `target.consumer` still
    /// owns its entry (`lua/progress.lua`); returns whether it was recorded.
    pub(crate) async fn report_progress(
        &self,
        target: &ProgressTarget,
        percent: u8,
        message: &str,
    ) -> Result<bool> {
        const OP: &str = "progress";
        let keys = &target.keys;
        let mut conn = self.conn().await?;
        let mut call = self.scripts().progress.call();
        call.key(keys.stream(target.priority))
            .key(keys.progress(&target.job_id))
            .arg(keys.group().as_str())
            .arg(&target.consumer)
            .arg(&target.entry_id)
            .arg(percent.min(100))
            .arg(progress::bounded(message))
            .arg(duration_ms(PROGRESS_TTL));
        let value = call.invoke(&mut conn, OP).await?;
        Ok(reply::int(OP, &value)? == 1)
    }

    /// The last progress reported for job `id` of the group, if any is kept.
    pub(crate) async fn job_progress(&self, keys: &Keys, id: &str) -> Result<Option<Progress>> {
        let mut conn = self.conn().await?;
        let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(keys.progress(id))
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("progress"))?;
        Ok(Progress::from_fields(&fields))
    }
}
