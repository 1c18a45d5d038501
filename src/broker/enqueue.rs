//! Enqueue: one job, many jobs in one round trip, or many jobs all-or-none.

use super::scripts::{Lua, ScriptCall};
use super::{Broker, reply};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::keys::{GroupName, Keys};
use crate::time::duration_ms;
use deadpool_redis::redis::{Cmd, Pipeline, Value};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::task::Poll;
use std::time::Duration;

/// Jobs per pipeline, and per script call, when a batch need not be atomic: bounds how long
/// one call holds the Redis event loop, and lets Redis store one chunk while the next is built.
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
    /// Not stored: the job was enqueued once, and its id was enqueued before.
    AlreadyStored,
}

impl Enqueued {
    pub(super) fn parse(op: &'static str, value: &Value) -> Result<Enqueued> {
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
                "enqueued_before" => Ok(Enqueued::AlreadyStored),
                _ => Err(reply::unexpected(op, value)),
            },
            _ => Err(reply::unexpected(op, value)),
        }
    }
}

/// Per script call in a pipeline: its place among the pipeline's replies, and its jobs'
/// indices in order.
type ScriptCalls = Vec<(usize, Vec<usize>)>;

impl Broker {
    /// Submits `jobs` in one round trip and says, per job, whether it was stored. With
    /// `atomic`, either all are stored or none is (one script per group inside MULTI/EXEC);
    /// otherwise each group's jobs are sent in pipelines of [`CHUNK`], each handed to the
    /// connection as soon as it is built (on an application's pool, one pipeline).
    pub(crate) async fn enqueue(&self, jobs: &[Job], atomic: bool) -> Result<Vec<Enqueued>> {
        const OP: &str = "enqueue";
        if let [job] = jobs {
            return Ok(vec![self.enqueue_one(job).await?]);
        }
        let groups = by_group(jobs);
        // On a cluster each group's keys live in the group's own slot, and one pipeline (or
        // one MULTI) reaches one slot: a batch is sent per group, and an atomic one cannot
        // span groups.
        let per_group = groups.len() > 1 && self.is_cluster().await?;
        if per_group && atomic {
            let names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
            return Err(Error::NotOnCluster {
                what: format!("an atomic batch across groups ({})", names.join(", ")),
                instead: "on a Redis Cluster each group lives in its own hash slot, and one transaction cannot span slots: send one atomic batch per group, or a batch that need not be atomic".into(),
            });
        }
        // Each pipeline: the chunks (a group's keys and job indices) it holds. On the shared
        // connection, pipelines sent one after another keep their order and overlap: Redis
        // stores one while the next is encoded. A pool's connections would each cost a
        // checkout and keep no order between them, so there a batch is one pipeline.
        let split = !atomic && self.endpoint.is_some();
        let mut pipelines: Vec<Vec<(Keys, &[usize])>> = Vec::new();
        for (group, indices) in &groups {
            let keys = Keys::new(group);
            if !split && (pipelines.is_empty() || per_group) {
                pipelines.push(Vec::new());
            }
            let chunk_len = if atomic { indices.len() } else { CHUNK };
            for chunk in indices.chunks(chunk_len) {
                if split {
                    pipelines.push(Vec::new());
                }
                let pipeline = pipelines.last_mut().expect("a pipeline");
                pipeline.push((keys.clone(), chunk));
            }
        }
        let mut sent = FuturesOrdered::new();
        let mut answered = Vec::with_capacity(pipelines.len());
        for chunks in pipelines {
            let len = chunks.iter().map(|(_, c)| c.len()).sum::<usize>() + chunks.len();
            let mut pipe = Pipeline::with_capacity(len);
            if atomic {
                pipe.atomic();
            }
            let mut calls = ScriptCalls::new();
            for (keys, chunk) in chunks {
                self.add_chunk(&mut pipe, &keys, jobs, chunk, &mut calls);
            }
            let mut conn = self.conn().await?;
            sent.push_back(async move {
                let mut replies: Vec<Value> = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(Error::redis(OP))?;
                // The XADDs' entry ids are not kept; each script call's reply is.
                let scripted: Vec<(Vec<usize>, Value)> = calls
                    .into_iter()
                    .map(|(at, indices)| {
                        let reply = replies.get_mut(at).map(std::mem::take);
                        (indices, reply.unwrap_or(Value::Nil))
                    })
                    .collect();
                Ok::<_, Error>(scripted)
            });
            // Polling hands the new pipeline to the connection, so that Redis stores it while
            // the next one is built, and drops the pipelines already answered, whose memory
            // the next one reuses.
            while let Poll::Ready(Some(done)) = futures_util::poll!(sent.next()) {
                answered.push(done);
            }
        }
        while let Some(done) = sent.next().await {
            answered.push(done);
        }
        let mut out = vec![Enqueued::Added; jobs.len()];
        let mut failed = None;
        for done in answered {
            match done {
                Ok(scripted) => {
                    for (indices, reply) in scripted {
                        let per_job = reply::array(OP, reply)?;
                        for (&i, value) in indices.iter().zip(&per_job) {
                            out[i] = Enqueued::parse(OP, value)?;
                        }
                    }
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    async fn enqueue_one(&self, job: &Job) -> Result<Enqueued> {
        const OP: &str = "enqueue";
        let keys = keys_of(&job.group);
        let mut conn = self.conn().await?;
        if is_plain(job) {
            xadd(keys.stream(job.priority), job)
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis(OP))?;
            return Ok(Enqueued::Added);
        }
        let reply: Value = enqueue_call(&self.scripts().enqueue, &keys, &[job], false)
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

    /// Adds one chunk of one group: plain jobs as XADDs, the rest as one script call, noted in
    /// `calls`.
    fn add_chunk(
        &self,
        pipe: &mut Pipeline,
        keys: &Keys,
        jobs: &[Job],
        chunk: &[usize],
        calls: &mut ScriptCalls,
    ) {
        let mut scripted = Vec::new();
        for &i in chunk {
            let job = &jobs[i];
            if is_plain(job) {
                pipe.add_command(xadd(keys.stream(job.priority), job));
            } else {
                scripted.push(i);
            }
        }
        if scripted.is_empty() {
            return;
        }
        let batch: Vec<&Job> = scripted.iter().map(|&i| &jobs[i]).collect();
        calls.push((pipe.len(), scripted));
        pipe.add_command(enqueue_call(&self.scripts().enqueue, keys, &batch, false).eval());
    }
}

/// The jobs' indices by group, groups in name order: one group's batch is checked once.
fn by_group(jobs: &[Job]) -> Vec<(&GroupName, Vec<usize>)> {
    let first = &jobs[0].group;
    if jobs.iter().all(|job| job.group == *first) {
        return vec![(first, (0..jobs.len()).collect())];
    }
    let mut groups: BTreeMap<&GroupName, Vec<usize>> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        groups.entry(&job.group).or_default().push(i);
    }
    groups.into_iter().collect()
}

/// The keys of `group`, kept for the last group this thread used: enqueueing one job at a
/// time to a group builds its key names once.
fn keys_of(group: &GroupName) -> Keys {
    thread_local! {
        static LAST: RefCell<Option<Keys>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(keys) if keys.group() == group => keys.clone(),
            _ => last.insert(Keys::new(group)).clone(),
        }
    })
}

/// A job that needs no script: due now, not tracked, not unique and not a schedule's tick, so
/// one XADD is the whole move.
fn is_plain(job: &Job) -> bool {
    job.due_ms() == 0
        && job.keep_result.is_none()
        && !is_unique(job)
        && job.tick.is_none()
        && job.once_ttl.is_none()
}

fn is_unique(job: &Job) -> bool {
    job.unique_key.is_some() && job.unique_ttl.is_some()
}

/// The XADD of a plain job to `stream`, its fields written straight into a buffer sized for
/// them (one allocation for the bytes, one for the argument ends).
fn xadd(stream: &str, job: &Job) -> Cmd {
    const HEAD: [&str; 3] = ["XADD", "", "*"];
    let (fields, bytes) = job.wire_size();
    let head = HEAD.iter().map(|a| a.len()).sum::<usize>() + stream.len();
    let mut cmd = Cmd::with_capacity(HEAD.len() + 2 * fields, head + bytes);
    cmd.arg(HEAD[0]).arg(stream).arg(HEAD[2]);
    job.write_fields(|name, value| {
        cmd.arg(name).arg(value);
    });
    cmd
}

/// A call of `lua/enqueue.lua` (`lua`) for `jobs` (all of one group). With `trailer_follows`
/// the conditions' count is written even when there is none, so a trailer can follow.
pub(super) fn enqueue_call<'a>(
    lua: &'a Lua,
    keys: &Keys,
    jobs: &[&Job],
    trailer_follows: bool,
) -> ScriptCall<'a> {
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
        call.arg(job.priority.index())
            .arg(job.due_ms())
            .arg(job.id.as_str())
            .arg(key_index)
            .arg(ttl)
            .arg(job.wire_size().0);
        job.write_fields(|name, value| {
            call.arg(name).arg(value);
        });
        if let Some(ttl) = job.once_ttl {
            let index = call.key_index(keys.once(job.id.as_str()));
            conditions.push((j + 1, "once", index, duration_ms(ttl).max(1)));
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
    if !conditions.is_empty() || trailer_follows {
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
        let call = enqueue_call(&scripts.enqueue, &keys, &[&plain, &tick], false);
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
