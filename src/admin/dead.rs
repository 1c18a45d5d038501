//! `dead`: list, show, re-drive and purge the jobs that will not be tried again.

use super::Admin;
use super::fields::{JobFields, entry_order};
use crate::error::{Error, Result};
use crate::job::dead;
use crate::keys::Keys;
use crate::priority::Priority;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Dead entries moved per script call by [`Admin::dead_retry_all`].
const RETRY_BATCH: usize = 100;

/// One job in the dead stream.
#[derive(Debug, Clone, Serialize)]
pub struct DeadJob {
    /// Its entry id in the dead stream (the time it died).
    pub entry_id: String,
    /// The job id.
    pub job_id: String,
    /// The task, when the entry has one.
    pub task: Option<String>,
    /// The priority stream it came from and goes back to.
    pub priority: Option<Priority>,
    /// The attempt it died on.
    pub attempt: u32,
    /// Why it will not be tried again.
    pub reason: String,
    /// When it died, in ms since the epoch.
    pub dead_ms: Option<u64>,
    /// Its arguments as JSON, when they decode (as far as they were kept, when cut).
    pub args: Option<String>,
    /// The size its args had, in bytes, when they were too large to keep whole: the dead
    /// stream holds only their first bytes, and the job cannot be re-driven.
    pub args_truncated_from: Option<u64>,
    /// Every other field of the entry.
    pub fields: BTreeMap<String, String>,
}

impl DeadJob {
    fn new(entry_id: String, fields: JobFields) -> DeadJob {
        DeadJob {
            job_id: fields.job_id(&entry_id),
            task: fields.task(),
            priority: fields.text(dead::PRIORITY).and_then(|p| p.parse().ok()),
            attempt: fields.attempt(),
            reason: fields.text(dead::REASON).unwrap_or_default(),
            dead_ms: fields.number(dead::DEAD_MS),
            args: fields.args_json(),
            args_truncated_from: fields.args_truncated_from(),
            fields: fields.others(),
            entry_id,
        }
    }
}

/// A dead job sent back to its priority stream.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Redriven {
    /// The job id.
    pub job_id: String,
    /// The task, when the entry has one.
    pub task: Option<String>,
    /// Its former entry id in the dead stream.
    pub dead_entry_id: String,
    /// Its new entry id in its priority stream.
    pub entry_id: String,
}

/// Why a job whose args the dead stream cut cannot be re-driven, and what to do.
fn truncated_reason(size: u64) -> String {
    format!(
        "its args ({size} bytes) were over the payload limit, so the dead stream kept only their first bytes; enqueue the job again with its full args (`dead show` prints what was kept), then `dead purge` or leave it to the retention"
    )
}

impl Admin {
    /// The newest `limit` dead jobs of `group`, newest first.
    pub async fn dead_list(&self, group: &str, limit: usize) -> Result<Vec<DeadJob>> {
        let keys = self.existing(group).await?;
        let entries = self.broker.range(&keys.dead(), None, limit, true).await?;
        Ok(entries
            .into_iter()
            .map(|(eid, f)| DeadJob::new(eid, JobFields::new(f)))
            .collect())
    }

    /// The dead job whose job id or dead entry id is `id`.
    pub async fn dead_show(&self, group: &str, id: &str) -> Result<DeadJob> {
        let keys = self.existing(group).await?;
        let (eid, fields) = self.find_dead(&keys, group, id).await?;
        Ok(DeadJob::new(eid, fields))
    }

    /// Sends the dead jobs `ids` (job ids or dead entry ids) back to their priority streams,
    /// each as a fresh first attempt, one atomic move per job (`lua/dead_retry.lua`). Every id
    /// is looked up before anything moves: an unknown id, or a job whose args were too large to
    /// keep whole ([`Error::CannotRetry`]), fails the call and moves nothing.
    pub async fn dead_retry(&self, group: &str, ids: &[String]) -> Result<Vec<Redriven>> {
        let keys = self.existing(group).await?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let (eid, fields) = self.find_dead(&keys, group, id).await?;
            if let Some(size) = fields.args_truncated_from() {
                return Err(Error::CannotRetry {
                    group: group.to_string(),
                    id: id.clone(),
                    reason: truncated_reason(size),
                });
            }
            found.push((eid, fields));
        }
        self.redrive(&keys, found).await
    }

    /// Sends every dead job of `group` (of task `task` only, when given) back to its priority
    /// stream. Only jobs dead when the call starts are moved; each move is atomic, in batches
    /// of 100. Jobs whose args were too large to keep whole stay in the dead stream.
    pub async fn dead_retry_all(&self, group: &str, task: Option<&str>) -> Result<Vec<Redriven>> {
        let keys = self.existing(group).await?;
        let dead = keys.dead();
        let Some((last, _)) = self
            .broker
            .range(&dead, None, 1, true)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Vec::new());
        };
        let last = entry_order(&last);
        let mut moved = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .broker
                .range(&dead, after.as_deref(), RETRY_BATCH, false)
                .await?;
            let full = page.len() == RETRY_BATCH;
            after = page.last().map(|(eid, _)| eid.clone());
            let mut past_last = false;
            let mut batch = Vec::new();
            for (eid, fields) in page {
                if entry_order(&eid) > last {
                    past_last = true;
                    break;
                }
                let fields = JobFields::new(fields);
                if fields.args_truncated_from().is_none()
                    && task.is_none_or(|t| fields.task().as_deref() == Some(t))
                {
                    batch.push((eid, fields));
                }
            }
            moved.extend(self.redrive(&keys, batch).await?);
            if past_last || !full {
                break;
            }
        }
        Ok(moved)
    }

    /// Deletes the dead jobs of `group` that died more than `older_than` ago (Redis clock),
    /// with one `XTRIM MINID`; returns how many. `Duration::ZERO` empties the dead stream.
    pub async fn dead_purge(&self, group: &str, older_than: Duration) -> Result<u64> {
        let keys = self.existing(group).await?;
        self.broker.purge_dead(&keys, older_than).await
    }

    async fn find_dead(&self, keys: &Keys, group: &str, id: &str) -> Result<(String, JobFields)> {
        let mut searched = Vec::new();
        self.search(&keys.dead(), id, &mut searched)
            .await?
            .ok_or_else(|| Error::UnknownJob {
                group: group.to_string(),
                id: id.to_string(),
                searched: format!(
                    "not in the dead stream (searched {}); `streamworker dead --group {group} list` shows what is there",
                    searched.join(", ")
                ),
            })
    }

    async fn redrive(&self, keys: &Keys, found: Vec<(String, JobFields)>) -> Result<Vec<Redriven>> {
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, String)> = found
            .iter()
            .map(|(eid, f)| (eid.clone(), f.job_id(eid)))
            .collect();
        let new_ids = self.broker.dead_retry(keys, &entries).await?;
        Ok(found
            .into_iter()
            .zip(new_ids)
            .filter_map(|((eid, fields), new)| {
                new.map(|entry_id| Redriven {
                    job_id: fields.job_id(&eid),
                    task: fields.task(),
                    dead_entry_id: eid,
                    entry_id,
                })
            })
            .collect())
    }
}
