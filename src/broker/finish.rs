//! Finish: success, retry and dead for batches of jobs, and the hand-back at shutdown. Each is
//! one script call; each script checks that this consumer still owns every entry it touches.

use super::read::id_order;
use super::scripts::{Finishing, ScriptCall};
use super::{Broker, reply};
use crate::error::Result;
use crate::keys::Keys;
use crate::priority::Priority;
use crate::time::duration_ms;
use deadpool_redis::redis::Value;
use std::time::Duration;

use super::enqueue::STATUS_GRACE;

/// A delivered stream entry and the id of the job it carries.
#[derive(Debug, Clone)]
pub(crate) struct EntryRef {
    pub(crate) priority: Priority,
    pub(crate) entry_id: String,
    pub(crate) job_id: String,
    /// The uniqueness key the job holds, released when it finishes for good.
    pub(crate) unique_key: Option<String>,
    /// The batch the job is a child of, counted there when it finishes for good.
    pub(crate) batch: Option<String>,
}

/// A job that succeeded.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub(crate) entry: EntryRef,
    /// Result TTL and bytes, for jobs that asked to keep their result.
    pub(crate) keep: Option<(Duration, Vec<u8>)>,
    /// The result of a chain step, handed to the next step.
    pub(crate) chain_result: Option<Vec<u8>>,
}

/// A failed job with attempts left.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    pub(crate) entry: EntryRef,
    pub(crate) next_attempt: u32,
    pub(crate) backoff: Duration,
    pub(crate) error: String,
    pub(crate) keep_result: Option<Duration>,
}

/// A job that will not be tried again.
#[derive(Debug, Clone)]
pub(crate) struct Dead {
    pub(crate) entry: EntryRef,
    pub(crate) reason: String,
    pub(crate) keep_result: Option<Duration>,
    /// Bytes of its args kept in the dead stream, for a job whose args are too large to keep
    /// whole; `None` keeps them all.
    pub(crate) args_kept: Option<usize>,
}

/// The dead stream's bounds, applied by `lua/finish_dead.lua` each time it adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeadRetention {
    /// Most entries kept; 0 = no bound.
    pub(crate) max_len: u64,
    /// Longest time an entry is kept; zero = no bound.
    pub(crate) max_age: Duration,
}

/// A running job that stopped because it was cancelled.
#[derive(Debug, Clone)]
pub(crate) struct Cancelled {
    pub(crate) entry: EntryRef,
    pub(crate) keep_result: Option<Duration>,
}

/// Per-entry replies of a finishing script: 1 done, 0 stale (not owned), -1 payload missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct FinishReport {
    /// Entry ids this consumer no longer owned: their finish was rejected.
    pub(crate) stale: Vec<String>,
    /// Entry ids whose payload had been deleted while pending.
    pub(crate) missing: Vec<String>,
}

fn report(
    op: &'static str,
    reply: Value,
    entry_ids: impl Iterator<Item = String>,
) -> Result<FinishReport> {
    let codes = reply::array(op, reply)?;
    let mut report = FinishReport::default();
    for (code, id) in codes.iter().zip(entry_ids) {
        match reply::int(op, code)? {
            0 => report.stale.push(id),
            -1 => report.missing.push(id),
            _ => {}
        }
    }
    Ok(report)
}

impl Broker {
    /// Sends finishing script call `call` and reads its per-entry replies, in the order of
    /// `entry_ids`.
    async fn run_finish(
        &self,
        op: &'static str,
        call: &ScriptCall<'_>,
        entry_ids: impl Iterator<Item = String>,
    ) -> Result<FinishReport> {
        let mut conn = self.conn().await?;
        let reply: Value = call.invoke(&mut conn, op).await?;
        report(op, reply, entry_ids)
    }

    /// `lua/finish_ok.lua` for `jobs`: per stream, the entry ids in ascending order and the
    /// range they span; then the tracked jobs' results.
    pub(crate) async fn finish_ok(
        &self,
        keys: &Keys,
        consumer: &str,
        jobs: &[Done],
    ) -> Result<FinishReport> {
        // Job numbers in the script follow this order: by priority, then by entry id.
        let mut order: Vec<(Priority, (u64, u64), usize)> = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.entry.priority, id_order(&j.entry.entry_id), i))
            .collect();
        order.sort_unstable();
        let mut f = Finishing::new(&self.scripts().finish_ok, keys, consumer, None);
        // The header's count is the number of streams, known once they are written.
        let mut streams = 0;
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            streams += 1;
            let (first, last) = (&jobs[run[0].2].entry, &jobs[run[run.len() - 1].2].entry);
            let (ms, seq) = run[run.len() - 1].1;
            f.call
                .arg(first.priority.index())
                .arg(run.len())
                .arg(&first.entry_id)
                .arg(&last.entry_id)
                .arg(format!("{ms}-{}", seq.saturating_add(1)));
            for &(_, _, i) in run {
                f.call.arg(&jobs[i].entry.entry_id);
            }
        }
        f.count(streams);
        let tracked_at = f.call.count_slot();
        let mut tracked = 0;
        for (number, &(_, _, i)) in order.iter().enumerate() {
            let Some((ttl, result)) = &jobs[i].keep else {
                continue;
            };
            tracked += 1;
            f.call.arg(number + 1);
            f.status(&jobs[i].entry.job_id, Some(*ttl)).arg(result);
        }
        f.call.fill_count(tracked_at, tracked);
        f.trailers(order.iter().map(|&(_, _, i)| {
            let job = &jobs[i];
            (&job.entry, job.chain_result.as_deref().unwrap_or_default())
        }));
        f.call.key(keys.stats());
        self.run_finish(
            "finish_ok",
            &f.call,
            order
                .iter()
                .map(|&(_, _, i)| jobs[i].entry.entry_id.clone()),
        )
        .await
    }

    /// `lua/finish_retry.lua` for `jobs`.
    pub(crate) async fn finish_retry(
        &self,
        keys: &Keys,
        consumer: &str,
        jobs: &[Retry],
    ) -> Result<FinishReport> {
        let channel = keys.wake_channel();
        let mut f = Finishing::new(&self.scripts().finish_retry, keys, consumer, Some(&channel));
        f.count(jobs.len());
        f.call.key(keys.delayed()).key(keys.delayed_jobs());
        for job in jobs {
            f.entry(&job.entry)
                .arg(&job.entry.job_id)
                .arg(job.next_attempt)
                .arg(duration_ms(job.backoff))
                .arg(&job.error);
            f.status(&job.entry.job_id, job.keep_result.map(|k| k + STATUS_GRACE));
        }
        f.call.key(keys.stats());
        self.run_finish(
            "finish_retry",
            &f.call,
            jobs.iter().map(|j| j.entry.entry_id.clone()),
        )
        .await
    }

    /// `lua/finish_dead.lua` for `jobs`, then `retention` applied to the dead stream.
    pub(crate) async fn finish_dead(
        &self,
        keys: &Keys,
        consumer: &str,
        retention: DeadRetention,
        jobs: &[Dead],
    ) -> Result<FinishReport> {
        let mut f = Finishing::new(&self.scripts().finish_dead, keys, consumer, None);
        f.count(jobs.len());
        f.call
            .arg(retention.max_len)
            .arg(duration_ms(retention.max_age));
        f.call.key(keys.dead()).key(keys.dead_retention());
        for job in jobs {
            f.entry(&job.entry).arg(&job.entry.job_id).arg(&job.reason);
            f.status(&job.entry.job_id, job.keep_result)
                .arg(job.args_kept.map_or(0, |n| n.max(1)));
        }
        f.trailers(jobs.iter().map(|j| (&j.entry, &[][..])));
        f.call.key(keys.stats());
        self.run_finish(
            "finish_dead",
            &f.call,
            jobs.iter().map(|j| j.entry.entry_id.clone()),
        )
        .await
    }

    /// `lua/finish_cancelled.lua` for `jobs`.
    pub(crate) async fn finish_cancelled(
        &self,
        keys: &Keys,
        consumer: &str,
        jobs: &[Cancelled],
    ) -> Result<FinishReport> {
        let mut f = Finishing::new(&self.scripts().finish_cancelled, keys, consumer, None);
        f.count(jobs.len());
        for job in jobs {
            f.entry(&job.entry);
            f.status(&job.entry.job_id, job.keep_result);
        }
        f.trailers(jobs.iter().map(|j| (&j.entry, &[][..])));
        self.run_finish(
            "finish_cancelled",
            &f.call,
            jobs.iter().map(|j| j.entry.entry_id.clone()),
        )
        .await
    }

    /// `lua/hand_back.lua` for `entries`: each entry with whether its job is tracked.
    pub(crate) async fn hand_back(
        &self,
        keys: &Keys,
        consumer: &str,
        entries: &[(EntryRef, bool)],
    ) -> Result<FinishReport> {
        let mut f = Finishing::new(&self.scripts().hand_back, keys, consumer, None);
        f.count(entries.len());
        for (e, tracked) in entries {
            f.entry(e).arg(&e.job_id);
            f.status_key(&e.job_id, *tracked);
        }
        self.run_finish(
            "hand_back",
            &f.call,
            entries.iter().map(|(e, _)| e.entry_id.clone()),
        )
        .await
    }
}
