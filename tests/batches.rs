//! Batches on a real redis-server with real worker processes of the project's own binary:
//! every job runs `job.sh`, which records each run as `JOB_ID TASK WORKER_PID FAILED_IDS` in
//! `$OUT/runs`, so a test counts the runs of each child and of each callback.

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::{
    Batch, BatchPolicy, BatchStatus, CancelOutcome, Chain, Client, Job, JobContext, State,
    TaskError, Worker,
};
use support::cluster::RedisCluster;
use support::deployment::Deployment;
use support::keys::unique_group;
use support::process::WorkerProcess;
use support::server::RedisServer;
use support::wait::{WAIT, wait_until};
use support::workers::Running;

/// What each job runs, by task: `fail` fails; `slow` sleeps 0.3 s; `block` runs until
/// `$OUT/go` exists; `s1`..`s9` (chain steps) record `TASK PREV_RESULT` in `$OUT/prev` and
/// return `PREV_RESULT>TASK`; anything else succeeds at once.
const JOB_SH: &str = r#"echo "$STREAMWORKER_JOB_ID $STREAMWORKER_TASK $PPID ${STREAMWORKER_HEADER_BATCH_FAILED:--}" >> "$OUT/runs"
case "$STREAMWORKER_TASK" in
  fail) echo "this child fails" >&2; exit 1 ;;
  slow) sleep 0.3 ;;
  block) while [ -d "$OUT" ] && [ ! -e "$OUT/go" ]; do sleep 0.01; done ;;
  s[0-9])
    printf '%s %s\n' "$STREAMWORKER_TASK" "${STREAMWORKER_PREV_RESULT:--}" >> "$OUT/prev"
    printf '%s>%s' "${STREAMWORKER_PREV_RESULT:-}" "$STREAMWORKER_TASK"
    exit 0 ;;
esac
echo ok
"#;

/// One recorded run.
#[derive(Debug, Clone)]
struct Run {
    id: String,
    task: String,
    pid: u32,
    failed: String,
}

struct Scene {
    redis: RedisServer,
    group: String,
    out: tempfile::TempDir,
}

impl Scene {
    fn new(prefix: &str) -> Scene {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("job.sh"), JOB_SH).unwrap();
        Scene {
            redis: RedisServer::start(),
            group: unique_group(prefix),
            out,
        }
    }

    fn out(&self) -> &Path {
        self.out.path()
    }

    fn worker(&self, extra: &[&str]) -> WorkerProcess {
        let exec = format!("sh {}", self.out().join("job.sh").display());
        let mut args = vec![
            "--group",
            &self.group,
            "--exec",
            &exec,
            "--visibility-timeout",
            "1s",
            "--retry-backoff",
            "50ms",
            "--concurrency",
            "8",
        ];
        args.extend_from_slice(extra);
        WorkerProcess::start(&self.redis.url(), self.out(), &args)
    }

    /// Runs `streamworker ARGS` against the scene's Redis; returns its stdout.
    fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(support::process::bin())
            .args(["--redis", &self.redis.url()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn client(&self) -> Client {
        Client::connect(&self.redis.url()).await.unwrap()
    }

    fn job(&self, task: &str) -> Job {
        Job::new(&self.group, task, &serde_json::json!({})).unwrap()
    }

    fn runs(&self) -> Vec<Run> {
        let text = fs::read_to_string(self.out().join("runs")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let parts: Vec<&str> = l.split(' ').collect();
                let [id, task, pid, failed] = parts[..] else {
                    return None;
                };
                Some(Run {
                    id: id.into(),
                    task: task.into(),
                    pid: pid.parse().ok()?,
                    failed: failed.into(),
                })
            })
            .collect()
    }

    fn runs_of(&self, task: &str) -> Vec<Run> {
        self.runs().into_iter().filter(|r| r.task == task).collect()
    }

    async fn status(&self, id: &str) -> BatchStatus {
        self.client()
            .await
            .batch_status(&self.group, id)
            .await
            .unwrap()
            .expect("the batch exists")
    }

    /// Waits for the batch to be done and its `on_complete` callback to have run once, then a
    /// little more, so that a second run of a callback would show.
    async fn until_complete(&self, id: &str) -> BatchStatus {
        wait_until(
            WAIT,
            "the batch to complete and on_complete to run",
            || async {
                self.status(id).await.state == "done" && !self.runs_of("complete").is_empty()
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.status(id).await
    }
}

/// Runs per job id.
fn counts(runs: &[Run]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in runs {
        *counts.entry(r.id.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_200_over_two_workers_fires_on_success_once() {
    let scene = Scene::new("batch200");
    let _a = scene.worker(&[]);
    let _b = scene.worker(&[]);
    let batch = Batch::new(&scene.group)
        .unwrap()
        .jobs((0..200).map(|_| scene.job("child")))
        .on_success(scene.job("success"))
        .on_complete(scene.job("complete"));
    let id = scene.client().await.enqueue_batch(batch).await.unwrap();
    let status = scene.until_complete(&id).await;
    let children = counts(&scene.runs_of("child"));
    let success = scene.runs_of("success");
    let complete = scene.runs_of("complete");
    eprintln!(
        "batch of 200 over two workers: {} children ran ({} runs), on_success ran {} time(s), on_complete ran {} time(s)",
        children.len(),
        children.values().sum::<usize>(),
        success.len(),
        complete.len()
    );
    assert_eq!(children.len(), 200);
    assert_eq!(success.len(), 1);
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].failed, "-");
    assert_eq!(
        (
            status.total,
            status.succeeded,
            status.failed,
            status.pending
        ),
        (200, 200, 0, 0)
    );
    assert_eq!(status.outcome.as_deref(), Some("succeeded"));
    assert!(status.callbacks.iter().all(|c| c.fired_entry.is_some()));
    // Done, the batch expires after its TTL (7 days by default); its pending set is gone.
    let mut conn = scene.redis.conn();
    let key = format!("streamworker:{{{}}}:batch:{id}", scene.group);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 7 * 24 * 3600 * 1000, "{ttl}");
    let pending: i64 = redis::cmd("EXISTS")
        .arg(format!("{key}:pending"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_dead_children_fire_on_complete_once_with_their_ids_and_never_on_success() {
    let scene = Scene::new("batch3dead");
    let _a = scene.worker(&[]);
    let _b = scene.worker(&[]);
    let failing: Vec<Job> = (0..3).map(|_| scene.job("fail").max_retries(1)).collect();
    let mut dead_ids: Vec<String> = failing.iter().map(|j| j.id().to_string()).collect();
    dead_ids.sort();
    let batch = Batch::new(&scene.group)
        .unwrap()
        .jobs((0..197).map(|_| scene.job("child")))
        .jobs(failing)
        .on_success(scene.job("success"))
        .on_complete(scene.job("complete"));
    let id = scene.client().await.enqueue_batch(batch).await.unwrap();
    let status = scene.until_complete(&id).await;
    let success = scene.runs_of("success");
    let complete = scene.runs_of("complete");
    let fail_runs = counts(&scene.runs_of("fail"));
    eprintln!(
        "batch of 200 with 3 dead: failing children ran {:?} times, on_success ran {} time(s), on_complete ran {} time(s) with batch_failed={}",
        fail_runs.values().collect::<Vec<_>>(),
        success.len(),
        complete.len(),
        complete.first().map_or("", |r| r.failed.as_str())
    );
    assert!(success.is_empty());
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].failed, dead_ids.join(","));
    assert_eq!(status.failed_ids, dead_ids);
    assert_eq!(
        (
            status.total,
            status.succeeded,
            status.failed,
            status.pending
        ),
        (200, 197, 3, 0)
    );
    assert_eq!(status.outcome.as_deref(), Some("failed"));
    assert_eq!(status.callbacks[0].fired_entry, None);
    assert!(status.callbacks[1].fired_entry.is_some());

    // The CLI shows the same, as text and as JSON.
    let text = scene.cli(&["batch", &id, "--group", &scene.group]);
    eprintln!("streamworker batch:\n{text}");
    assert!(text.contains("state     done (failed)"), "{text}");
    assert!(
        text.contains("total 200, succeeded 197, failed 3, pending 0"),
        "{text}"
    );
    assert!(
        text.contains(&format!("failed    {}", dead_ids.join(", "))),
        "{text}"
    );
    assert!(text.contains("on_success: not fired"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&scene.cli(&["batch", &id, "--group", &scene.group, "--json"]))
            .unwrap();
    assert_eq!(json["failed"], 3);
    assert_eq!(json["failed_ids"].as_array().unwrap().len(), 3);
}

/// A worker SIGKILLed mid-batch (the other one's reaper rescues its jobs), a running child and
/// a waiting child cancelled, a dead child re-driven from the CLI while the batch runs: each
/// callback still runs exactly once, and every child is counted once.
#[tokio::test(flavor = "multi_thread")]
async fn crashes_cancels_and_re_drives_leave_each_callback_firing_once() {
    let scene = Scene::new("batchcrash");
    let mut a = scene.worker(&[]);
    let b = scene.worker(&[]);
    let client = scene.client().await;
    let block = scene.job("block");
    let fail = scene.job("fail").max_retries(0);
    let waiting = scene.job("child").delay(Duration::from_secs(3600));
    let (block_id, fail_id, waiting_id) =
        (block.id().clone(), fail.id().clone(), waiting.id().clone());
    let batch = Batch::new(&scene.group)
        .unwrap()
        .jobs((0..60).map(|_| scene.job("slow")))
        .job(block)
        .job(fail)
        .job(waiting)
        .policy(BatchPolicy::Ignore)
        .on_success(scene.job("success"))
        .on_complete(scene.job("complete"));
    let id = client.enqueue_batch(batch).await.unwrap();

    // Worker A dies in the middle of its slow children.
    let a_pid = a.pid();
    wait_until(WAIT, "worker A to be running slow children", || async {
        scene
            .runs_of("slow")
            .iter()
            .filter(|r| r.pid == a_pid)
            .count()
            >= 4
    })
    .await;
    a.kill();

    // The failing child goes dead; it is re-driven from the CLI while the batch still runs
    // (the blocked child holds it open), and dies again.
    wait_until(WAIT, "the failing child to be dead", || async {
        scene
            .status(&id)
            .await
            .failed_ids
            .contains(&fail_id.to_string())
    })
    .await;
    scene.cli(&["dead", "--group", &scene.group, "retry", fail_id.as_str()]);
    wait_until(WAIT, "the re-driven child to run again", || async {
        scene
            .runs()
            .iter()
            .filter(|r| r.id == fail_id.as_str())
            .count()
            >= 2
    })
    .await;

    // The waiting child is cancelled before it runs; the blocked one while it runs on B.
    let removed = client.cancel(&scene.group, &waiting_id).await.unwrap();
    assert_eq!(
        removed,
        CancelOutcome::Removed {
            was_scheduled: true
        }
    );
    let b_pid = b.pid();
    wait_until(WAIT, "the blocked child to run on worker B", || async {
        scene
            .runs()
            .iter()
            .any(|r| r.id == block_id.as_str() && r.pid == b_pid)
    })
    .await;
    let requested = client.cancel(&scene.group, &block_id).await.unwrap();
    assert!(
        matches!(requested, CancelOutcome::Requested { .. }),
        "{requested:?}"
    );

    let status = scene.until_complete(&id).await;
    let slow = counts(&scene.runs_of("slow"));
    let rerun = slow.values().filter(|&&n| n > 1).count();
    let success = scene.runs_of("success");
    let complete = scene.runs_of("complete");
    eprintln!(
        "crash test: {} slow children ran, {} of them twice or more (rescued from the killed worker), most runs of one child {}; the failing child ran {} times (re-driven once); on_success ran {} time(s), on_complete ran {} time(s); batch: total {} succeeded {} failed {} pending {}",
        slow.len(),
        rerun,
        slow.values().max().copied().unwrap_or(0),
        scene
            .runs()
            .iter()
            .filter(|r| r.id == fail_id.as_str())
            .count(),
        success.len(),
        complete.len(),
        status.total,
        status.succeeded,
        status.failed,
        status.pending
    );
    assert_eq!(slow.len(), 60);
    assert_eq!(success.len(), 1);
    assert_eq!(complete.len(), 1);
    let mut failed = vec![
        block_id.to_string(),
        fail_id.to_string(),
        waiting_id.to_string(),
    ];
    failed.sort();
    assert_eq!(status.failed_ids, failed);
    assert_eq!(complete[0].failed, failed.join(","));
    assert_eq!(
        (
            status.total,
            status.succeeded,
            status.failed,
            status.pending
        ),
        (63, 60, 3, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_of_three_hands_each_result_to_the_next_step() {
    let scene = Scene::new("chain3");
    let _a = scene.worker(&[]);
    let chain = Chain::new(&scene.group)
        .unwrap()
        .then(scene.job("s1"))
        .then(scene.job("s2"))
        .then(scene.job("s3"))
        .on_success(scene.job("success"))
        .on_complete(scene.job("complete"));
    let id = scene.client().await.enqueue_chain(chain).await.unwrap();
    let status = scene.until_complete(&id).await;
    let prev = fs::read_to_string(scene.out().join("prev")).unwrap();
    eprintln!("chain of three: steps ran as {prev:?}");
    assert_eq!(prev, "s1 -\ns2 >s1\ns3 >s1>s2\n");
    assert_eq!(scene.runs_of("success").len(), 1);
    assert_eq!(scene.runs_of("complete").len(), 1);
    assert_eq!(
        (status.total, status.succeeded, status.failed, status.steps),
        (3, 3, 0, Some(3))
    );
    assert!(status.not_run.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_in_the_middle_stops_the_chain_and_marks_the_rest_not_run() {
    let scene = Scene::new("chainstop");
    let _a = scene.worker(&[]);
    let middle = scene.job("fail").max_retries(0);
    let (s3, s4) = (scene.job("s3"), scene.job("s4"));
    let (middle_id, not_run) = (
        middle.id().to_string(),
        vec![s3.id().to_string(), s4.id().to_string()],
    );
    let chain = Chain::new(&scene.group)
        .unwrap()
        .then(scene.job("s1"))
        .then(middle)
        .then(s3)
        .then(s4)
        .on_success(scene.job("success"))
        .on_complete(scene.job("complete"));
    let id = scene.client().await.enqueue_chain(chain).await.unwrap();
    let status = scene.until_complete(&id).await;
    let prev = fs::read_to_string(scene.out().join("prev")).unwrap();
    eprintln!(
        "chain stopped in the middle: steps ran as {prev:?}, not run: {:?}",
        status.not_run
    );
    assert_eq!(prev, "s1 -\n");
    assert!(scene.runs_of("success").is_empty());
    let complete = scene.runs_of("complete");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].failed, middle_id);
    assert_eq!(status.not_run, not_run);
    assert_eq!(
        (
            status.total,
            status.succeeded,
            status.failed,
            status.pending
        ),
        (4, 1, 1, 0)
    );
    assert_eq!(status.outcome.as_deref(), Some("failed"));
}

/// What the in-process handlers share: a client, and the log of what ran, in order.
#[derive(Clone)]
struct Shared {
    client: Client,
    log: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// A child that adds 10 children to its own batch, then finishes.
async fn parent(
    _: serde_json::Value,
    ctx: JobContext,
    State(s): State<Shared>,
) -> Result<(), TaskError> {
    let batch = ctx.batch_id().expect("a child knows its batch");
    let leaves = (0..10).map(|_| Job::new(ctx.group().as_str(), "leaf", &()).unwrap());
    s.client
        .add_to_batch(ctx.group().as_str(), batch, leaves)
        .await
        .map_err(|e| TaskError::retry(e.to_string()))?;
    s.log.lock().unwrap().push("parent".into());
    Ok(())
}

/// A child that takes a while.
async fn leaf(_: serde_json::Value, State(s): State<Shared>) -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.log.lock().unwrap().push("leaf".into());
    Ok(())
}

/// The callback: records that it ran.
async fn callback(
    _: serde_json::Value,
    ctx: JobContext,
    State(s): State<Shared>,
) -> Result<(), TaskError> {
    let failed = ctx.header("batch_failed").unwrap_or_default().to_string();
    s.log.lock().unwrap().push(format!("callback[{failed}]"));
    Ok(())
}

fn in_process_worker(redis: &impl Deployment, group: &str, shared: Shared) -> Running {
    Running::worker(
        Worker::builder(redis.url())
            .group(group)
            .concurrency(16)
            .state(shared)
            .task("parent", parent)
            .task("leaf", leaf)
            .task("callback", callback)
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_adds_ten_children_and_the_callback_waits_for_them() {
    let redis = RedisServer::start();
    let group = unique_group("nested");
    let client = Client::connect(&redis.url()).await.unwrap();
    let shared = Shared {
        client: client.clone(),
        log: Arc::default(),
    };
    let worker = in_process_worker(&redis, &group, shared.clone());
    let job = |task: &str| Job::new(&group, task, &()).unwrap();
    let batch = Batch::new(&group)
        .unwrap()
        .job(job("parent"))
        .job(job("leaf"))
        .on_success(job("callback"));
    let id = client.enqueue_batch(batch).await.unwrap();
    wait_until(WAIT, "the callback to run", || async {
        shared.log().iter().any(|l| l.starts_with("callback"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = shared.log();
    let status = client.batch_status(&group, &id).await.unwrap().unwrap();
    eprintln!("nested: ran in order {log:?}");
    assert_eq!(log.iter().filter(|l| *l == "leaf").count(), 11);
    assert_eq!(log.last().map(String::as_str), Some("callback[]"));
    assert_eq!(log.iter().filter(|l| l.starts_with("callback")).count(), 1);
    assert_eq!(
        (status.total, status.succeeded, status.pending),
        (12, 12, 0)
    );
    // Once done, the batch takes no more children.
    let late = client
        .add_to_batch(&group, &id, [job("leaf")])
        .await
        .unwrap_err();
    assert!(late.to_string().contains("not running"), "{late}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_completes_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let group = unique_group("clusterbatch");
    let client = Client::connect(&cluster.url()).await.unwrap();
    let shared = Shared {
        client: client.clone(),
        log: Arc::default(),
    };
    let worker = in_process_worker(&cluster, &group, shared.clone());
    let job = |task: &str| Job::new(&group, task, &()).unwrap();
    let batch = Batch::new(&group)
        .unwrap()
        .jobs((0..20).map(|_| job("leaf")))
        .job(job("parent"))
        .on_complete(job("callback"));
    let id = client.enqueue_batch(batch).await.unwrap();
    wait_until(WAIT, "the callback to run on the cluster", || async {
        shared.log().iter().any(|l| l.starts_with("callback"))
    })
    .await;
    let status = client.batch_status(&group, &id).await.unwrap().unwrap();
    eprintln!(
        "cluster: batch {} total {} succeeded {}",
        status.state, status.total, status.succeeded
    );
    assert_eq!(status.state, "done");
    assert_eq!((status.total, status.succeeded), (31, 31));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_whose_policy_is_ignore_does_not_stop_on_success() {
    let scene = Scene::new("batchpolicy");
    let _a = scene.worker(&[]);
    let optional = scene.job("fail").max_retries(0);
    let optional_id = optional.id().to_string();
    let batch = Batch::new(&scene.group)
        .unwrap()
        .jobs((0..5).map(|_| scene.job("child")))
        .job_with_policy(optional, BatchPolicy::Ignore)
        .on_success(scene.job("success"))
        .on_complete(scene.job("complete"));
    let id = scene.client().await.enqueue_batch(batch).await.unwrap();
    let status = scene.until_complete(&id).await;
    let success = scene.runs_of("success");
    assert_eq!(success.len(), 1);
    assert_eq!(success[0].failed, optional_id);
    assert_eq!(scene.runs_of("complete").len(), 1);
    assert_eq!(
        (
            status.total,
            status.succeeded,
            status.failed,
            status.ignored
        ),
        (6, 5, 1, 1)
    );
    let text = scene.cli(&["batch", &id, "--group", &scene.group]);
    assert!(text.contains("failed 1 (1 ignored)"), "{text}");
}
