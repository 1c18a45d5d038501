//! Enqueue: one job, many jobs in one round trip, or many jobs all-or-none.

use super::{Broker, track_key};
use crate::error::{Error, Result};
use crate::job::{Job, duration_ms};
use crate::keys::Keys;
use deadpool_redis::redis::{self, Pipeline};
use std::collections::BTreeMap;
use std::time::Duration;

/// Jobs per script call when a large batch need not be atomic: bounds how long one call
/// holds the Redis event loop.
const CHUNK: usize = 1000;

/// How long a tracked job's status outlives its last change while it is not finished yet.
pub(crate) const STATUS_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

impl Broker {
    /// Submits `jobs` in one round trip. With `atomic`, either all are stored or none is
    /// (one script per group inside MULTI/EXEC); otherwise each group's jobs are stored in
    /// chunks of [`CHUNK`].
    pub(crate) async fn enqueue(&self, jobs: &[Job], atomic: bool) -> Result<()> {
        if let [job] = jobs {
            return self.enqueue_one(job).await;
        }
        let mut by_group: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
        for job in jobs {
            by_group.entry(job.group.as_str()).or_default().push(job);
        }
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        for group_jobs in by_group.values() {
            let keys = Keys::new(&group_jobs[0].group);
            let chunk_len = if atomic { group_jobs.len() } else { CHUNK };
            for chunk in group_jobs.chunks(chunk_len) {
                self.add_chunk(&mut pipe, &keys, chunk);
            }
        }
        let mut conn = self.conn().await?;
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(Error::redis("enqueue"))
    }

    async fn enqueue_one(&self, job: &Job) -> Result<()> {
        let keys = Keys::new(&job.group);
        let mut conn = self.conn().await?;
        if is_plain(job) {
            xadd(&keys, job)
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("enqueue"))
        } else {
            let (script_keys, args) = enqueue_args(&keys, &[job]);
            let mut call = self.scripts().enqueue.script().prepare_invoke();
            call.key(script_keys).arg(args);
            call.invoke_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("enqueue"))
        }
    }

    /// Adds one chunk of one group: plain jobs as XADDs, the rest as one script call.
    fn add_chunk(&self, pipe: &mut Pipeline, keys: &Keys, chunk: &[&Job]) {
        let (plain, scripted): (Vec<&Job>, Vec<&Job>) = chunk.iter().partition(|j| is_plain(j));
        for job in plain {
            pipe.add_command(xadd(keys, job)).ignore();
        }
        if !scripted.is_empty() {
            let (script_keys, args) = enqueue_args(keys, &scripted);
            pipe.add_command(self.scripts().enqueue.eval(&script_keys, args))
                .ignore();
        }
    }
}

/// A job that needs no script: due now and not tracked, so one XADD is the whole move.
fn is_plain(job: &Job) -> bool {
    job.due_ms() == 0 && job.keep_result.is_none()
}

fn xadd(keys: &Keys, job: &Job) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(keys.stream(job.priority)).arg("*");
    for (name, value) in job.fields() {
        cmd.arg(name).arg(value);
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
    for job in jobs {
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
            args.push(value);
        }
    }
    (script_keys, args)
}
