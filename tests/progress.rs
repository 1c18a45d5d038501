//! Progress: a handler's `ctx.progress(percent, message)` shows in the status API and in
//! `streamworker job ID` while the job runs, and a worker that lost the job records nothing.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::admin::Admin;
use streamworker::{Job, JobContext, JobState, TaskError, Worker};
use support::server::RedisServer;
use support::wait::{WAIT, wait_until};
use support::workers::{Running, client};
use tokio::sync::{Notify, mpsc};

/// What the handler does between its two reports: wait for the test.
#[derive(Clone, Default)]
struct Gate {
    go: Arc<Notify>,
    second_report: Arc<Mutex<Option<mpsc::UnboundedSender<bool>>>>,
}

async fn steps(_: serde_json::Value, ctx: JobContext, gate: Gate) -> Result<(), TaskError> {
    assert!(ctx.progress(40, "resized 2 of 5").await.unwrap());
    gate.go.notified().await;
    let recorded = ctx.progress(80, "resized 4 of 5").await.unwrap();
    if let Some(tx) = gate.second_report.lock().unwrap().as_ref() {
        let _ = tx.send(recorded);
    }
    Ok(())
}

fn worker(url: &str, group: &str, gate: &Gate) -> Running {
    let gate = gate.clone();
    Running::worker(
        Worker::builder(url)
            .group(group)
            .task("steps", move |args: serde_json::Value, ctx: JobContext| {
                steps(args, ctx, gate.clone())
            })
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn progress_shows_in_the_status_api_and_the_cli_while_the_job_runs() {
    let redis = RedisServer::start();
    let client = client(&redis).await;
    let gate = Gate::default();
    let (tx, mut second) = mpsc::unbounded_channel();
    *gate.second_report.lock().unwrap() = Some(tx);
    let worker = worker(&redis.url(), "g", &gate);
    let id = client
        .enqueue(
            Job::from_json("g", "steps", "{}")
                .unwrap()
                .keep_result(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    wait_until(WAIT, "the status shows 40 %", || async {
        let status = client.status("g", &id).await.unwrap();
        status.is_some_and(|s| {
            s.progress
                .is_some_and(|p| p.percent == 40 && p.message == "resized 2 of 5")
        })
    })
    .await;
    let status = client.status("g", &id).await.unwrap().unwrap();
    assert!(matches!(status.state, JobState::Running { .. }));
    assert!(status.progress.unwrap().updated_ms > 0);

    let shown = support::cli::ok(&redis, &["job", id.as_str(), "--group", "g"]).await;
    assert!(shown.contains("progress:   40% resized 2 of 5"), "{shown}");
    let json = support::cli::json(&redis, &["job", id.as_str(), "--group", "g", "--json"]).await;
    assert_eq!(json["progress"]["percent"], 40);

    gate.go.notify_one();
    assert!(
        second.recv().await.unwrap(),
        "the second report was recorded"
    );
    wait_until(
        WAIT,
        "the job succeeded, its last progress kept",
        || async {
            let status = client.status("g", &id).await.unwrap().unwrap();
            status.state == JobState::Succeeded && status.progress.is_some_and(|p| p.percent == 80)
        },
    )
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_worker_that_lost_the_job_records_no_progress() {
    let redis = RedisServer::start();
    let client = client(&redis).await;
    let gate = Gate::default();
    let (tx, mut second) = mpsc::unbounded_channel();
    *gate.second_report.lock().unwrap() = Some(tx);
    let worker = worker(&redis.url(), "g", &gate);
    let id = client
        .enqueue(Job::from_json("g", "steps", "{}").unwrap())
        .await
        .unwrap();
    let admin = Admin::connect(&redis.url()).await.unwrap();
    wait_until(WAIT, "the first report", || async {
        admin
            .job("g", id.as_str())
            .await
            .is_ok_and(|r| r.progress.is_some_and(|p| p.percent == 40))
    })
    .await;
    // Another consumer takes the entry over, as a reaper would after a stall.
    let report = admin.job("g", id.as_str()).await.unwrap();
    let streamworker::admin::JobPlace::Running { entry_id, .. } = report.place else {
        panic!("running: {report:?}");
    };
    let mut conn = redis.conn();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg("streamworker:{g}:default")
        .arg("g")
        .arg("thief")
        .arg(0)
        .arg(&entry_id)
        .query(&mut conn)
        .unwrap();
    gate.go.notify_one();
    assert!(
        !second.recv().await.unwrap(),
        "the second report was refused"
    );
    let report = admin.job("g", id.as_str()).await.unwrap();
    assert_eq!(
        report.progress.unwrap().percent,
        40,
        "the report stayed at 40 %"
    );
    worker.stop().await;
}
