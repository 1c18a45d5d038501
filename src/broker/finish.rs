//! Finish: success, retry and dead for batches of jobs, and the hand-back at shutdown. Each is
//! one script call; each script checks that this consumer still owns every entry it touches.

use super::read::id_order;
use super::{Broker, reply, track_key};
use crate::error::{Error, Result};
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
}

/// A job that succeeded.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub(crate) entry: EntryRef,
    /// Result TTL and bytes, for jobs that asked to keep their result.
    pub(crate) keep: Option<(Duration, Vec<u8>)>,
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
    /// Runs finishing script `lua` and reads its per-entry replies, in the order of
    /// `entry_ids`.
    async fn run_finish(
        &self,
        op: &'static str,
        lua: &crate::scripts::Lua,
        script_keys: Vec<String>,
        args: Vec<Vec<u8>>,
        entry_ids: impl Iterator<Item = String>,
    ) -> Result<FinishReport> {
        let mut conn = self.conn().await?;
        let mut call = lua.script().prepare_invoke();
        call.key(script_keys).arg(args);
        let reply = call
            .invoke_async(&mut conn)
            .await
            .map_err(Error::redis(op))?;
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
        let mut script_keys = keys.streams().to_vec();
        // The header's count is the number of streams, known once they are written.
        let mut args = header(keys, consumer, None, 0);
        let streams_at = args.len() - 1;
        let mut streams = 0;
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            streams += 1;
            let (first, last) = (&jobs[run[0].2].entry, &jobs[run[run.len() - 1].2].entry);
            let (ms, seq) = run[run.len() - 1].1;
            args.push(first.priority.index().to_string().into_bytes());
            args.push(run.len().to_string().into_bytes());
            args.push(first.entry_id.clone().into_bytes());
            args.push(last.entry_id.clone().into_bytes());
            args.push(format!("{ms}-{}", seq.saturating_add(1)).into_bytes());
            args.extend(
                run.iter()
                    .map(|&(_, _, i)| jobs[i].entry.entry_id.clone().into_bytes()),
            );
        }
        args[streams_at] = streams.to_string().into_bytes();
        let tracked_at = args.len();
        args.push(Vec::new());
        let mut tracked = 0;
        for (number, &(_, _, i)) in order.iter().enumerate() {
            let Some((ttl, result)) = &jobs[i].keep else {
                continue;
            };
            tracked += 1;
            let key = track_key(keys, &mut script_keys, &jobs[i].entry.job_id, true);
            args.push((number + 1).to_string().into_bytes());
            args.push(key.to_string().into_bytes());
            args.push(duration_ms(*ttl).max(1).to_string().into_bytes());
            args.push(result.clone());
        }
        args[tracked_at] = tracked.to_string().into_bytes();
        lock_trailer(
            keys,
            &mut script_keys,
            &mut args,
            order.iter().map(|&(_, _, i)| &jobs[i].entry),
        );
        script_keys.push(keys.stats());
        self.run_finish(
            "finish_ok",
            &self.scripts().finish_ok,
            script_keys,
            args,
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
        let mut script_keys = keys.streams().to_vec();
        script_keys.push(keys.delayed());
        script_keys.push(keys.delayed_jobs());
        let mut args = header(keys, consumer, Some(keys.wake_channel()), jobs.len());
        for job in jobs {
            let key = track_key(
                keys,
                &mut script_keys,
                &job.entry.job_id,
                job.keep_result.is_some(),
            );
            let ttl = job.keep_result.map_or(1, |k| duration_ms(k + STATUS_GRACE));
            args.push(job.entry.priority.index().to_string().into_bytes());
            args.push(job.entry.entry_id.clone().into_bytes());
            args.push(job.entry.job_id.clone().into_bytes());
            args.push(job.next_attempt.to_string().into_bytes());
            args.push(duration_ms(job.backoff).to_string().into_bytes());
            args.push(job.error.clone().into_bytes());
            args.push(key.to_string().into_bytes());
            args.push(ttl.to_string().into_bytes());
        }
        script_keys.push(keys.stats());
        self.run_finish(
            "finish_retry",
            &self.scripts().finish_retry,
            script_keys,
            args,
            jobs.iter().map(|j| j.entry.entry_id.clone()),
        )
        .await
    }

    /// `lua/finish_dead.lua` for `jobs`.
    pub(crate) async fn finish_dead(
        &self,
        keys: &Keys,
        consumer: &str,
        jobs: &[Dead],
    ) -> Result<FinishReport> {
        let mut script_keys = keys.streams().to_vec();
        script_keys.push(keys.dead());
        let mut args = header(keys, consumer, None, jobs.len());
        for job in jobs {
            let key = track_key(
                keys,
                &mut script_keys,
                &job.entry.job_id,
                job.keep_result.is_some(),
            );
            let ttl = job.keep_result.map_or(1, duration_ms);
            args.push(job.entry.priority.index().to_string().into_bytes());
            args.push(job.entry.entry_id.clone().into_bytes());
            args.push(job.entry.job_id.clone().into_bytes());
            args.push(job.reason.clone().into_bytes());
            args.push(key.to_string().into_bytes());
            args.push(ttl.max(1).to_string().into_bytes());
        }
        lock_trailer(
            keys,
            &mut script_keys,
            &mut args,
            jobs.iter().map(|j| &j.entry),
        );
        script_keys.push(keys.stats());
        self.run_finish(
            "finish_dead",
            &self.scripts().finish_dead,
            script_keys,
            args,
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
        let mut script_keys = keys.streams().to_vec();
        let mut args = header(keys, consumer, None, jobs.len());
        for job in jobs {
            let key = track_key(
                keys,
                &mut script_keys,
                &job.entry.job_id,
                job.keep_result.is_some(),
            );
            args.push(job.entry.priority.index().to_string().into_bytes());
            args.push(job.entry.entry_id.clone().into_bytes());
            args.push(key.to_string().into_bytes());
            args.push(
                job.keep_result
                    .map_or(1, duration_ms)
                    .max(1)
                    .to_string()
                    .into_bytes(),
            );
        }
        lock_trailer(
            keys,
            &mut script_keys,
            &mut args,
            jobs.iter().map(|j| &j.entry),
        );
        self.run_finish(
            "finish_cancelled",
            &self.scripts().finish_cancelled,
            script_keys,
            args,
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
        let mut script_keys = keys.streams().to_vec();
        let mut args = header(keys, consumer, None, entries.len());
        for (e, tracked) in entries {
            let key = track_key(keys, &mut script_keys, &e.job_id, *tracked);
            args.push(e.priority.index().to_string().into_bytes());
            args.push(e.entry_id.clone().into_bytes());
            args.push(e.job_id.clone().into_bytes());
            args.push(key.to_string().into_bytes());
        }
        self.run_finish(
            "hand_back",
            &self.scripts().hand_back,
            script_keys,
            args,
            entries.iter().map(|(e, _)| e.entry_id.clone()),
        )
        .await
    }
}

/// ARGV common to the finishing scripts: group, consumer, [wake channel,] job count.
fn header(keys: &Keys, consumer: &str, channel: Option<String>, n: usize) -> Vec<Vec<u8>> {
    let mut args = vec![
        keys.group().as_str().as_bytes().to_vec(),
        consumer.as_bytes().to_vec(),
    ];
    if let Some(channel) = channel {
        args.push(channel.into_bytes());
    }
    args.push(n.to_string().into_bytes());
    args
}

/// Appends the optional trailer of the finishing scripts that end a job for good: per job
/// holding a uniqueness lock, its number in the batch, the lock's index in KEYS and the job
/// id. Nothing is appended when no job holds a lock.
fn lock_trailer<'a>(
    keys: &Keys,
    script_keys: &mut Vec<String>,
    args: &mut Vec<Vec<u8>>,
    entries: impl Iterator<Item = &'a EntryRef>,
) {
    let mut triples = Vec::new();
    for (j, entry) in entries.enumerate() {
        if let Some(unique) = &entry.unique_key {
            script_keys.push(keys.unique(unique));
            triples.push((j + 1).to_string().into_bytes());
            triples.push(script_keys.len().to_string().into_bytes());
            triples.push(entry.job_id.clone().into_bytes());
        }
    }
    if !triples.is_empty() {
        args.push((triples.len() / 3).to_string().into_bytes());
        args.extend(triples);
    }
}
