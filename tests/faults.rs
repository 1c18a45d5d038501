//! Fault injection with real processes: worker processes of the project's own binary are
//! SIGKILLed, SIGSTOPped and SIGTERMed, and redis-server is killed and restarted, while jobs
//! run. Whatever happens, every job Redis accepted runs to success or lands in the dead stream
//! with its reason.
//!
//! Every job runs `job.sh` (below), which records each run as `JOB_ID WORKER_PID start|end`
//! lines in `$OUT/runs`, so a test can tell which worker ran what, and which runs were cut.

mod support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use streamworker::{Client, Job, JobId};
use support::process::WorkerProcess;
use support::{RedisServer, pending_count, stream_entries, unique_group, wait_until};

/// How long any awaited condition may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);
/// The visibility timeout the workers of these tests run with.
const VISIBILITY: Duration = Duration::from_secs(1);

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

/// One test's scene: a private Redis, a group, a directory the jobs write to.
struct Scene {
    redis: RedisServer,
    group: String,
    out: tempfile::TempDir,
}

impl Scene {
    fn new(redis: RedisServer, prefix: &str) -> Scene {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("job.sh"), JOB_SH).unwrap();
        Scene {
            redis,
            group: unique_group(prefix),
            out,
        }
    }

    fn out(&self) -> &Path {
        self.out.path()
    }

    /// The `--exec` command that runs `job.sh`.
    fn exec(&self) -> String {
        format!("sh {}", self.out().join("job.sh").display())
    }

    /// Starts a worker serving the group with `VISIBILITY` and `extra` flags.
    fn worker(&self, extra: &[&str]) -> WorkerProcess {
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

    fn key(&self, suffix: &str) -> String {
        format!("streamworker:{{{}}}:{suffix}", self.group)
    }

    /// Enqueues `n` jobs of `task` that keep their result for an hour; returns their ids.
    async fn enqueue(&self, task: &str, n: usize) -> Vec<JobId> {
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
    fn runs(&self) -> Vec<(String, u32, bool)> {
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

    /// How many runs of job `id` started so far.
    fn starts_of(&self, id: &JobId) -> Vec<u32> {
        self.runs()
            .into_iter()
            .filter(|(i, _, _)| i == id.as_str())
            .map(|(_, pid, _)| pid)
            .collect()
    }

    /// Each job's status hash field `field`, in order.
    fn status_field(&self, ids: &[JobId], field: &str) -> Vec<Option<String>> {
        let mut conn = self.redis.conn();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGET")
                .arg(self.key(&format!("job:{id}")))
                .arg(field);
        }
        pipe.query(&mut conn).unwrap()
    }

    fn count_in_state(&self, ids: &[JobId], state: &str) -> usize {
        self.status_field(ids, "state")
            .iter()
            .filter(|s| s.as_deref() == Some(state))
            .count()
    }

    async fn until_all_in_state(&self, ids: &[JobId], state: &str, timeout: Duration) {
        wait_until(timeout, &format!("all {} jobs {state}", ids.len()), || {
            let n = self.count_in_state(ids, state);
            async move { n == ids.len() }
        })
        .await;
    }

    async fn until_started(&self, id: &JobId, times: usize) {
        wait_until(WAIT, &format!("job {id} started {times} time(s)"), || {
            let n = self.starts_of(id).len();
            async move { n >= times }
        })
        .await;
    }

    /// Asserts the group holds nothing: no entry waiting or pending, nothing delayed.
    fn assert_drained(&self) {
        let mut conn = self.redis.conn();
        for p in ["high", "default", "low"] {
            let stream = self.key(p);
            let len: usize = redis::cmd("XLEN").arg(&stream).query(&mut conn).unwrap();
            assert_eq!(len, 0, "{stream} still holds entries");
            assert_eq!(pending_count(&mut conn, &stream, &self.group), 0);
        }
        let delayed: usize = redis::cmd("ZCARD")
            .arg(self.key("delayed"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(delayed, 0, "the delayed set is not empty");
    }

    fn dead(&self) -> Vec<HashMap<String, String>> {
        stream_entries(&mut self.redis.conn(), &self.key("dead"))
    }
}

/// 1. A worker SIGKILLed while it runs a job: another worker finishes the job within the
/// visibility timeout plus the reaper interval.
#[tokio::test]
async fn a_job_whose_worker_is_killed_is_finished_by_another() {
    let scene = Scene::new(RedisServer::start(), "killed");
    let mut first = scene.worker(&[]);
    let ids = scene.enqueue("sleep-2", 1).await;
    scene.until_started(&ids[0], 1).await;
    let _second = scene.worker(&[]);
    first.kill();
    let killed_at = Instant::now();
    scene.until_started(&ids[0], 2).await;
    let taken_over_after = killed_at.elapsed();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;

    let starts = scene.starts_of(&ids[0]);
    assert_eq!(starts.len(), 2, "one cut run, one run to the end");
    assert_eq!(starts[0], first.pid());
    assert_ne!(starts[1], first.pid());
    // Visibility 1 s, reaper every 333 ms; the rest is slack for a loaded machine.
    assert!(
        taken_over_after < VISIBILITY + Duration::from_millis(333) + Duration::from_secs(2),
        "taken over after {taken_over_after:?}"
    );
    let result = &scene.status_field(&ids, "result")[0];
    assert_eq!(result.as_deref(), Some(format!("{}\n", starts[1]).as_str()));
    scene.assert_drained();
}

/// 2. Chaos: 2,000 jobs, three worker processes, one SIGKILLed and replaced every 300 ms for
/// 4 s. Every job ran at least once and succeeded; every job that ran more than once lost its
/// other runs to a killed worker; nothing is left pending or delayed.
#[tokio::test]
async fn chaos_of_killed_workers_loses_no_job() {
    const JOBS: usize = 2_000;
    let scene = Scene::new(RedisServer::start(), "chaos");
    let ids = scene.enqueue("sleep-0.05", JOBS).await;
    let flags = ["--concurrency", "8", "--max-deliveries", "50"];
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| scene.worker(&flags)).collect();
    // A run whose worker was killed before its shell started records parent pid 1 (the
    // orphan was adopted by init): it counts as a run on a killed worker.
    let mut killed: HashSet<u32> = HashSet::from([1]);
    let chaos_started = Instant::now();
    let mut victim = 0;
    while chaos_started.elapsed() < Duration::from_secs(4) {
        // The fault's rhythm, not a synchronisation: a kill every 300 ms.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let w = &mut workers[victim % 3];
        killed.insert(w.pid());
        w.kill();
        *w = scene.worker(&flags);
        victim += 1;
    }
    let settle_started = Instant::now();
    scene
        .until_all_in_state(&ids, "succeeded", Duration::from_secs(60))
        .await;
    let settled_after = settle_started.elapsed();

    let runs = scene.runs();
    let mut by_job: HashMap<&str, Vec<(u32, bool)>> = HashMap::new();
    for (id, pid, done) in &runs {
        by_job.entry(id).or_default().push((*pid, *done));
    }
    let mut duplicates = 0;
    for id in &ids {
        let job_runs = by_job
            .get(id.as_str())
            .unwrap_or_else(|| panic!("job {id} never ran"));
        assert!(
            job_runs.iter().any(|(_, done)| *done),
            "job {id} never ran to its end"
        );
        if job_runs.len() > 1 {
            duplicates += job_runs.len() - 1;
            let on_survivors = job_runs
                .iter()
                .filter(|(pid, _)| !killed.contains(pid))
                .count();
            assert!(
                on_survivors <= 1,
                "job {id} ran {} times, {on_survivors} of them on workers never killed: {job_runs:?}",
                job_runs.len()
            );
        }
    }
    assert!(
        scene.dead().is_empty(),
        "no job is dead: {:?}",
        scene.dead()
    );
    scene.assert_drained();
    println!(
        "chaos: {JOBS} jobs, 3 workers, {} kills in {:?}, {} runs, {duplicates} duplicate runs, settled {:?} after the last kill, {:?} in all",
        killed.len() - 1,
        Duration::from_secs(4),
        runs.len(),
        settled_after,
        chaos_started.elapsed()
    );
}

/// 3. Redis killed and restarted (AOF, appendfsync always) in the middle of a run: no job
/// enqueued before is lost, and the same worker processes finish the run.
#[tokio::test]
async fn a_redis_restart_with_aof_always_loses_no_job() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut scene = Scene::new(redis, "aof");
    let ids = scene.enqueue("sleep-0.01", 400).await;
    let flags = ["--concurrency", "4"];
    let mut workers = [scene.worker(&flags), scene.worker(&flags)];
    wait_until(WAIT, "a quarter of the jobs done", || {
        let n = scene.count_in_state(&ids, "succeeded");
        async move { n >= 100 }
    })
    .await;
    scene.redis.restart();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    for w in &mut workers {
        assert!(w.is_running(), "a worker died with Redis:\n{}", w.log());
    }
    let ran: HashSet<String> = scene.runs().into_iter().map(|(id, _, _)| id).collect();
    assert!(ids.iter().all(|id| ran.contains(id.as_str())));
    scene.assert_drained();
}

/// 4. Redis unreachable for 5 s: the workers survive, carry on, and log the outage once when
/// it starts and once when it ends, not once per retry.
#[tokio::test]
async fn workers_ride_out_five_seconds_without_redis() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut scene = Scene::new(redis, "outage");
    let mut workers = [scene.worker(&[]), scene.worker(&[])];
    let before = scene.enqueue("sleep-0.01", 20).await;
    scene.until_all_in_state(&before, "succeeded", WAIT).await;

    scene.redis.kill();
    // The fault itself: Redis stays away for 5 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    scene.redis.restart();
    let after = scene.enqueue("sleep-0.01", 20).await;
    scene.until_all_in_state(&after, "succeeded", WAIT).await;
    for w in &mut workers {
        wait_until(WAIT, "the worker to log the end of the outage", || {
            let back = w.log().contains("Redis answers again");
            async move { back }
        })
        .await;
        assert!(w.is_running());
        let log = w.log();
        let failing = log.matches("Redis is failing").count();
        let back = log.matches("Redis answers again").count();
        assert_eq!(
            failing, 1,
            "the outage is logged once when it starts:\n{log}"
        );
        assert_eq!(back, 1, "and once when it ends:\n{log}");
        assert!(
            log.lines().count() < 20,
            "no flood of log lines during the outage:\n{log}"
        );
    }
    scene.assert_drained();
}

/// 5. A job longer than the visibility timeout runs once while its worker lives (heartbeats
/// renew its lease); kill its worker and it runs again on another.
#[tokio::test]
async fn heartbeats_keep_a_long_job_from_running_twice() {
    let scene = Scene::new(RedisServer::start(), "long");
    let _a = scene.worker(&[]);
    let _b = scene.worker(&[]);
    let long = scene.enqueue("sleep-3.5", 1).await;
    scene.until_all_in_state(&long, "succeeded", WAIT).await;
    assert_eq!(
        scene.starts_of(&long[0]).len(),
        1,
        "a job of 3.5 x the visibility timeout ran once"
    );

    let mut c = scene.worker(&[]);
    let blocked = scene.enqueue("block", 1).await;
    scene.until_started(&blocked[0], 1).await;
    let owner = scene.starts_of(&blocked[0])[0];
    // Kill whichever worker holds the job: that is `c` only if it took it.
    let mut workers = [_a, _b];
    if c.pid() == owner {
        c.kill();
    } else {
        workers
            .iter_mut()
            .find(|w| w.pid() == owner)
            .expect("one of the workers runs the job")
            .kill();
    }
    scene.until_started(&blocked[0], 2).await;
    fs::write(scene.out().join("go"), "").unwrap();
    scene.until_all_in_state(&blocked, "succeeded", WAIT).await;
    let starts = scene.starts_of(&blocked[0]);
    assert_eq!(starts.len(), 2);
    assert_ne!(starts[0], starts[1], "the second run is on another worker");
    scene.assert_drained();
}

/// 6. A poison job lands in the dead stream after its retries, with its last error; a job
/// that kills its worker every time lands there as `stalled N times`.
#[tokio::test]
async fn poison_jobs_end_in_the_dead_stream_with_their_reason() {
    let scene = Scene::new(RedisServer::start(), "poison");
    let flags = ["--max-retries", "2", "--max-deliveries", "2"];
    let mut worker = scene.worker(&flags);
    let failing = scene.enqueue("fail", 1).await;
    scene.until_all_in_state(&failing, "dead", WAIT).await;
    let crashing = scene.enqueue("crash", 1).await;
    // Restart the worker each time the crashing job kills it, until the job is dead.
    let mut restarts = 0;
    wait_until(WAIT, "the crashing job dead", || {
        if !worker.is_running() {
            worker = scene.worker(&flags);
            restarts += 1;
        }
        let n = scene.count_in_state(&crashing, "dead");
        async move { n == 1 }
    })
    .await;
    let dead = scene.dead();
    assert_eq!(dead.len(), 2);
    let reason_of = |id: &JobId| {
        dead.iter()
            .find(|e| e.get("id").map(String::as_str) == Some(id.as_str()))
            .and_then(|e| e.get("reason").cloned())
            .unwrap_or_default()
    };
    let failed = reason_of(&failing[0]);
    assert!(failed.starts_with("failed after 3 attempts"), "{failed}");
    assert!(
        failed.contains("poison: the invoice cannot be parsed"),
        "{failed}"
    );
    assert_eq!(scene.starts_of(&failing[0]).len(), 3);
    let stalled = reason_of(&crashing[0]);
    assert!(stalled.starts_with("stalled 2 times"), "{stalled}");
    assert_eq!(
        scene.starts_of(&crashing[0]).len(),
        2,
        "two deliveries, both killed"
    );
    assert_eq!(restarts, 2, "the crashing job killed its worker twice");
    scene.assert_drained();

    // Once the bug is fixed, re-driving from the dead stream runs both again, to success.
    fs::write(scene.out().join("fixed"), "").unwrap();
    let url = scene.redis.url();
    let redrive = Command::new(support::bin())
        .args(["--redis", &url, "dead", "--group", &scene.group, "retry"])
        .arg(crashing[0].as_str())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        redrive.status.success(),
        "{}",
        String::from_utf8_lossy(&redrive.stderr)
    );
    scene.until_all_in_state(&crashing, "succeeded", WAIT).await;
    assert_eq!(
        scene.starts_of(&crashing[0]).len(),
        3,
        "re-driven: one more run"
    );
    assert_eq!(scene.dead().len(), 1, "only the failing job is still dead");
    scene.assert_drained();
}

/// 7. SIGTERM with jobs in flight: short jobs finish within the grace period, long ones are
/// handed back and started by another worker long before the visibility timeout (30 s here).
#[tokio::test]
async fn sigterm_finishes_short_jobs_and_hands_back_long_ones() {
    let scene = Scene::new(RedisServer::start(), "sigterm");
    let exec = scene.exec();
    let args = |extra: &'static [&'static str]| {
        let mut a = vec![
            "--group".to_string(),
            scene.group.clone(),
            "--exec".to_string(),
            exec.clone(),
            "--concurrency".to_string(),
            "4".to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let first_args = args(&["--shutdown-grace", "1s"]);
    let mut first = WorkerProcess::start(
        &scene.redis.url(),
        scene.out(),
        &first_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let short = scene.enqueue("sleep-0.5", 2).await;
    let long = scene.enqueue("block", 2).await;
    for id in short.iter().chain(&long) {
        scene.until_started(id, 1).await;
    }
    first.signal("TERM");
    let status = first.exit_status(WAIT).await;
    assert!(
        status.success(),
        "exit code 0 after a clean stop: {status:?}"
    );
    let stopped_at = Instant::now();
    scene.until_all_in_state(&short, "succeeded", WAIT).await;
    for id in &short {
        assert_eq!(
            scene.starts_of(id),
            vec![first.pid()],
            "short jobs ran once, on the first worker"
        );
    }

    let second_args = args(&[]);
    let second = WorkerProcess::start(
        &scene.redis.url(),
        scene.out(),
        &second_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for id in &long {
        scene.until_started(id, 2).await;
        assert_eq!(scene.starts_of(id)[1], second.pid());
    }
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "handed-back jobs restart at once, not after the 30 s visibility timeout"
    );
    fs::write(scene.out().join("go"), "").unwrap();
    scene.until_all_in_state(&long, "succeeded", WAIT).await;
    scene.assert_drained();
}

/// 8. A worker SIGSTOPped past the visibility timeout, then continued: the job ran elsewhere,
/// the stopped worker's late finish is rejected as stale, and exactly one result is stored.
#[tokio::test]
async fn a_worker_stopped_past_its_lease_stores_nothing() {
    let scene = Scene::new(RedisServer::start(), "sigstop");
    let stopped = scene.worker(&[]);
    let ids = scene.enqueue("block", 1).await;
    scene.until_started(&ids[0], 1).await;
    stopped.signal("STOP");
    let other = scene.worker(&[]);
    scene.until_started(&ids[0], 2).await;
    assert_eq!(scene.starts_of(&ids[0]), vec![stopped.pid(), other.pid()]);

    // Both runs finish: the stopped worker's child is not stopped, only the worker.
    fs::write(scene.out().join("go"), "").unwrap();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    stopped.signal("CONT");
    wait_until(
        WAIT,
        "the continued worker to notice it lost the lease",
        || {
            let lost = stopped.log().contains("lost the lease");
            async move { lost }
        },
    )
    .await;
    let result = scene.status_field(&ids, "result").remove(0);
    assert_eq!(
        result,
        Some(format!("{}\n", other.pid())),
        "the one stored result is the live worker's"
    );
    scene.assert_drained();
}

/// 10. Malformed entries written by hand land in the dead stream with their reason, and the
/// worker keeps serving.
#[tokio::test]
async fn malformed_entries_are_dead_lettered_and_the_worker_goes_on() {
    let scene = Scene::new(RedisServer::start(), "malformed");
    let stream = scene.key("default");
    let huge = "x".repeat(2048);
    let entries: [&[&str]; 4] = [
        &["args", "{}"],
        &["task", "sleep-0", "args", "{not json"],
        &["task", "sleep-0", "args", &huge],
        &["task", "sleep-0", "args", "{}", "enc", "pickle"],
    ];
    let mut conn = scene.redis.conn();
    for fields in entries {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&stream).arg("*").arg(fields);
        let _: String = cmd.query(&mut conn).unwrap();
    }
    let _worker = scene.worker(&["--max-payload-bytes", "1024"]);
    let good = scene.enqueue("sleep-0", 1).await;
    scene.until_all_in_state(&good, "succeeded", WAIT).await;
    wait_until(WAIT, "four dead entries", || {
        let n = scene.dead().len();
        async move { n == 4 }
    })
    .await;
    let reasons: Vec<String> = scene
        .dead()
        .into_iter()
        .map(|e| e.get("reason").cloned().unwrap_or_default())
        .collect();
    // Jobs run concurrently, so the dead stream's order is the order they failed in.
    for needle in ["field task", "JSON", "1024", "pickle"] {
        assert_eq!(
            reasons.iter().filter(|r| r.contains(needle)).count(),
            1,
            "one reason names {needle:?}: {reasons:?}"
        );
    }
    scene.assert_drained();
    // `redis-cli` exists on the machine: the same check a user would type.
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(scene.redis.port().to_string())
        .arg("XLEN")
        .arg(scene.key("dead"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
}

/// Start-up check: a Redis that may evict keys is refused, with the fix in the message.
#[tokio::test]
async fn a_worker_refuses_a_redis_that_evicts_keys() {
    let scene = Scene::new(
        RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]),
        "evicting",
    );
    let mut worker = scene.worker(&[]);
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(1));
    let log = worker.log();
    assert!(log.contains("maxmemory-policy allkeys-lru"), "{log}");
    assert!(
        log.contains("CONFIG SET maxmemory-policy noeviction"),
        "{log}"
    );
}

/// A Redis restarted without persistence lost the consumer groups: the worker recreates them,
/// says so as an error, and serves new jobs without a restart of its own.
#[tokio::test]
async fn groups_lost_with_redis_data_are_recreated_loudly() {
    let mut scene = Scene::new(RedisServer::start(), "nogroup");
    let mut worker = scene.worker(&[]);
    let before = scene.enqueue("sleep-0", 1).await;
    scene.until_all_in_state(&before, "succeeded", WAIT).await;
    scene.redis.restart();
    wait_until(WAIT, "the worker to report the recreated groups", || {
        let said = worker
            .log()
            .contains("consumer group was missing and has been recreated");
        async move { said }
    })
    .await;
    let after = scene.enqueue("sleep-0", 1).await;
    scene.until_all_in_state(&after, "succeeded", WAIT).await;
    assert!(worker.is_running());
    scene.assert_drained();
}

/// A pause is logged by the worker once, a resume once, and jobs enqueued meanwhile run after.
#[tokio::test]
async fn a_paused_worker_says_so_and_resumes() {
    let scene = Scene::new(RedisServer::start(), "pause");
    let worker = scene.worker(&[]);
    let admin = |verb: &str| {
        let out = Command::new(support::bin())
            .args(["--redis", &scene.redis.url(), verb, "--group", &scene.group])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    wait_until(WAIT, "the worker to start", || {
        let started = worker.log().contains("worker started");
        async move { started }
    })
    .await;
    admin("pause");
    wait_until(WAIT, "the worker to log the pause", || {
        let said = worker.log().contains("group paused");
        async move { said }
    })
    .await;
    let ids = scene.enqueue("sleep-0", 3).await;
    admin("resume");
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    let log = worker.log();
    assert_eq!(log.matches("group paused").count(), 1, "{log}");
    assert_eq!(log.matches("group resumed").count(), 1, "{log}");
}
