//! Enqueue from Rust → processed by a worker → result kept; status and wait_for_result.

mod support;

use serde::{Deserialize, Serialize};
use std::time::Duration;
use streamworker::{Client, Job, JobState, TaskError, Worker};
use support::inspect::{keys, pending_count, pttl, stream_entries, xlen, zcard};
use support::keys::{key, unique_group};
use support::server::RedisServer;
use support::wait::until;
use support::workers::{Running, client};

#[derive(Debug, Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

async fn add(args: Add) -> Result<i64, TaskError> {
    Ok(args.a + args.b)
}

/// Starts a worker for `group` with `add` registered.
fn spawn_worker(url: &str, group: &str) -> Running {
    Running::worker(
        Worker::builder(url)
            .group(group)
            .task("add", add)
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_rust_job_runs_and_keeps_its_result() {
    let redis = RedisServer::start();
    let group = unique_group("life");
    let client = client(&redis).await;
    let job = Job::new(&group, "add", &Add { a: 2, b: 40 })
        .unwrap()
        .keep_result(Duration::from_secs(60));
    let announced = job.id().clone();
    let id = client.enqueue(job).await.unwrap();
    assert_eq!(id, announced, "the id is known before submission");

    let queued = client.status(&group, &id).await.unwrap().expect("tracked");
    assert_eq!(queued.state, JobState::Queued);

    let worker = spawn_worker(&redis.url(), &group);
    let status = client
        .wait_for_result(&group, &id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.attempt, 1);
    assert_eq!(status.result_json::<i64>().unwrap().unwrap(), 42);

    // The stream entry is gone and nothing is left pending.
    let mut conn = redis.conn();
    let stream = key(&group, "default");
    assert_eq!(xlen(&mut conn, &stream), 0);
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
    let ttl = pttl(&mut conn, &key(&group, &format!("job:{id}")));
    assert!(
        ttl > 0 && ttl <= 60_000,
        "result kept for keep_result, got PTTL {ttl}"
    );

    worker.stop().await;
}

#[tokio::test]
async fn jobs_that_keep_no_result_leave_nothing_behind() {
    let redis = RedisServer::start();
    let group = unique_group("life");
    let client = client(&redis).await;
    let id = client
        .enqueue(Job::new(&group, "add", &Add { a: 1, b: 1 }).unwrap())
        .await
        .unwrap();
    assert!(
        client.status(&group, &id).await.unwrap().is_none(),
        "untracked jobs have no status hash"
    );

    let worker = spawn_worker(&redis.url(), &group);
    let mut conn = redis.conn();
    let stream = key(&group, "default");
    until("the job to be finished", || xlen(&mut conn, &stream) == 0).await;
    let status = keys(&mut conn, &key(&group, "job:*"));
    assert!(status.is_empty(), "no status hash was written: {status:?}");
    worker.stop().await;
}

#[tokio::test]
async fn wait_for_result_times_out_while_no_worker_runs() {
    let redis = RedisServer::start();
    let group = unique_group("life");
    let client = client(&redis).await;
    let id = client
        .enqueue(
            Job::new(&group, "add", &Add { a: 1, b: 2 })
                .unwrap()
                .keep_result(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let err = client
        .wait_for_result(&group, &id, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err, streamworker::Error::WaitTimeout { .. }),
        "{err}"
    );
    let untracked = client
        .enqueue(Job::new(&group, "add", &Add { a: 1, b: 2 }).unwrap())
        .await
        .unwrap();
    let err = client
        .wait_for_result(&group, &untracked, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("keep_result"), "{err}");
}

#[tokio::test]
async fn bulk_enqueue_is_one_call_and_every_job_runs() {
    let redis = RedisServer::start();
    let group = unique_group("bulk");
    let client = client(&redis).await;
    let jobs: Vec<Job> = (0..2500)
        .map(|i| Job::new(&group, "add", &Add { a: i, b: 0 }).unwrap())
        .collect();
    let ids = client.enqueue_many(jobs).await.unwrap();
    assert_eq!(ids.len(), 2500);
    let mut conn = redis.conn();
    let stream = key(&group, "default");
    assert_eq!(xlen(&mut conn, &stream), 2500);
    let stored: Vec<String> = stream_entries(&mut conn, &stream)
        .into_iter()
        .map(|e| e["id"].clone())
        .collect();
    let wanted: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    assert_eq!(stored, wanted, "every id stored, in order");
}

/// A bulk of several pipelines (1,000 jobs each) mixing plain, delayed and unique jobs: each
/// job's outcome comes back in its place, whichever pipeline it went in.
#[tokio::test]
async fn a_bulk_over_several_pipelines_reports_each_job_in_its_place() {
    let redis = RedisServer::start();
    let group = unique_group("bulkmix");
    let client = client(&redis).await;
    let jobs: Vec<Job> = (0..2100)
        .map(|i| {
            let job = Job::new(&group, "add", &Add { a: i, b: 0 }).unwrap();
            match i % 700 {
                5 => job.unique_key("one").unique_for(Duration::from_secs(60)),
                9 => job.delay(Duration::from_secs(60)),
                _ => job,
            }
        })
        .collect();
    let own: Vec<String> = jobs.iter().map(|j| j.id().to_string()).collect();
    let ids: Vec<String> = client
        .enqueue_many(jobs)
        .await
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        // The unique jobs in the second and third pipelines find the first one's lock.
        let wanted = if i % 700 == 5 { &own[5] } else { &own[i] };
        assert_eq!(id, wanted, "job {i}");
    }
    let mut conn = redis.conn();
    assert_eq!(xlen(&mut conn, &key(&group, "default")), 2100 - 3 - 2);
    assert_eq!(zcard(&mut conn, &key(&group, "delayed")), 3);
}

#[tokio::test]
async fn atomic_enqueue_stores_all_or_none() {
    let redis = RedisServer::start();
    let emails = unique_group("atomic");
    let reports = unique_group("atomic");
    let client = client(&redis).await;
    let batch = |n: i64| {
        vec![
            Job::new(&emails, "add", &Add { a: n, b: 0 }).unwrap(),
            Job::new(&reports, "add", &Add { a: n, b: 1 })
                .unwrap()
                .delay(Duration::from_secs(60)),
            Job::new(&reports, "add", &Add { a: n, b: 2 })
                .unwrap()
                .keep_result(Duration::from_secs(60)),
        ]
    };
    let mut conn = redis.conn();
    let count = |conn: &mut redis::Connection| {
        (
            xlen(conn, &key(&emails, "default")),
            xlen(conn, &key(&reports, "default")),
            zcard(conn, &key(&reports, "delayed")),
        )
    };

    client.enqueue_atomic(batch(1)).await.unwrap();
    assert_eq!(count(&mut conn), (1, 1, 1));

    // Redis refusing writes (out of memory) mid-batch must leave nothing of the batch behind.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut conn)
        .unwrap();
    let err = client.enqueue_atomic(batch(2)).await.unwrap_err();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut conn)
        .unwrap();
    assert!(
        err.to_string().contains("OOM") || err.to_string().contains("EXECABORT"),
        "{err}"
    );
    assert_eq!(
        count(&mut conn),
        (1, 1, 1),
        "a refused atomic batch stores nothing"
    );
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error_without_the_password() {
    let err = Client::connect("redis://user:hunter2@127.0.0.1:1")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to Redis at redis://user:***@127.0.0.1:1"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn the_same_delayed_job_enqueued_twice_is_refused_not_overwritten() {
    let redis = RedisServer::start();
    let group = unique_group("twice");
    let client = client(&redis).await;
    let job = Job::new(&group, "add", &Add { a: 1, b: 2 })
        .unwrap()
        .delay(Duration::from_secs(60));
    client.enqueue(job.clone()).await.unwrap();
    let err = client.enqueue(job.clone()).await.unwrap_err();
    assert!(err.to_string().contains("already scheduled"), "{err}");
    let err = client
        .enqueue_many(vec![
            Job::new(&group, "add", &Add { a: 3, b: 4 }).unwrap(),
            job,
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already scheduled"), "{err}");
    assert_eq!(zcard(&mut redis.conn(), &key(&group, "delayed")), 1);
}

#[tokio::test]
async fn a_zero_timeout_is_refused_at_enqueue() {
    let redis = RedisServer::start();
    let client = client(&redis).await;
    let job = Job::new("g", "add", &Add { a: 1, b: 2 })
        .unwrap()
        .timeout(Duration::ZERO);
    let err = client.enqueue(job).await.unwrap_err();
    assert!(
        err.to_string().contains("timeout must be more than 0"),
        "{err}"
    );
}
