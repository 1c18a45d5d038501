//! `delayed`: the jobs waiting for a time (scheduled, or a retry's backoff), and running one
//! now.

use super::Admin;
use super::fields::{JobFields, unpack_delayed};
use crate::broker::RunNow;
use crate::error::{Error, Result};
use crate::job::field;
use crate::keys::validate_name;
use crate::priority::Priority;
use serde::Serialize;

/// One job in the delayed set.
#[derive(Debug, Clone, Serialize)]
pub struct DelayedJob {
    /// The job id.
    pub job_id: String,
    /// Due time in ms since the epoch.
    pub due_ms: u64,
    /// Time until due, in ms (negative: overdue, about to be promoted).
    pub due_in_ms: i64,
    /// The task, when the payload decodes.
    pub task: Option<String>,
    /// The priority stream it goes to when due.
    pub priority: Option<Priority>,
    /// The attempt it will run as: 1 for a scheduled job, more for a retry.
    pub attempt: u32,
    /// The error of the failed attempt, for a retry.
    pub last_error: Option<String>,
}

impl Admin {
    /// The first `limit` delayed jobs of `group`, earliest due first.
    pub async fn delayed_list(&self, group: &str, limit: usize) -> Result<Vec<DelayedJob>> {
        let keys = self.existing(group).await?;
        let now = self.broker.redis_time_ms().await? as i64;
        let page = self.broker.delayed_page(&keys, 0, limit).await?;
        Ok(page
            .into_iter()
            .map(|(job_id, due_ms, packed)| {
                let unpacked = packed.as_deref().and_then(unpack_delayed);
                let priority = unpacked.as_ref().map(|(p, _)| *p);
                let fields: JobFields = unpacked.map(|(_, f)| f).unwrap_or_default();
                DelayedJob {
                    job_id,
                    due_ms,
                    due_in_ms: due_ms as i64 - now,
                    task: fields.task(),
                    priority,
                    attempt: fields.attempt(),
                    last_error: fields.text(field::LAST_ERROR),
                }
            })
            .collect())
    }

    /// Moves delayed job `id` into its priority stream now, in one atomic move
    /// (`lua/run_now.lua`); returns its new entry id.
    pub async fn delayed_run_now(&self, group: &str, id: &str) -> Result<String> {
        let keys = self.existing(group).await?;
        validate_name("job id", id)?;
        let unknown = |searched: &str| Error::UnknownJob {
            group: group.to_string(),
            id: id.to_string(),
            searched: searched.to_string(),
        };
        match self.broker.run_now(&keys, id).await? {
            RunNow::Moved(entry_id) => Ok(entry_id),
            RunNow::NotDelayed => Err(unknown(&format!(
                "not in the delayed set (already due and promoted, or never delayed); `streamworker job {id} --group {group}` says where it is"
            ))),
            RunNow::NoPayload => Err(unknown(
                "the delayed set named it but its payload was missing; the stray entry was removed",
            )),
        }
    }
}
