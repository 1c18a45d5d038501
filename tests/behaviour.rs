//! Worker behaviour against a real Redis: strict priority, retries with backoff, dead jobs with
//! their reason, delayed jobs, two workers sharing a backlog, duplicate task names.

mod support;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use streamworker::{
    Backoff, Job, JobContext, JobState, Priority, State, TaskError, TaskOptions, Worker,
};
use support::inspect::{pending_count, stream_entries, zcard};
use support::keys::{key, unique_group};
use support::seed::xadd;
use support::server::RedisServer;
use support::wait::{until, wait_until};
use support::workers::{Running, client};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tag {
    name: String,
}

/// What handlers saw, shared with the test.
#[derive(Clone, Default)]
struct Seen {
    runs: Arc<Mutex<Vec<(String, u32, Instant)>>>,
}

impl Seen {
    fn names(&self) -> Vec<String> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }
    fn len(&self) -> usize {
        self.runs.lock().unwrap().len()
    }
}

async fn record(tag: Tag, ctx: JobContext, State(seen): State<Seen>) -> Result<(), TaskError> {
    seen.runs
        .lock()
        .unwrap()
        .push((tag.name, ctx.attempt(), Instant::now()));
    Ok(())
}

/// Fails until its third attempt.
async fn flaky(tag: Tag, ctx: JobContext, State(seen): State<Seen>) -> Result<String, TaskError> {
    seen.runs
        .lock()
        .unwrap()
        .push((tag.name, ctx.attempt(), Instant::now()));
    if ctx.attempt() < 3 {
        return Err(TaskError::retry(format!(
            "not yet (attempt {})",
            ctx.attempt()
        )));
    }
    Ok("third time lucky".into())
}

async fn always_fails(_: Tag) -> Result<(), TaskError> {
    Err(TaskError::retry("the mail server said no"))
}

async fn refuses(_: Tag) -> Result<(), TaskError> {
    Err(TaskError::fatal("address does not exist"))
}

async fn panics(_: Tag) -> Result<(), TaskError> {
    panic!("handler bug")
}

fn start(url: &str, group: &str, concurrency: usize, seen: &Seen) -> Running {
    let worker = Worker::builder(url)
        .group(group)
        .concurrency(concurrency)
        .backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ))
        .state(seen.clone())
        .task("record", record)
        .task("flaky", flaky)
        .task("always_fails", always_fails)
        .task("refuses", refuses)
        .task("panics", panics)
        .build()
        .unwrap();
    Running::worker(worker)
}

fn tag(name: impl Into<String>) -> Tag {
    Tag { name: name.into() }
}

fn dead_entries(redis: &RedisServer, group: &str) -> Vec<HashMap<String, String>> {
    stream_entries(&mut redis.conn(), &key(group, "dead"))
}

#[tokio::test]
async fn high_runs_before_default_before_low() {
    let redis = RedisServer::start();
    let group = unique_group("prio");
    let client = client(&redis).await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        for (p, name) in [
            (Priority::Low, "low"),
            (Priority::Default, "default"),
            (Priority::High, "high"),
        ] {
            jobs.push(
                Job::new(&group, "record", &tag(format!("{name}-{i}")))
                    .unwrap()
                    .priority(p),
            );
        }
    }
    client.enqueue_many(jobs).await.unwrap();
    let seen = Seen::default();
    let worker = start(&redis.url(), &group, 1, &seen);
    wait_until(Duration::from_secs(10), "15 jobs to run", || {
        let n = seen.len();
        async move { n == 15 }
    })
    .await;
    worker.stop().await;
    let order: Vec<String> = seen
        .names()
        .iter()
        .map(|n| n.split('-').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = ["high", "default", "low"]
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.to_string(), 5))
        .collect();
    assert_eq!(order, expected);
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_until_it_succeeds() {
    let redis = RedisServer::start();
    let group = unique_group("retry");
    let client = client(&redis).await;
    let seen = Seen::default();
    let worker = start(&redis.url(), &group, 4, &seen);
    let id = client
        .enqueue(
            Job::new(&group, "flaky", &tag("f"))
                .unwrap()
                .keep_result(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let status = client
        .wait_for_result(&group, &id, Duration::from_secs(10))
        .await
        .unwrap();
    worker.stop().await;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.attempt, 3);
    assert_eq!(
        status.result_json::<String>().unwrap().unwrap(),
        "third time lucky"
    );
    assert_eq!(status.last_error.as_deref(), Some("not yet (attempt 2)"));
    let runs = seen.runs.lock().unwrap().clone();
    assert_eq!(runs.iter().map(|r| r.1).collect::<Vec<_>>(), vec![1, 2, 3]);
    // Backoff ceilings are 50 ms then 100 ms, jitter draws from [ceiling/2, ceiling].
    assert!(
        runs[1].2 - runs[0].2 >= Duration::from_millis(25),
        "{:?}",
        runs[1].2 - runs[0].2
    );
    assert!(
        runs[2].2 - runs[1].2 >= Duration::from_millis(50),
        "{:?}",
        runs[2].2 - runs[1].2
    );
    assert_eq!(zcard(&mut redis.conn(), &key(&group, "delayed")), 0);
}

#[tokio::test]
async fn jobs_out_of_attempts_or_refused_land_in_dead_with_their_reason() {
    let redis = RedisServer::start();
    let group = unique_group("dead");
    let client = client(&redis).await;
    let seen = Seen::default();
    let worker = start(&redis.url(), &group, 4, &seen);
    let exhausted = client
        .enqueue(
            Job::new(&group, "always_fails", &tag("x"))
                .unwrap()
                .max_retries(2)
                .keep_result(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let fatal = client
        .enqueue(Job::new(&group, "refuses", &tag("y")).unwrap())
        .await
        .unwrap();
    let panicked = client
        .enqueue(
            Job::new(&group, "panics", &tag("z"))
                .unwrap()
                .max_retries(0),
        )
        .await
        .unwrap();
    let status = client
        .wait_for_result(&group, &exhausted, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status.state, JobState::Dead);
    assert_eq!(status.attempt, 3);
    wait_until(Duration::from_secs(10), "three dead jobs", || {
        let n = dead_entries(&redis, &group).len();
        async move { n == 3 }
    })
    .await;
    worker.stop().await;
    let dead: HashMap<String, HashMap<String, String>> = dead_entries(&redis, &group)
        .into_iter()
        .map(|e| (e["id"].clone(), e))
        .collect();
    assert_eq!(
        dead[exhausted.as_str()]["reason"],
        "failed after 3 attempts: the mail server said no"
    );
    assert_eq!(dead[exhausted.as_str()]["attempt"], "3");
    assert_eq!(
        dead[fatal.as_str()]["reason"],
        "failed without retry: address does not exist"
    );
    assert_eq!(
        dead[panicked.as_str()]["reason"],
        "failed after 1 attempt: panicked: handler bug"
    );
    for entry in dead.values() {
        assert_eq!(entry["priority"], "default");
        assert!(
            entry.contains_key("args_msgpack") && entry.contains_key("task"),
            "original fields are kept: {entry:?}"
        );
    }
}

#[tokio::test]
async fn unregistered_tasks_and_undecodable_args_go_to_dead_and_the_worker_keeps_serving() {
    let redis = RedisServer::start();
    let group = unique_group("bad");
    let client = client(&redis).await;
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    let unknown = client
        .enqueue(Job::new(&group, "nope", &tag("a")).unwrap())
        .await
        .unwrap();
    let wrong_shape = client
        .enqueue(Job::from_json(&group, "record", r#"{"nom":1}"#).unwrap())
        .await
        .unwrap();
    let garbage = xadd(
        &mut conn,
        &stream,
        &[("task", "record"), ("args", "{not json")],
    );
    let no_task = xadd(&mut conn, &stream, &[("args", "{}")]);
    let bad_enc = xadd(
        &mut conn,
        &stream,
        &[("task", "record"), ("args", "{}"), ("enc", "pickle")],
    );
    let both_args: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("task")
        .arg("record")
        .arg("args")
        .arg(r#"{"name":"json"}"#)
        .arg("args_msgpack")
        .arg(rmp_serde::to_vec_named(&tag("msgpack")).unwrap())
        .query(&mut conn)
        .unwrap();
    // An entry as earlier versions of `Job::new` wrote it, still in Redis after an upgrade.
    let _legacy: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("task")
        .arg("record")
        .arg("args")
        .arg(rmp_serde::to_vec_named(&tag("legacy")).unwrap())
        .arg("id")
        .arg(streamworker::JobId::generate().as_str())
        .arg("enc")
        .arg("msgpack")
        .query(&mut conn)
        .unwrap();
    let good = client
        .enqueue(Job::new(&group, "record", &tag("after")).unwrap())
        .await
        .unwrap();

    let seen = Seen::default();
    let worker = start(&redis.url(), &group, 1, &seen);
    wait_until(
        Duration::from_secs(10),
        "the good jobs to run and six to be dead",
        || {
            let done = seen.names() == vec!["legacy".to_string(), "after".to_string()]
                && dead_entries(&redis, &group).len() == 6;
            async move { done }
        },
    )
    .await;
    worker.stop().await;
    let reasons: HashMap<String, String> = dead_entries(&redis, &group)
        .into_iter()
        .map(|e| (e["id"].clone(), e["reason"].clone()))
        .collect();
    assert!(
        reasons[unknown.as_str()].starts_with("unregistered task \"nope\""),
        "{reasons:?}"
    );
    assert!(
        reasons[wrong_shape.as_str()].contains("args do not decode"),
        "{reasons:?}"
    );
    assert!(
        reasons[&garbage].contains("args do not decode"),
        "{reasons:?}"
    );
    assert_eq!(reasons[&no_task], "missing field task");
    assert!(
        reasons[&bad_enc].starts_with("unknown enc \"pickle\""),
        "{reasons:?}"
    );
    assert!(
        reasons[&both_args].starts_with("both args and args_msgpack"),
        "{reasons:?}"
    );
    assert!(!reasons.contains_key(good.as_str()));
    assert_eq!(
        stream_entries(&mut conn, &stream).len(),
        0,
        "nothing left waiting"
    );
    assert_eq!(
        pending_count(&mut conn, &stream, &group),
        0,
        "nothing left pending"
    );
}

#[tokio::test]
async fn a_delayed_job_starts_after_and_close_to_its_due_time() {
    let redis = RedisServer::start();
    let group = unique_group("delay");
    let client = client(&redis).await;
    let seen = Seen::default();
    let worker = start(&redis.url(), &group, 2, &seen);
    // Let the worker settle into its idle wait, so the wake-up path is what is measured.
    let mut conn = redis.conn();
    until("the worker to join the group", || {
        let groups: redis::Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key(&group, "default"))
            .query(&mut conn)
            .unwrap_or(redis::Value::Nil);
        matches!(groups, redis::Value::Array(ref g) if !g.is_empty())
    })
    .await;
    let delays = [300u64, 600, 150];
    let mut due = HashMap::new();
    for (i, ms) in delays.iter().enumerate() {
        let at = SystemTime::now() + Duration::from_millis(*ms);
        due.insert(format!("d{i}"), at);
        client
            .enqueue(
                Job::new(&group, "record", &tag(format!("d{i}")))
                    .unwrap()
                    .at(at),
            )
            .await
            .unwrap();
    }
    wait_until(Duration::from_secs(10), "three delayed jobs to run", || {
        let n = seen.len();
        async move { n == 3 }
    })
    .await;
    worker.stop().await;
    let started_us = |at: Instant| {
        let wall = SystemTime::now() - at.elapsed();
        wall.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
    };
    for (name, _, at) in seen.runs.lock().unwrap().iter() {
        // Due times are not whole milliseconds: they are stored rounded up, so a job never
        // starts before the instant asked for. 100 µs allow for reading the start's wall time
        // back from an Instant.
        let due_us = due[name].duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
        let lateness = started_us(*at) - due_us;
        assert!(
            lateness >= -100,
            "{name} started {}µs before its due time",
            -lateness
        );
        assert!(
            lateness < 250_000,
            "{name} started {lateness}µs after its due time"
        );
    }
    assert_eq!(seen.names(), vec!["d2", "d0", "d1"], "in due order");
}

#[tokio::test]
async fn two_workers_share_a_backlog_and_run_each_job_once() {
    let redis = RedisServer::start();
    let group = unique_group("share");
    let client = client(&redis).await;
    let jobs: Vec<Job> = (0..600)
        .map(|i| Job::new(&group, "record", &tag(format!("j{i}"))).unwrap())
        .collect();
    client.enqueue_many(jobs).await.unwrap();
    let (a, b) = (Seen::default(), Seen::default());
    let wa = start(&redis.url(), &group, 8, &a);
    let wb = start(&redis.url(), &group, 8, &b);
    wait_until(Duration::from_secs(20), "600 runs", || {
        let n = a.len() + b.len();
        async move { n >= 600 }
    })
    .await;
    wa.stop().await;
    wb.stop().await;
    let mut all: Vec<String> = a.names().into_iter().chain(b.names()).collect();
    assert_eq!(all.len(), 600, "no job ran twice");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 600, "every job ran");
    assert!(
        a.len() > 0 && b.len() > 0,
        "both workers took work: {} and {}",
        a.len(),
        b.len()
    );
}

#[test]
fn a_task_name_registered_twice_is_refused_naming_both_handlers() {
    let err = Worker::builder("redis://127.0.0.1:1")
        .group("g")
        .task("send", always_fails)
        .task("send", refuses)
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("\"send\" is registered twice"), "{text}");
    assert!(
        text.contains("always_fails") && text.contains("refuses"),
        "{text}"
    );
}

#[test]
fn bad_worker_settings_say_what_to_do() {
    let no_group = Worker::builder("redis://127.0.0.1:1")
        .task("t", refuses)
        .build()
        .unwrap_err();
    assert!(no_group.to_string().contains("add .group"), "{no_group}");
    let bad_group = Worker::builder("redis://127.0.0.1:1")
        .group("a b")
        .task("t", refuses)
        .build()
        .unwrap_err();
    assert!(
        bad_group.to_string().contains("invalid group name \"a b\""),
        "{bad_group}"
    );
    let no_task = Worker::builder("redis://127.0.0.1:1")
        .group("g")
        .build()
        .unwrap_err();
    assert!(
        no_task.to_string().contains("no task registered"),
        "{no_task}"
    );
}

/// Retry limits come from the job, else its task's options, else the worker.
#[tokio::test]
async fn retry_limits_come_from_the_job_then_the_task_then_the_worker() {
    let redis = RedisServer::start();
    let group = unique_group("limits");
    let client = client(&redis).await;
    let worker = Worker::builder(redis.url())
        .group(&group)
        .backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(20),
        ))
        .max_retries(0)
        .task_with("limited", always_fails, TaskOptions::new().max_retries(2))
        .task("unlimited", always_fails)
        .build()
        .unwrap();
    let worker = Running::worker(worker);
    let keep = Duration::from_secs(60);
    let job = |task: &str| Job::new(&group, task, &tag("x")).unwrap().keep_result(keep);
    let by_task = client.enqueue(job("limited")).await.unwrap();
    let by_job = client.enqueue(job("limited").max_retries(1)).await.unwrap();
    let by_worker = client.enqueue(job("unlimited")).await.unwrap();
    let mut attempts = Vec::new();
    for id in [&by_task, &by_job, &by_worker] {
        let status = client
            .wait_for_result(&group, id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(status.state, JobState::Dead);
        attempts.push(status.attempt);
    }
    worker.stop().await;
    assert_eq!(attempts, vec![3, 2, 1], "task 2 retries, job 1, worker 0");
}
