//! `status`: the figures of a group at a glance.

use super::Admin;
use crate::broker::RawQueues;
use crate::error::Result;
use crate::priority::Priority;
use crate::time::entry_ms;
use serde::Serialize;
use std::collections::BTreeMap;

/// Width of one counter slot of the stats hash, in ms (10 s; see `lua/lib/count_outcome.lua`).
const SLOT_MS: u64 = 10_000;
/// Slots in the "last minute" window.
const MINUTE_SLOTS: u64 = 6;
/// Slots in the "last hour" window.
const HOUR_SLOTS: u64 = 360;

/// One group's state: its queues, consumers and recent outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// The group.
    pub group: String,
    /// Whether workers are told not to fetch (`streamworker pause`).
    pub paused: bool,
    /// When the pause began, in ms since the epoch (Redis clock).
    pub paused_since_ms: Option<u64>,
    /// Jobs waiting in the streams for a worker, all priorities.
    pub ready: u64,
    /// Jobs delivered to a worker and not finished (in flight), all priorities.
    pub pending: u64,
    /// Jobs waiting for a time (scheduled, or a retry's backoff).
    pub delayed: u64,
    /// Due time of the earliest delayed job, in ms since the epoch.
    pub next_due_ms: Option<u64>,
    /// Jobs in the dead stream.
    pub dead: u64,
    /// The dead stream's bounds, as the last worker that added to it applied them; `None`
    /// when no worker of this version has added to it yet.
    pub dead_retention: Option<Retention>,
    /// Age of the oldest job waiting for a worker, in ms (since it entered its stream).
    pub oldest_ready_age_ms: Option<u64>,
    /// Per priority, high first.
    pub queues: Vec<QueueStatus>,
    /// Consumers known to the group (live or not), by name.
    pub consumers: Vec<ConsumerStatus>,
    /// Outcomes in the last 60 s (counted in 10 s slots: the window is 50 to 60 s).
    pub last_minute: Rates,
    /// Outcomes in the last hour (counted in 10 s slots).
    pub last_hour: Rates,
    /// Redis's clock when the figures were read, in ms since the epoch.
    pub now_ms: u64,
}

/// The dead stream's bounds: each worker applies its own (`--dead-max-len`, `--dead-max-age`)
/// when it adds to the stream and records them, so these are the last ones applied.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Retention {
    /// Most jobs kept; 0 = no bound.
    pub max_len: u64,
    /// Longest time a job is kept, in ms; 0 = no bound.
    pub max_age_ms: u64,
}

/// One priority stream of a group.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// The stream's priority.
    pub priority: Priority,
    /// Entries not delivered yet.
    pub ready: u64,
    /// Entries delivered and not finished.
    pub pending: u64,
    /// Age of the oldest entry not delivered yet, in ms.
    pub oldest_ready_age_ms: Option<u64>,
}

/// One consumer (a worker process) of a group.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// The consumer name (`host-pid-random` by default).
    pub name: String,
    /// Entries it holds (in flight), all priorities.
    pub pending: u64,
    /// Time since it last read or claimed, in ms. A live idle worker reads about every
    /// second; a large value means the worker is gone or stuck.
    pub idle_ms: u64,
}

/// Outcome counts over a window, as the finishing scripts recorded them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Rates {
    /// Attempts finished, whatever the outcome: succeeded + retried + dead.
    pub processed: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed or could not run: retried + dead.
    pub failed: u64,
    /// Failed attempts scheduled for another try.
    pub retried: u64,
    /// Jobs moved to the dead stream.
    pub dead: u64,
}

impl Admin {
    /// The status of `group`; [`Error::UnknownGroup`](crate::Error::UnknownGroup) when Redis
    /// holds no key of it.
    pub async fn status(&self, group: &str) -> Result<GroupStatus> {
        let keys = self.existing(group).await?;
        let raw = self.broker.queues(&keys).await?;
        Ok(build(group, raw))
    }

    /// The status of every group found in Redis, by name.
    pub async fn status_all(&self) -> Result<Vec<GroupStatus>> {
        let mut all = Vec::new();
        for group in self.groups().await? {
            let raw = self.broker.queues(&crate::keys::Keys::new(&group)).await?;
            all.push(build(group.as_str(), raw));
        }
        Ok(all)
    }
}

fn build(group: &str, raw: RawQueues) -> GroupStatus {
    let now = raw.now_ms;
    let mut consumers: BTreeMap<String, ConsumerStatus> = BTreeMap::new();
    let mut queues = Vec::with_capacity(3);
    for s in &raw.streams {
        queues.push(QueueStatus {
            priority: s.priority,
            ready: s.ready(),
            pending: s.pending(),
            oldest_ready_age_ms: s
                .oldest_ready
                .as_deref()
                .and_then(entry_ms)
                .map(|ms| now.saturating_sub(ms)),
        });
        for (name, pending, idle_ms) in s.group.iter().flat_map(|g| g.consumers.iter()) {
            let c = consumers
                .entry(name.clone())
                .or_insert_with(|| ConsumerStatus {
                    name: name.clone(),
                    pending: 0,
                    idle_ms: *idle_ms,
                });
            c.pending += pending;
            c.idle_ms = c.idle_ms.min(*idle_ms);
        }
    }
    let (last_minute, last_hour) = rates(&raw.stats, now);
    GroupStatus {
        group: group.to_string(),
        paused: raw.paused.is_some(),
        paused_since_ms: raw.paused.as_deref().and_then(|v| v.parse().ok()),
        ready: queues.iter().map(|q| q.ready).sum(),
        pending: queues.iter().map(|q| q.pending).sum(),
        delayed: raw.delayed,
        next_due_ms: raw.next_due_ms,
        dead: raw.dead,
        dead_retention: retention(&raw.dead_retention),
        oldest_ready_age_ms: queues.iter().filter_map(|q| q.oldest_ready_age_ms).max(),
        queues,
        consumers: consumers.into_values().collect(),
        last_minute,
        last_hour,
        now_ms: now,
    }
}

/// The retention hash read as [`Retention`]; `None` when it is missing or not as written.
fn retention(hash: &std::collections::HashMap<String, String>) -> Option<Retention> {
    let number = |name: &str| hash.get(name)?.parse().ok();
    Some(Retention {
        max_len: number("max_len")?,
        max_age_ms: number("max_age_ms")?,
    })
}

/// Sums the stats hash's slots over the last minute and the last hour.
fn rates(stats: &std::collections::HashMap<String, i64>, now_ms: u64) -> (Rates, Rates) {
    let now_slot = now_ms / SLOT_MS;
    let mut minute = Rates::default();
    let mut hour = Rates::default();
    for (name, count) in stats {
        let Some((kind, slot)) = name.split_once(':') else {
            continue;
        };
        let (Ok(slot), Ok(count)) = (slot.parse::<u64>(), u64::try_from(*count)) else {
            continue;
        };
        let age = now_slot.saturating_sub(slot);
        for (window, slots) in [(&mut minute, MINUTE_SLOTS), (&mut hour, HOUR_SLOTS)] {
            if age < slots {
                match kind {
                    "ok" => window.succeeded += count,
                    "retry" => window.retried += count,
                    "dead" => window.dead += count,
                    _ => {}
                }
            }
        }
    }
    for r in [&mut minute, &mut hour] {
        r.failed = r.retried + r.dead;
        r.processed = r.succeeded + r.failed;
    }
    (minute, hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_sum_the_slots_inside_each_window() {
        let now = 1_000_000 * SLOT_MS + 1234;
        let slot = |age: u64| 1_000_000 - age;
        let stats = [
            (format!("ok:{}", slot(0)), 3),
            (format!("ok:{}", slot(5)), 2),
            (format!("ok:{}", slot(6)), 10),
            (format!("retry:{}", slot(1)), 4),
            (format!("dead:{}", slot(359)), 7),
            (format!("dead:{}", slot(360)), 100),
            ("junk".to_string(), 1),
        ]
        .into_iter()
        .collect();
        let (minute, hour) = rates(&stats, now);
        assert_eq!(
            minute,
            Rates {
                processed: 9,
                succeeded: 5,
                failed: 4,
                retried: 4,
                dead: 0
            }
        );
        assert_eq!(
            hour,
            Rates {
                processed: 26,
                succeeded: 15,
                failed: 11,
                retried: 4,
                dead: 7
            }
        );
    }
}
