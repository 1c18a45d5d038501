//! Graceful stop: running jobs finish within the grace period; the rest are handed back to
//! their stream at once, with their id, and another worker runs them.

mod support;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::{Client, Job, JobContext, State, TaskError, Worker};
use support::{RedisServer, pending_count, stream_entries, unique_group, wait_until};
use tokio_util::sync::CancellationToken;

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
    let client = Client::connect(&redis.url()).await.unwrap();
    let log: Log = Log::default();
    let worker = Worker::builder(redis.url())
        .group(&group)
        .concurrency(4)
        .shutdown_grace(Duration::from_millis(300))
        .state(log.clone())
        .task("sleep", sleepy)
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));

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
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the stop completes soon after the grace period")
        .unwrap()
        .unwrap();
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
    let stream = format!("streamworker:{{{group}}}:default");
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
    let stop2 = CancellationToken::new();
    let running2 = tokio::spawn(worker2.run(stop2.clone().cancelled_owned()));
    wait_until(
        Duration::from_secs(5),
        "the handed-back job to run elsewhere",
        || {
            let ran = log2.lock().unwrap().contains(&format!("quick {long}"));
            async move { ran }
        },
    )
    .await;
    stop2.cancel();
    running2.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_worker_survives_a_flushed_script_cache() {
    let redis = RedisServer::start();
    let group = unique_group("noscript");
    let client = Client::connect(&redis.url()).await.unwrap();
    let log: Log = Log::default();
    let worker = Worker::builder(redis.url())
        .group(&group)
        .state(log.clone())
        .task("sleep", quick)
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    let first = client
        .enqueue(Job::new(&group, "sleep", &Sleep { ms: 0 }).unwrap())
        .await
        .unwrap();
    wait_until(Duration::from_secs(5), "the first job", || {
        let ran = log.lock().unwrap().contains(&format!("quick {first}"));
        async move { ran }
    })
    .await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.conn())
        .unwrap();
    let second = client
        .enqueue(
            Job::new(&group, "sleep", &Sleep { ms: 0 })
                .unwrap()
                .keep_result(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let status = client
        .wait_for_result(&group, &second, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        status.state,
        streamworker::JobState::Succeeded,
        "NOSCRIPT is reloaded, not a failure"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}
