//! `job`: where one job is now, with its attempts, last error and result.

use super::Admin;
use super::fields::{JobFields, is_entry_id, unpack_delayed};
use crate::error::{Error, Result};
use crate::job::status::field as record;
use crate::job::{Progress, dead, field, state};
use crate::keys::{Keys, validate_name};
use crate::priority::Priority;
use crate::time::entry_ms;
use serde::Serialize;
use std::collections::BTreeMap;

/// Most entries read from one stream while looking for a job id.
pub(crate) const SEARCH_LIMIT: usize = 100_000;
/// Entries read per call while searching.
pub(crate) const SEARCH_PAGE: usize = 1000;

/// Where a job is and what is known about it.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// The group.
    pub group: String,
    /// The job id.
    pub id: String,
    /// Where it is now.
    pub place: JobPlace,
    /// The task, when known.
    pub task: Option<String>,
    /// The attempt running, waiting or last run (1-based), when known.
    pub attempt: Option<u32>,
    /// The error of the last failed attempt, or why it is dead.
    pub last_error: Option<String>,
    /// The result (JSON, or `--exec` stdout) of a succeeded job that kept it.
    pub result: Option<String>,
    /// The arguments as JSON, when the job's fields were found (as far as they were kept, when
    /// the dead stream cut them).
    pub args: Option<String>,
    /// The size its args had, in bytes, when the dead stream kept only their first bytes.
    pub args_truncated_from: Option<u64>,
    /// Whether it has a status record (enqueued with keep_result).
    pub tracked: bool,
    /// Its headers (name → value), when its fields were found; empty when it has none.
    pub headers: BTreeMap<String, String>,
    /// The last progress its handler reported, kept a day after the last report.
    pub progress: Option<Progress>,
}

/// Where a job is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobPlace {
    /// In its priority stream, not delivered yet.
    Waiting {
        /// Its stream.
        priority: Priority,
        /// Its entry id.
        entry_id: String,
        /// How long it has waited in the stream, in ms.
        waiting_ms: u64,
    },
    /// Delivered to a consumer and not finished.
    Running {
        /// Its stream.
        priority: Priority,
        /// Its entry id.
        entry_id: String,
        /// The consumer holding it.
        consumer: String,
        /// Time since delivery or the last heartbeat, in ms.
        idle_ms: u64,
        /// Times delivered.
        deliveries: u64,
    },
    /// Waiting for a time in the delayed set.
    Delayed {
        /// Due time in ms since the epoch.
        due_ms: u64,
        /// Its priority once due.
        priority: Option<Priority>,
    },
    /// In the dead stream.
    Dead {
        /// Its entry id in the dead stream (`None` when only the status record is left).
        entry_id: Option<String>,
        /// Why it will not be tried again.
        reason: String,
        /// When it died, in ms since the epoch.
        dead_ms: Option<u64>,
    },
    /// Finished successfully (known from its status record).
    Succeeded {
        /// When it finished, in ms since the epoch.
        finished_ms: Option<u64>,
    },
}

impl JobPlace {
    /// One word: waiting, running, delayed, dead, succeeded.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobPlace::Waiting { .. } => "waiting",
            JobPlace::Running { .. } => "running",
            JobPlace::Delayed { .. } => "delayed",
            JobPlace::Dead { .. } => "dead",
            JobPlace::Succeeded { .. } => "succeeded",
        }
    }
}

impl Admin {
    /// Finds job `id` in `group`: its status record if it has one, then the delayed set, the
    /// priority streams (with their pending lists) and the dead stream. Stream searches read
    /// at most 100,000 entries per stream. `id` may also be a stream entry id.
    /// [`Error::UnknownJob`] when it is nowhere.
    pub async fn job(&self, group: &str, id: &str) -> Result<JobReport> {
        let keys = self.existing(group).await?;
        if !is_entry_id(id) {
            validate_name("job id", id)?;
        }
        // A job typed into redis-cli without an `id` field has its entry id as job id, so an
        // entry id may name a status record too.
        let status = self.broker.job_status(&keys, id).await?;
        let progress = self.broker.job_progress(&keys, id).await?;
        let text = |name: &str| {
            status
                .as_ref()
                .and_then(|s| s.fields.get(name))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let mut report = JobReport {
            group: group.to_string(),
            id: id.to_string(),
            place: JobPlace::Succeeded { finished_ms: None },
            task: text(record::TASK),
            attempt: text(record::ATTEMPT).and_then(|a| a.parse().ok()),
            last_error: text(record::LAST_ERROR),
            result: None,
            args: None,
            args_truncated_from: None,
            tracked: status.is_some(),
            headers: BTreeMap::new(),
            progress,
        };
        if text(record::STATE).as_deref() == Some(state::SUCCEEDED) {
            report.place = JobPlace::Succeeded {
                finished_ms: text(record::FINISHED_MS).and_then(|v| v.parse().ok()),
            };
            report.result = text(record::RESULT);
            return Ok(report);
        }
        let mut searched = Vec::new();
        if let Some((place, fields)) = self.find(&keys, id, &mut searched).await? {
            report.place = place;
            report.task = fields.task().or(report.task);
            report.args = fields.args_json();
            report.args_truncated_from = fields.args_truncated_from();
            report.headers = fields.headers();
            report.attempt = Some(fields.attempt());
            if let Some(e) = fields.text(field::LAST_ERROR) {
                report.last_error = Some(e);
            }
            if let JobPlace::Dead { reason, .. } = &report.place {
                report.last_error = Some(reason.clone());
            }
            return Ok(report);
        }
        if text(record::STATE).as_deref() == Some(state::DEAD) {
            report.place = JobPlace::Dead {
                entry_id: None,
                reason: text(record::LAST_ERROR).unwrap_or_default(),
                dead_ms: text(record::FINISHED_MS).and_then(|v| v.parse().ok()),
            };
            return Ok(report);
        }
        Err(Error::UnknownJob {
            group: group.to_string(),
            id: id.to_string(),
            searched: format!(
                "not waiting, running, delayed or dead (searched {}); a job that succeeded leaves no trace unless it was enqueued with keep_result",
                searched.join(", ")
            ),
        })
    }

    /// Looks for `id` in the delayed set, the streams and the dead stream, in that order.
    async fn find(
        &self,
        keys: &Keys,
        id: &str,
        searched: &mut Vec<String>,
    ) -> Result<Option<(JobPlace, JobFields)>> {
        if let Some((due_ms, packed)) = self.broker.delayed_job(keys, id).await? {
            let unpacked = packed.as_deref().and_then(unpack_delayed);
            let priority = unpacked.as_ref().map(|(p, _)| *p);
            let fields = unpacked.map(|(_, f)| f).unwrap_or_default();
            return Ok(Some((JobPlace::Delayed { due_ms, priority }, fields)));
        }
        searched.push("the delayed set".into());
        for priority in Priority::ALL {
            let stream = keys.stream(priority);
            let Some((entry_id, fields)) = self.search(stream, id, searched).await? else {
                continue;
            };
            let place = match self.broker.pending_entry(keys, priority, &entry_id).await? {
                Some((consumer, idle_ms, deliveries)) => JobPlace::Running {
                    priority,
                    entry_id,
                    consumer,
                    idle_ms,
                    deliveries,
                },
                None => {
                    let now = self.broker.redis_time_ms().await?;
                    JobPlace::Waiting {
                        priority,
                        waiting_ms: entry_ms(&entry_id).map_or(0, |ms| now.saturating_sub(ms)),
                        entry_id,
                    }
                }
            };
            return Ok(Some((place, fields)));
        }
        if let Some((entry_id, fields)) = self.search(&keys.dead(), id, searched).await? {
            let place = JobPlace::Dead {
                reason: fields.text(dead::REASON).unwrap_or_default(),
                dead_ms: fields.number(dead::DEAD_MS),
                entry_id: Some(entry_id),
            };
            return Ok(Some((place, fields)));
        }
        Ok(None)
    }

    /// Finds the entry of stream `key` whose job id (or entry id) is `id`: newest first, at
    /// most [`SEARCH_LIMIT`] entries. Records what it searched in `searched`.
    pub(crate) async fn search(
        &self,
        key: &str,
        id: &str,
        searched: &mut Vec<String>,
    ) -> Result<Option<(String, JobFields)>> {
        if is_entry_id(id)
            && let Some(fields) = self.broker.entry(key, id).await?
        {
            return Ok(Some((id.to_string(), JobFields::new(fields))));
        }
        let mut after: Option<String> = None;
        let mut seen = 0;
        loop {
            let page = self
                .broker
                .range(key, after.as_deref(), SEARCH_PAGE, true)
                .await?;
            let last = page.last().map(|(eid, _)| eid.clone());
            for (entry_id, fields) in page {
                seen += 1;
                let fields = JobFields::new(fields);
                if fields.job_id(&entry_id) == id {
                    return Ok(Some((entry_id, fields)));
                }
            }
            match last {
                Some(last) if seen < SEARCH_LIMIT => after = Some(last),
                Some(_) => {
                    searched.push(format!("the newest {seen} entries of {key}"));
                    return Ok(None);
                }
                None => {
                    searched.push(key.to_string());
                    return Ok(None);
                }
            }
        }
    }
}
