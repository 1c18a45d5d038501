//! Reading ahead (`prefetch`): a slow job does not hold back jobs read ahead behind it while
//! another worker is free, priority still decides what starts next, and a pause or a stop
//! sends what was read ahead back to its stream.

mod support;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamworker::{Job, Priority, State, TaskError, Worker};
use support::inspect::{pending_count, xlen};
use support::keys::{key, unique_group};
use support::server::RedisServer;
use support::wait::wait_until;
use support::workers::{Running, client};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sleep {
    name: String,
    ms: u64,
}

/// A run: the job's name, when it started, and when it ended.
type Run = (String, Instant, Option<Instant>);

/// Each run, shared with the test.
#[derive(Clone, Default)]
struct Seen {
    runs: Arc<Mutex<Vec<Run>>>,
}

impl Seen {
    fn started(&self) -> Vec<String> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }

    /// When the job of this name ended, if it did.
    fn ended(&self, name: &str) -> Option<Instant> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.0 == name)
            .and_then(|r| r.2)
    }
}

async fn sleep(job: Sleep, State(seen): State<Seen>) -> Result<(), TaskError> {
    let at = seen.runs.lock().unwrap().len();
    seen.runs
        .lock()
        .unwrap()
        .push((job.name.clone(), Instant::now(), None));
    tokio::time::sleep(Duration::from_millis(job.ms)).await;
    seen.runs.lock().unwrap()[at].2 = Some(Instant::now());
    Ok(())
}

fn worker(url: &str, group: &str, seen: &Seen) -> Running {
    let worker = Worker::builder(url)
        .group(group)
        .concurrency(1)
        .shutdown_grace(Duration::from_millis(100))
        .state(seen.clone())
        .task("sleep", sleep)
        .build()
        .unwrap();
    Running::worker(worker)
}

fn job(group: &str, name: &str, ms: u64, priority: Priority) -> Job {
    Job::new(
        group,
        "sleep",
        &Sleep {
            name: name.into(),
            ms,
        },
    )
    .unwrap()
    .priority(priority)
}

/// Clients blocked in a read (the idle workers' fetchers).
fn blocked_clients(redis: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query(&mut redis.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_slow_job_does_not_hold_back_the_jobs_read_ahead_behind_it() {
    let redis = RedisServer::start();
    let group = unique_group("hol");
    let client = client(&redis).await;
    let (a, b) = (Seen::default(), Seen::default());
    let wa = worker(&redis.url(), &group, &a);
    let wb = worker(&redis.url(), &group, &b);
    wait_until(Duration::from_secs(10), "both workers idle", || {
        let n = blocked_clients(&redis);
        async move { n >= 2 }
    })
    .await;
    // One 5-s job, then 20 of 10 ms, enqueued together: one idle worker is handed all 21.
    let mut jobs = vec![job(&group, "slow", 5_000, Priority::Default)];
    jobs.extend((0..20).map(|i| job(&group, &format!("short-{i}"), 10, Priority::Default)));
    let enqueued = Instant::now();
    client.enqueue_many(jobs).await.unwrap();
    let all_short_done = || {
        (0..20)
            .map(|i| format!("short-{i}"))
            .map(|name| a.ended(&name).or_else(|| b.ended(&name)))
            .collect::<Option<Vec<Instant>>>()
            .and_then(|ends| ends.into_iter().max())
    };
    wait_until(
        Duration::from_secs(4),
        "the 20 short jobs to finish",
        || {
            let done = all_short_done().is_some();
            async move { done }
        },
    )
    .await;
    let took = all_short_done().unwrap() - enqueued;
    assert!(
        took < Duration::from_millis(1500),
        "the 20 short jobs took {took:?} behind a 5-s job"
    );
    let mut short_runs: Vec<String> = a
        .started()
        .into_iter()
        .chain(b.started())
        .filter(|n| n.starts_with("short"))
        .collect();
    short_runs.sort();
    short_runs.dedup();
    assert_eq!(short_runs.len(), 20, "each short job ran, once");
    wa.stop().await;
    wb.stop().await;
}

#[tokio::test]
async fn a_high_job_starts_before_low_jobs_read_ahead() {
    let redis = RedisServer::start();
    let group = unique_group("prio-ahead");
    let client = client(&redis).await;
    let seen = Seen::default();
    let w = worker(&redis.url(), &group, &seen);
    wait_until(Duration::from_secs(10), "the worker idle", || {
        let n = blocked_clients(&redis);
        async move { n >= 1 }
    })
    .await;
    let mut jobs = vec![job(&group, "slow", 400, Priority::Low)];
    jobs.extend((0..10).map(|i| job(&group, &format!("low-{i}"), 1, Priority::Low)));
    client.enqueue_many(jobs).await.unwrap();
    // The slow job runs; the ten others were read with it and wait in the worker.
    wait_until(Duration::from_secs(5), "the slow job to start", || {
        let started = seen.started().contains(&"slow".to_string());
        async move { started }
    })
    .await;
    let low = key(&group, "low");
    assert_eq!(
        pending_count(&mut redis.conn(), &low, &group),
        11,
        "the ten quick jobs were read ahead with the slow one"
    );
    client
        .enqueue(job(&group, "high", 1, Priority::High))
        .await
        .unwrap();
    wait_until(Duration::from_secs(5), "12 runs", || {
        let n = seen.started().len();
        async move { n == 12 }
    })
    .await;
    let order = seen.started();
    assert_eq!(order[0], "slow");
    assert_eq!(
        order[1], "high",
        "the high job starts first when the slot frees: {order:?}"
    );
    w.stop().await;
    assert_eq!(xlen(&mut redis.conn(), &low), 0, "every low job ran");
}
