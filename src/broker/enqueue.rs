//! Enqueue: one job, many jobs in one round trip, or many jobs all-or-none.

use super::{Broker, reply, track_key};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::keys::Keys;
use crate::time::duration_ms;
use deadpool_redis::redis::{self, Pipeline, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Jobs per script call when a large batch need not be atomic: bounds how long one call
/// holds the Redis event loop.
const CHUNK: usize = 1000;

/// How long a tracked job's status outlives its last change while it is not finished yet.
pub(crate) const STATUS_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What became of one job handed to [`Broker::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Stored in its stream or in the delayed set.
    Added,
    /// Not stored: a job holding the same uniqueness lock is there, with this id.
    Duplicate(String),
    /// Not stored: the schedule's tick was already taken by another scheduler.
    TickTaken,
    /// Not stored, as asked: the missed tick is recorded as handled.
    TickSkipped,
}

impl Enqueued {
    fn parse(op: &'static str, value: &Value) -> Result<Enqueued> {
        let Value::Array(items) = value else {
            // An entry id, or "delayed".
            reply::string(op, value)?;
            return Ok(Enqueued::Added);
        };
        match items.as_slice() {
            [kind, holder] if reply::string(op, kind)? == "duplicate" => {
                Ok(Enqueued::Duplicate(reply::string(op, holder)?))
            }
            [kind] => match reply::string(op, kind)?.as_str() {
                "tick_taken" => Ok(Enqueued::TickTaken),
                "tick_skipped" => Ok(Enqueued::TickSkipped),
                _ => Err(reply::unexpected(op, value)),
            },
            _ => Err(reply::unexpected(op, value)),
        }
    }
}

impl Broker {
    /// Submits `jobs` in one round trip and says, per job, whether it was stored. With
    /// `atomic`, either all are stored or none is (one script per group inside MULTI/EXEC);
    /// otherwise each group's jobs are stored in chunks of [`CHUNK`].
    pub(crate) async fn enqueue(&self, jobs: &[Job], atomic: bool) -> Result<Vec<Enqueued>> {
        const OP: &str = "enqueue";
        if let [job] = jobs {
            return Ok(vec![self.enqueue_one(job).await?]);
        }
        let mut by_group: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, job) in jobs.iter().enumerate() {
            by_group.entry(job.group.as_str()).or_default().push(i);
        }
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        // Per script call in the pipeline, the indices of its jobs, in order.
        let mut calls: Vec<Vec<usize>> = Vec::new();
        for indices in by_group.values() {
            let keys = Keys::new(&jobs[indices[0]].group);
            let chunk_len = if atomic { indices.len() } else { CHUNK };
            for chunk in indices.chunks(chunk_len) {
                if let Some(scripted) = self.add_chunk(&mut pipe, &keys, jobs, chunk) {
                    calls.push(scripted);
                }
            }
        }
        let mut conn = self.conn().await?;
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        let mut out = vec![Enqueued::Added; jobs.len()];
        for (call, reply) in calls.iter().zip(replies) {
            let per_job = reply::array(OP, reply)?;
            for (&i, value) in call.iter().zip(&per_job) {
                out[i] = Enqueued::parse(OP, value)?;
            }
        }
        Ok(out)
    }

    async fn enqueue_one(&self, job: &Job) -> Result<Enqueued> {
        const OP: &str = "enqueue";
        let keys = Keys::new(&job.group);
        let mut conn = self.conn().await?;
        if is_plain(job) {
            xadd(&keys, job)
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis(OP))?;
            return Ok(Enqueued::Added);
        }
        let (script_keys, args) = enqueue_args(&keys, &[job]);
        let mut call = self.scripts().enqueue.script().prepare_invoke();
        call.key(script_keys).arg(args);
        let reply: Value = call
            .invoke_async(&mut conn)
            .await
            .map_err(Error::redis(OP))?;
        match reply::array(OP, reply)?.first() {
            Some(value) => Enqueued::parse(OP, value),
            None => Err(Error::Protocol {
                op: OP,
                detail: "no reply for the job".into(),
            }),
        }
    }

    /// Adds one chunk of one group: plain jobs as XADDs (replies ignored), the rest as one
    /// script call, whose job indices are returned.
    fn add_chunk(
        &self,
        pipe: &mut Pipeline,
        keys: &Keys,
        jobs: &[Job],
        chunk: &[usize],
    ) -> Option<Vec<usize>> {
        let (plain, scripted): (Vec<usize>, Vec<usize>) =
            chunk.iter().partition(|&&i| is_plain(&jobs[i]));
        for i in plain {
            pipe.add_command(xadd(keys, &jobs[i])).ignore();
        }
        if scripted.is_empty() {
            return None;
        }
        let batch: Vec<&Job> = scripted.iter().map(|&i| &jobs[i]).collect();
        let (script_keys, args) = enqueue_args(keys, &batch);
        pipe.add_command(self.scripts().enqueue.eval(&script_keys, args));
        Some(scripted)
    }
}

/// A job that needs no script: due now, not tracked, not unique and not a schedule's tick, so
/// one XADD is the whole move.
fn is_plain(job: &Job) -> bool {
    job.due_ms() == 0 && job.keep_result.is_none() && !is_unique(job) && job.tick.is_none()
}

fn is_unique(job: &Job) -> bool {
    job.unique_key.is_some() && job.unique_ttl.is_some()
}

fn xadd(keys: &Keys, job: &Job) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.stream(job.priority)).arg("*");
    for (name, value) in job.fields() {
        cmd.arg(name).arg(&*value);
    }
    cmd
}

/// KEYS and ARGV of `lua/enqueue.lua` for `jobs` (all of one group).
fn enqueue_args(keys: &Keys, jobs: &[&Job]) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut script_keys: Vec<String> = keys.streams().to_vec();
    script_keys.push(keys.delayed());
    script_keys.push(keys.delayed_jobs());
    let mut args: Vec<Vec<u8>> = vec![
        keys.wake_channel().into_bytes(),
        jobs.len().to_string().into_bytes(),
    ];
    let mut conditions: Vec<[Vec<u8>; 4]> = Vec::new();
    let num = |n: u64| n.to_string().into_bytes();
    for (j, job) in jobs.iter().enumerate() {
        let key_index = track_key(
            keys,
            &mut script_keys,
            job.id.as_str(),
            job.keep_result.is_some(),
        );
        let ttl = job.keep_result.map_or(0, |k| duration_ms(k + STATUS_GRACE));
        let fields = job.fields();
        args.push(job.priority.index().to_string().into_bytes());
        args.push(job.due_ms().to_string().into_bytes());
        args.push(job.id.as_str().as_bytes().to_vec());
        args.push(key_index.to_string().into_bytes());
        args.push(ttl.to_string().into_bytes());
        args.push(fields.len().to_string().into_bytes());
        for (name, value) in fields {
            args.push(name.as_bytes().to_vec());
            args.push(value.into_owned());
        }
        let job_number = num(j as u64 + 1);
        if let Some(tick) = &job.tick {
            script_keys.push(keys.schedule(&tick.schedule));
            let kind: &[u8] = if tick.run { b"tick" } else { b"tick_skip" };
            conditions.push([
                job_number.clone(),
                kind.to_vec(),
                num(script_keys.len() as u64),
                num(tick.at_ms),
            ]);
        }
        if let (Some(key), Some(ttl)) = (&job.unique_key, job.unique_ttl) {
            script_keys.push(keys.unique(key));
            conditions.push([
                job_number,
                b"unique".to_vec(),
                num(script_keys.len() as u64),
                num(duration_ms(ttl).max(1)),
            ]);
        }
    }
    if !conditions.is_empty() {
        args.push(num(conditions.len() as u64));
        args.extend(conditions.into_iter().flatten());
    }
    (script_keys, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Tick;
    use crate::keys::GroupName;

    #[test]
    fn conditions_follow_the_records_and_point_into_keys() {
        let keys = Keys::new(&GroupName::new("g").unwrap());
        let plain = Job::from_json("g", "t", "{}").unwrap();
        let mut tick = Job::from_json("g", "t", "{}")
            .unwrap()
            .unique_key("k")
            .unique_for(Duration::from_secs(2));
        tick.tick = Some(Tick {
            schedule: "nightly".into(),
            at_ms: 1_000,
            run: true,
        });
        let (script_keys, args) = enqueue_args(&keys, &[&plain, &tick]);
        assert_eq!(
            script_keys[5..],
            [
                "streamworker:{g}:schedule:nightly".to_string(),
                "streamworker:{g}:unique:k".to_string()
            ]
        );
        let text: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let tail = &text[text.len() - 9..];
        assert_eq!(
            tail,
            ["2", "2", "tick", "6", "1000", "2", "unique", "7", "2000"]
        );
        assert!(is_plain(&plain));
        assert!(!is_plain(&tick));
    }
}
