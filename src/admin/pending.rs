//! `pending`: the entries workers hold (delivered, not finished), and which of them a reaper
//! takes next.

use super::Admin;
use super::fields::JobFields;
use crate::error::Result;
use crate::priority::Priority;
use crate::time::duration_ms;
use serde::Serialize;
use std::time::Duration;

/// Which pending entries to list.
#[derive(Debug, Clone)]
pub struct PendingQuery {
    /// Only this consumer's entries.
    pub consumer: Option<String>,
    /// Only entries idle at least this long.
    pub min_idle: Duration,
    /// At most this many entries, high priority first.
    pub limit: usize,
    /// Entries idle longer than this are the ones a reaper takes next (marked
    /// [`PendingEntry::next_to_reap`]). Default 30 s, the workers' default.
    pub visibility_timeout: Duration,
}

impl Default for PendingQuery {
    fn default() -> Self {
        PendingQuery {
            consumer: None,
            min_idle: Duration::ZERO,
            limit: 100,
            visibility_timeout: crate::worker::config::VISIBILITY_TIMEOUT,
        }
    }
}

/// One entry delivered to a consumer and not finished.
#[derive(Debug, Clone, Serialize)]
pub struct PendingEntry {
    /// The stream it is in.
    pub priority: Priority,
    /// Its stream entry id.
    pub entry_id: String,
    /// The job's id (the entry id for a job typed into redis-cli without `id`).
    pub job_id: String,
    /// The task, when the entry still has its fields.
    pub task: Option<String>,
    /// The attempt being run.
    pub attempt: u32,
    /// The consumer holding it.
    pub consumer: String,
    /// Time since it was delivered or last claimed (heartbeat), in ms.
    pub idle_ms: u64,
    /// How many times it was delivered: more than 1 means it was reclaimed before.
    pub deliveries: u64,
    /// Idle past the visibility timeout: the worker holding it is presumed dead, and a
    /// reaper takes it next.
    pub next_to_reap: bool,
    /// The entry was deleted while pending (XDEL or XTRIM by hand): its payload is gone.
    pub payload_missing: bool,
}

impl Admin {
    /// Pending entries of `group` matching `query`, high priority first and oldest first
    /// within a priority (the order a reaper scans them in).
    pub async fn pending(&self, group: &str, query: &PendingQuery) -> Result<Vec<PendingEntry>> {
        let keys = self.existing(group).await?;
        let mut out = Vec::new();
        for priority in Priority::ALL {
            let left = query.limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let rows = self
                .broker
                .pending(
                    &keys,
                    priority,
                    duration_ms(query.min_idle),
                    query.consumer.as_deref(),
                    left,
                )
                .await?;
            let visibility = duration_ms(query.visibility_timeout);
            out.extend(rows.into_iter().map(|r| {
                let fields = r.fields.clone().map(JobFields::new);
                PendingEntry {
                    priority: r.priority,
                    job_id: fields
                        .as_ref()
                        .map_or_else(|| r.entry_id.clone(), |f| f.job_id(&r.entry_id)),
                    task: fields.as_ref().and_then(JobFields::task),
                    attempt: fields.as_ref().map_or(1, JobFields::attempt),
                    next_to_reap: r.idle_ms > visibility,
                    payload_missing: r.fields.is_none(),
                    entry_id: r.entry_id,
                    consumer: r.consumer,
                    idle_ms: r.idle_ms,
                    deliveries: r.deliveries,
                }
            }));
        }
        Ok(out)
    }
}
