//! Stopping a worker: running jobs finish within the grace period; the rest are handed back to
//! their stream at once, with their id and without costing an attempt, and another worker runs
//! them. In process (the shutdown future), and as users stop the binary (SIGTERM, SIGINT).

mod support;

use serde::{Deserialize, Serialize};
use std::fs;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamworker::{Job, JobContext, State, TaskError, Worker};
use support::cli::enqueue;
use support::inspect::{hash, pending_count, stream_entries, xlen};
use support::keys::{key, unique_group};
use support::process::WorkerProcess;
use support::scene::Scene;
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};
use support::workers::{Running, client};

/// An `--exec` command that signals it started, then runs until `$OUT/go` exists (or `$OUT` is
/// gone: a failed test's killed worker leaves no endless orphan).
const BLOCK_UNTIL_GO: &str = r#"sh -c 'echo "$STREAMWORKER_ATTEMPT" >> "$OUT/attempts"; touch "$OUT/started"; while [ -d "$OUT" ] && [ ! -e "$OUT/go" ]; do sleep 0.01; done; echo finished'"#;

#[derive(Debug, Serialize, Deserialize)]
struct Sleep {
    ms: u64,
}

type Log = Arc<Mutex<Vec<String>>>;

async fn sleepy(args: Sleep, ctx: JobContext, State(log): State<Log>) -> Result<(), TaskError> {
    log.lock().unwrap().push(format!("start {}", ctx.job_id()));
    tokio::time::sleep(Duration::from_millis(args.ms)).await;
    log.lock().unwrap().push(format!("done {}", ctx.job_id()));
    Ok(())
}

/// Records the job without sleeping: the second worker's handler for the same task.
async fn quick(_: Sleep, ctx: JobContext, State(log): State<Log>) -> Result<(), TaskError> {
    log.lock().unwrap().push(format!("quick {}", ctx.job_id()));
    Ok(())
}

#[tokio::test]
async fn a_stop_lets_short_jobs_finish_and_hands_long_ones_back() {
    let redis = RedisServer::start();
    let group = unique_group("stop");
    let client = client(&redis).await;
    let log: Log = Log::default();
    let worker = Worker::builder(redis.url())
        .group(&group)
        .concurrency(4)
        .shutdown_grace(Duration::from_millis(300))
        .state(log.clone())
        .task("sleep", sleepy)
        .build()
        .unwrap();
    let worker = Running::worker(worker);

    let short = client
        .enqueue(Job::new(&group, "sleep", &Sleep { ms: 100 }).unwrap())
        .await
        .unwrap();
    let long = client
        .enqueue(Job::new(&group, "sleep", &Sleep { ms: 60_000 }).unwrap())
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "both jobs to start", || {
        let n = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("start"))
            .count();
        async move { n == 2 }
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), worker.stop())
        .await
        .expect("the stop completes soon after the grace period");
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.contains(&format!("done {short}")),
        "the short job finished: {lines:?}"
    );
    assert!(
        !lines.contains(&format!("done {long}")),
        "the long job was cut off: {lines:?}"
    );

    // The long job is back in its stream, with its id, and pending for nobody.
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let waiting = stream_entries(&mut conn, &stream);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["id"], long.as_str());
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);

    // Another worker starts it at once.
    let log2: Log = Log::default();
    let worker2 = Worker::builder(redis.url())
        .group(&group)
        .state(log2.clone())
        .task("sleep", quick)
        .build()
        .unwrap();
    let worker2 = Running::worker(worker2);
    wait_until(
        Duration::from_secs(5),
        "the handed-back job to run elsewhere",
        || {
            let ran = log2.lock().unwrap().contains(&format!("quick {long}"));
            async move { ran }
        },
    )
    .await;
    worker2.stop().await;
}

/// SIGTERM lets the running job finish (acked, result kept), then the worker exits 0.
#[tokio::test]
async fn sigterm_lets_the_running_job_finish_then_exits_0() {
    let redis = RedisServer::start();
    let group = unique_group("term");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", BLOCK_UNTIL_GO],
    );

    let id = enqueue(&redis, &group, &["--task", "slow", "--keep-result", "1h"]).await;
    until("the job to start", || out.path().join("started").exists()).await;
    worker.signal("TERM");
    until("the worker to stop fetching", || {
        worker.log().contains("stopping: no new jobs are fetched")
    })
    .await;
    assert!(worker.is_running(), "the worker waits for its running job");

    fs::write(out.path().join("go"), "").unwrap();
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(worker.log().contains("SIGTERM received"));
    let record = hash(&mut conn, &key(&group, &format!("job:{id}")));
    assert_eq!(
        record.get("state").map(String::as_str),
        Some("succeeded"),
        "{record:?}"
    );
    assert_eq!(
        record.get("result").map(String::as_str),
        Some("finished\n"),
        "{record:?}"
    );
    assert_eq!(xlen(&mut conn, &stream), 0);
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
}

/// SIGINT (Ctrl-C) stops an idle worker with exit code 0.
#[tokio::test]
async fn sigint_stops_an_idle_worker_with_exit_0() {
    let redis = RedisServer::start();
    let group = unique_group("int");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", "true"],
    );

    // A processed job shows the worker is up (its signal handlers installed).
    enqueue(&redis, &group, &["--task", "noop"]).await;
    until("the job to finish", || xlen(&mut conn, &stream) == 0).await;
    worker.signal("INT");
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(worker.log().contains("SIGINT received"));
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
}

/// A job still running when --shutdown-grace ends is handed back and the next worker runs it.
#[tokio::test]
async fn a_job_running_past_the_grace_period_is_handed_back_and_run_by_the_next_worker() {
    let redis = RedisServer::start();
    let group = unique_group("grace");
    let out = tempfile::tempdir().unwrap();
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let flags = [
        "--group",
        &group,
        "--shutdown-grace",
        "100ms",
        "--exec",
        BLOCK_UNTIL_GO,
    ];

    let id = enqueue(&redis, &group, &["--task", "slow", "--args", r#"{"n":1}"#]).await;
    let mut first = WorkerProcess::start(&redis.url(), out.path(), &flags);
    until("the job to start", || out.path().join("started").exists()).await;
    first.signal("TERM");
    let status = first.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");

    let entries = stream_entries(&mut conn, &stream);
    assert_eq!(entries.len(), 1, "handed back, not lost");
    assert_eq!(
        (entries[0]["id"].as_str(), entries[0]["args"].as_str()),
        (id.as_str(), r#"{"n":1}"#)
    );
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);

    fs::write(out.path().join("go"), "").unwrap();
    let _second = WorkerProcess::start(&redis.url(), out.path(), &flags);
    until("the next worker to finish the job", || {
        xlen(&mut conn, &stream) == 0
    })
    .await;
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
    assert_eq!(
        fs::read_to_string(out.path().join("attempts")).unwrap(),
        "1\n1\n",
        "a hand-back costs no attempt"
    );
    assert_eq!(xlen(&mut conn, &key(&group, "dead")), 0);
}

/// SIGTERM with jobs in flight: short jobs finish within the grace period, long ones are
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
