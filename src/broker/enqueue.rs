//! Enqueue: one job, many jobs in one round trip, or many jobs all-or-none.

use super::scripts::{Lua, ScriptCall};
use super::{Broker, reply};
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
        // On a cluster each group's keys live in the group's own slot, and one pipeline (or
        // one MULTI) reaches one slot: a batch is sent per group, and an atomic one cannot
        // span groups.
        let per_group = by_group.len() > 1 && self.is_cluster().await?;
        if per_group && atomic {
            let groups: Vec<&str> = by_group.keys().copied().collect();
            return Err(Error::NotOnCluster {
                what: format!("an atomic batch across groups ({})", groups.join(", ")),
                instead: "on a Redis Cluster each group lives in its own hash slot, and one transaction cannot span slots: send one atomic batch per group, or a batch that need not be atomic".into(),
            });
        }
        let mut pipelines: Vec<(Pipeline, Vec<Vec<usize>>)> = Vec::new();
        for (n, indices) in by_group.values().enumerate() {
            if n == 0 || per_group {
                let mut pipe = redis::pipe();
                if atomic {
                    pipe.atomic();
                }
                pipelines.push((pipe, Vec::new()));
            }
            let (pipe, calls) = pipelines.last_mut().expect("a pipeline");
            let keys = Keys::new(&jobs[indices[0]].group);
            let chunk_len = if atomic { indices.len() } else { CHUNK };
            for chunk in indices.chunks(chunk_len) {
                // Per script call in the pipeline, the indices of its jobs, in order.
                if let Some(scripted) = self.add_chunk(pipe, &keys, jobs, chunk) {
                    calls.push(scripted);
                }
            }
        }
        let sent = pipelines.iter().map(|(pipe, calls)| async move {
            let mut conn = self.conn().await?;
            let replies: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(Error::redis(OP))?;
            Ok::<_, Error>(calls.iter().zip(replies))
        });
        let mut out = vec![Enqueued::Added; jobs.len()];
        for replies in futures_util::future::join_all(sent).await {
            for (call, reply) in replies? {
                let per_job = reply::array(OP, reply)?;
                for (&i, value) in call.iter().zip(&per_job) {
                    out[i] = Enqueued::parse(OP, value)?;
                }
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
        let reply: Value = enqueue_call(&self.scripts().enqueue, &keys, &[job])
            .invoke(&mut conn, OP)
            .await?;
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
        pipe.add_command(enqueue_call(&self.scripts().enqueue, keys, &batch).eval());
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

/// A call of `lua/enqueue.lua` (`lua`) for `jobs` (all of one group).
fn enqueue_call<'a>(lua: &'a Lua, keys: &Keys, jobs: &[&Job]) -> ScriptCall<'a> {
    let mut call = lua.call();
    call.keys(keys.streams())
        .key(keys.delayed())
        .key(keys.delayed_jobs())
        .arg(keys.wake_channel())
        .arg(jobs.len());
    // Per condition: job number, kind, index into KEYS, number.
    let mut conditions: Vec<(usize, &str, usize, u64)> = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        let key_index = call.status_index(keys, job.id.as_str(), job.keep_result.is_some());
        let ttl = job.keep_result.map_or(0, |k| duration_ms(k + STATUS_GRACE));
        let fields = job.fields();
        call.arg(job.priority.index())
            .arg(job.due_ms())
            .arg(job.id.as_str())
            .arg(key_index)
            .arg(ttl)
            .arg(fields.len());
        for (name, value) in fields {
            call.arg(name).arg(&*value);
        }
        if let Some(tick) = &job.tick {
            let kind = if tick.run { "tick" } else { "tick_skip" };
            let index = call.key_index(keys.schedule(&tick.schedule));
            conditions.push((j + 1, kind, index, tick.at_ms));
        }
        if let (Some(key), Some(ttl)) = (&job.unique_key, job.unique_ttl) {
            let index = call.key_index(keys.unique(key));
            conditions.push((j + 1, "unique", index, duration_ms(ttl).max(1)));
        }
    }
    if !conditions.is_empty() {
        call.arg(conditions.len());
        for (j, kind, index, number) in conditions {
            call.arg(j).arg(kind).arg(index).arg(number);
        }
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::scripts::Scripts;
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
        let scripts = Scripts::new();
        let call = enqueue_call(&scripts.enqueue, &keys, &[&plain, &tick]);
        assert_eq!(
            call.written_keys()[5..],
            [
                b"streamworker:{g}:schedule:nightly".to_vec(),
                b"streamworker:{g}:unique:k".to_vec()
            ]
        );
        let text: Vec<String> = call
            .written_args()
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
