//! A group served by worker processes of the project's own binary whose jobs all run
//! `job.sh`: it records each run as `JOB_ID WORKER_PID start|end` lines in `$OUT/runs`, so a
//! test can tell which worker ran what, and which runs were cut.

use super::deployment::Deployment;
use super::inspect::{pending_count, stream_entries, xlen, zcard};
use super::keys::{key, unique_group};
use super::process::WorkerProcess;
use super::server::RedisServer;
use super::wait::{WAIT, wait_until};
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;
use streamworker::{Client, Job, JobId};

/// The visibility timeout the workers of these tests run with.
pub const VISIBILITY: Duration = Duration::from_secs(1);

/// What each job runs, chosen by its task name:
/// - `sleep-S`: sleeps S seconds;
/// - `block`: runs until `$OUT/go` exists;
/// - `fail`: fails with a message on stderr;
/// - `crash`: SIGKILLs the worker running it, unless `$OUT/fixed` exists.
///
/// Its stdout (the job's result) is the pid of the worker that ran it.
const JOB_SH: &str = r#"echo "$STREAMWORKER_JOB_ID $PPID start" >> "$OUT/runs"
case "$STREAMWORKER_TASK" in
  sleep-*) sleep "${STREAMWORKER_TASK#sleep-}" ;;
  block) while [ -d "$OUT" ] && [ ! -e "$OUT/go" ]; do sleep 0.01; done ;;
  fail) echo "poison: the invoice cannot be parsed" >&2; exit 1 ;;
  crash) if [ ! -e "$OUT/fixed" ]; then kill -9 "$PPID"; sleep 5; fi ;;
esac
echo "$STREAMWORKER_JOB_ID $PPID end" >> "$OUT/runs"
echo "$PPID"
"#;

/// One test's scene: a private Redis (a server, or a cluster), a group, a directory the jobs
/// write to.
pub struct Scene<R: Deployment = RedisServer> {
    pub redis: R,
    pub group: String,
    out: tempfile::TempDir,
}

impl<R: Deployment> Scene<R> {
    /// A scene of a new group `PREFIX-PID-N`.
    pub fn new(redis: R, prefix: &str) -> Scene<R> {
        Scene::of_group(redis, unique_group(prefix))
    }

    /// A scene of group `group` (on a cluster, a group whose slot a chosen master serves).
    pub fn of_group(redis: R, group: String) -> Scene<R> {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("job.sh"), JOB_SH).unwrap();
        Scene { redis, group, out }
    }

    /// The directory the jobs write to (`$OUT`).
    pub fn out(&self) -> &Path {
        self.out.path()
    }

    /// The `--exec` command that runs `job.sh`.
    pub fn exec(&self) -> String {
        format!("sh {}", self.out().join("job.sh").display())
    }

    /// Starts a worker serving the group with `VISIBILITY` and `extra` flags.
    pub fn worker(&self, extra: &[&str]) -> WorkerProcess {
        let exec = self.exec();
        let visibility = format!("{}ms", VISIBILITY.as_millis());
        let mut args = vec![
            "--group",
            &self.group,
            "--exec",
            &exec,
            "--visibility-timeout",
            &visibility,
            "--retry-backoff",
            "50ms",
        ];
        args.extend_from_slice(extra);
        WorkerProcess::start(&self.redis.url(), self.out(), &args)
    }

    /// `streamworker:{GROUP}:SUFFIX` of the scene's group.
    pub fn key(&self, suffix: &str) -> String {
        key(&self.group, suffix)
    }

    /// Enqueues `n` jobs of `task` that keep their result for an hour; returns their ids.
    pub async fn enqueue(&self, task: &str, n: usize) -> Vec<JobId> {
        let client = Client::connect(&self.redis.url()).await.unwrap();
        let jobs: Vec<Job> = (0..n)
            .map(|_| {
                Job::new(&self.group, task, &serde_json::json!({}))
                    .unwrap()
                    .keep_result(Duration::from_secs(3600))
            })
            .collect();
        client.enqueue_many(jobs).await.unwrap()
    }

    /// The recorded runs: (job id, worker pid, finished).
    pub fn runs(&self) -> Vec<(String, u32, bool)> {
        let text = fs::read_to_string(self.out().join("runs")).unwrap_or_default();
        let mut starts: Vec<(String, u32, bool)> = Vec::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            let [id, pid, what] = parts[..] else { continue };
            let pid: u32 = pid.parse().unwrap();
            match what {
                "start" => starts.push((id.to_string(), pid, false)),
                "end" => {
                    if let Some(run) = starts
                        .iter_mut()
                        .find(|(i, p, done)| i == id && *p == pid && !done)
                    {
                        run.2 = true;
                    }
                }
                _ => {}
            }
        }
        starts
    }

    /// The pids of the workers that started job `id`, in order.
    pub fn starts_of(&self, id: &JobId) -> Vec<u32> {
        self.runs()
            .into_iter()
            .filter(|(i, _, _)| i == id.as_str())
            .map(|(_, pid, _)| pid)
            .collect()
    }

    /// Each job's status hash field `field`, in order.
    pub fn status_field(&self, ids: &[JobId], field: &str) -> Vec<Option<String>> {
        let mut conn = self.redis.conn_for(&self.key("default"));
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGET")
                .arg(self.key(&format!("job:{id}")))
                .arg(field);
        }
        pipe.query(&mut conn).unwrap()
    }

    /// How many of `ids` are in state `state`.
    pub fn count_in_state(&self, ids: &[JobId], state: &str) -> usize {
        self.status_field(ids, "state")
            .iter()
            .filter(|s| s.as_deref() == Some(state))
            .count()
    }

    /// Waits up to `timeout` until all of `ids` are in state `state`.
    pub async fn until_all_in_state(&self, ids: &[JobId], state: &str, timeout: Duration) {
        wait_until(timeout, &format!("all {} jobs {state}", ids.len()), || {
            let n = self.count_in_state(ids, state);
            async move { n == ids.len() }
        })
        .await;
    }

    /// Waits until job `id` started `times` times.
    pub async fn until_started(&self, id: &JobId, times: usize) {
        wait_until(WAIT, &format!("job {id} started {times} time(s)"), || {
            let n = self.starts_of(id).len();
            async move { n >= times }
        })
        .await;
    }

    /// Asserts the group holds nothing: no entry waiting or pending, nothing delayed.
    pub fn assert_drained(&self) {
        let mut conn = self.redis.conn();
        for p in ["high", "default", "low"] {
            let stream = self.key(p);
            assert_eq!(xlen(&mut conn, &stream), 0, "{stream} still holds entries");
            assert_eq!(pending_count(&mut conn, &stream, &self.group), 0);
        }
        assert_eq!(
            zcard(&mut conn, &self.key("delayed")),
            0,
            "the delayed set is not empty"
        );
    }

    /// The entries of the dead stream, oldest first.
    pub fn dead(&self) -> Vec<HashMap<String, String>> {
        stream_entries(&mut self.redis.conn(), &self.key("dead"))
    }
}
