//! Unique jobs (the lock taken at enqueue, released at the end) and cancellation of waiting,
//! scheduled, running, finished and unknown jobs, from Rust and from the CLI.

mod support;

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use streamworker::{
    CancelOutcome, Client, Job, JobContext, JobId, JobState, State, TaskError, Worker,
};
use support::cli::{run, text};
use support::inspect::{exists, keys, pending_count, xlen, zcard};
use support::keys::{key, unique_group};
use support::process::WorkerProcess;
use support::readme::add_acl_user;
use support::seed::xadd;
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};
use support::workers::{Running, client};

const KEEP: Duration = Duration::from_secs(600);

/// The uniqueness locks of `group`: keys `streamworker:{G}:unique:*`.
fn unique_locks(conn: &mut redis::Connection, group: &str) -> Vec<String> {
    keys(conn, &key(group, "unique:*"))
}

/// Waits until a worker listens on the group's cancel channel (it subscribes as it starts).
async fn cancel_listener(redis: &RedisServer, group: &str) {
    let channel = key(group, "cancel");
    let mut conn = redis.conn();
    until("a worker to listen for cancel requests", || {
        let (_, n): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(&mut conn)
            .unwrap();
        n >= 1
    })
    .await;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    user: u32,
}

/// Counts runs per task; `slow` runs until cancelled, telling the test it started.
#[derive(Clone, Default)]
struct Seen {
    runs: Arc<AtomicUsize>,
    started: Arc<AtomicBool>,
    saw_cancellation: Arc<AtomicBool>,
}

async fn build(report: Report, State(seen): State<Seen>) -> Result<u32, TaskError> {
    seen.runs.fetch_add(1, Ordering::SeqCst);
    Ok(report.user * 10)
}

async fn refuse(_: Report) -> Result<(), TaskError> {
    Err(TaskError::fatal("no such user"))
}

async fn slow(_: Report, ctx: JobContext, State(seen): State<Seen>) -> Result<(), TaskError> {
    // The handler's future is dropped on cancel; a task of its own watches the token.
    let token = ctx.cancellation().clone();
    let flag = seen.saw_cancellation.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        flag.store(true, Ordering::SeqCst);
    });
    seen.started.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(())
}

fn start_worker(url: &str, group: &str, seen: &Seen) -> Running {
    let worker = Worker::builder(url)
        .group(group)
        .shutdown_grace(Duration::from_millis(100))
        .state(seen.clone())
        .task("build", build)
        .task("refuse", refuse)
        .task("slow", slow)
        .build()
        .unwrap();
    Running::worker(worker)
}

fn report(group: &str, task: &str, user: u32) -> Job {
    Job::new(group, task, &Report { user }).unwrap()
}

#[tokio::test]
async fn a_unique_job_enqueued_twice_is_stored_once_and_again_after_it_finished() {
    let redis = RedisServer::start();
    let group = unique_group("unique");
    let client = client(&redis).await;
    let mut conn = redis.conn();
    let stream = key(&group, "default");

    let first = report(&group, "build", 7)
        .unique_for(Duration::from_secs(3600))
        .keep_result(KEEP);
    let first_id = client.enqueue(first).await.unwrap();
    let second = report(&group, "build", 7).unique_for(Duration::from_secs(3600));
    let second_own = second.id().clone();
    let second_id = client.enqueue(second).await.unwrap();
    assert_eq!(
        second_id, first_id,
        "the duplicate yields the first job's id"
    );
    assert_ne!(second_own, first_id);
    assert_eq!(xlen(&mut conn, &stream), 1, "one job stored");

    // The CLI (JSON args) computes the same key as Rust (MessagePack args).
    let url = redis.url();
    let out = run(&[
        "--redis",
        &url,
        "enqueue",
        "--group",
        &group,
        "--task",
        "build",
        "--args",
        r#"{ "user": 7 }"#,
        "--unique-for",
        "1h",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), first_id.as_str());
    assert!(
        text(&out.stderr).contains("nothing enqueued"),
        "{}",
        text(&out.stderr)
    );
    // Other arguments are another job.
    let other_id = client
        .enqueue(report(&group, "build", 8).unique_for(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_ne!(other_id, first_id);
    assert_eq!(xlen(&mut conn, &stream), 2);
    assert_eq!(unique_locks(&mut conn, &group).len(), 2);

    let seen = Seen::default();
    let worker = start_worker(&redis.url(), &group, &seen);
    let done = client
        .wait_for_result(&group, &first_id, WAIT)
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    until("both jobs ran and released their locks", || {
        unique_locks(&mut conn, &group).is_empty()
    })
    .await;
    assert_eq!(seen.runs.load(Ordering::SeqCst), 2);

    // After it finished, the same call is a new job that runs.
    let again = report(&group, "build", 7)
        .unique_for(Duration::from_secs(3600))
        .keep_result(KEEP);
    let again_own = again.id().clone();
    let again_id = client.enqueue(again).await.unwrap();
    assert_eq!(again_id, again_own, "a new job once the first finished");
    let done = client
        .wait_for_result(&group, &again_id, WAIT)
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(seen.runs.load(Ordering::SeqCst), 3);
    worker.stop().await;
}

#[tokio::test]
async fn a_unique_lock_is_released_by_dead_jobs_and_expires_by_its_ttl() {
    let redis = RedisServer::start();
    let group = unique_group("unique-end");
    let client = client(&redis).await;

    // Explicit key: other arguments, same key, one job.
    let a = report(&group, "refuse", 1)
        .unique_key("account-1")
        .unique_for(Duration::from_secs(3600))
        .keep_result(KEEP);
    let a_id = client.enqueue(a).await.unwrap();
    let b = report(&group, "refuse", 2)
        .unique_key("account-1")
        .unique_for(Duration::from_secs(3600));
    assert_eq!(client.enqueue(b).await.unwrap(), a_id);

    // A key without a TTL, or an invalid key, is refused before anything is sent.
    let err = client
        .enqueue(report(&group, "refuse", 3).unique_key("k"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unique_for"), "{err}");
    let err = client
        .enqueue(
            report(&group, "refuse", 3)
                .unique_key("a b")
                .unique_for(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, streamworker::Error::InvalidName { .. }),
        "{err}"
    );

    let seen = Seen::default();
    let worker = start_worker(&redis.url(), &group, &seen);
    let dead = client.wait_for_result(&group, &a_id, WAIT).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);
    let mut conn = redis.conn();
    assert!(
        !exists(&mut conn, &key(&group, "unique:account-1")),
        "a dead job releases its lock"
    );
    worker.stop().await;

    // No worker: the lock lives until its TTL, then the same call is accepted again.
    let short = report(&group, "build", 9).unique_for(Duration::from_millis(300));
    let short_id = client.enqueue(short).await.unwrap();
    let dup = report(&group, "build", 9).unique_for(Duration::from_millis(300));
    assert_eq!(client.enqueue(dup).await.unwrap(), short_id);
    until("the lock to expire", || {
        unique_locks(&mut conn, &group).is_empty()
    })
    .await;
    let later = report(&group, "build", 9).unique_for(Duration::from_millis(300));
    let later_own = later.id().clone();
    assert_eq!(client.enqueue(later).await.unwrap(), later_own);
    assert_eq!(xlen(&mut conn, &key(&group, "default")), 2);
}

#[tokio::test]
async fn cancel_removes_waiting_and_scheduled_jobs_and_their_locks() {
    let redis = RedisServer::start();
    let group = unique_group("cancel-wait");
    let client = client(&redis).await;
    let mut conn = redis.conn();

    // Tracked and waiting: found through its status record.
    let waiting = client
        .enqueue(report(&group, "build", 1).keep_result(KEEP))
        .await
        .unwrap();
    // Scheduled, unique: removed from the delayed set, lock released.
    let scheduled = client
        .enqueue(
            report(&group, "build", 2)
                .delay(Duration::from_secs(3600))
                .unique_for(Duration::from_secs(7200))
                .keep_result(KEEP),
        )
        .await
        .unwrap();
    // Untracked, deep in a backlog of 2,500 jobs: found by the scan, across pages.
    let mut backlog: Vec<Job> = (0..2500)
        .map(|i| report(&group, "build", 100 + i))
        .collect();
    let needle = backlog[1700].id().clone();
    backlog[1700] = backlog[1700].clone().unique_for(Duration::from_secs(7200));
    client.enqueue_many(backlog).await.unwrap();
    // Typed into redis-cli: its id is its entry id.
    let fields = [("task", "build"), ("args", r#"{"user":5}"#)];
    let raw = xadd(&mut conn, &key(&group, "low"), &fields);
    assert_eq!(unique_locks(&mut conn, &group).len(), 2);

    assert_eq!(
        client.cancel(&group, &waiting).await.unwrap(),
        CancelOutcome::Removed {
            was_scheduled: false
        }
    );
    assert_eq!(
        client.cancel(&group, &scheduled).await.unwrap(),
        CancelOutcome::Removed {
            was_scheduled: true
        }
    );
    assert_eq!(
        client.cancel(&group, &needle).await.unwrap(),
        CancelOutcome::Removed {
            was_scheduled: false
        }
    );
    assert_eq!(
        client
            .cancel(&group, &JobId::parse(raw).unwrap())
            .await
            .unwrap(),
        CancelOutcome::Removed {
            was_scheduled: false
        }
    );

    assert_eq!(
        xlen(&mut conn, &key(&group, "default")),
        2499,
        "the backlog less the one cancelled"
    );
    assert_eq!(xlen(&mut conn, &key(&group, "low")), 0);
    assert_eq!(zcard(&mut conn, &key(&group, "delayed")), 0);
    assert!(!exists(&mut conn, &key(&group, "delayed:jobs")));
    assert!(unique_locks(&mut conn, &group).is_empty(), "locks released");
    for id in [&waiting, &scheduled] {
        let status = client.status(&group, id).await.unwrap().unwrap();
        assert_eq!(status.state, JobState::Cancelled);
    }
    // Cancelling again says it is over.
    assert_eq!(
        client.cancel(&group, &waiting).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobState::Cancelled)
    );
    // The scheduled job's unique call can be enqueued anew.
    let fresh = report(&group, "build", 2).unique_for(Duration::from_secs(7200));
    let fresh_own = fresh.id().clone();
    assert_eq!(client.enqueue(fresh).await.unwrap(), fresh_own);
}

#[tokio::test]
async fn cancel_stops_a_running_job_through_its_worker() {
    let redis = RedisServer::start();
    let group = unique_group("cancel-run");
    let client = client(&redis).await;
    let seen = Seen::default();
    let worker = start_worker(&redis.url(), &group, &seen);

    let id = client
        .enqueue(
            report(&group, "slow", 1)
                .unique_for(Duration::from_secs(3600))
                .keep_result(KEEP),
        )
        .await
        .unwrap();
    until("the slow job to start", || {
        seen.started.load(Ordering::SeqCst)
    })
    .await;
    cancel_listener(&redis, &group).await;
    match client.cancel(&group, &id).await.unwrap() {
        CancelOutcome::Requested { listeners, .. } => {
            assert!(listeners >= 1, "the worker listens")
        }
        other => panic!("expected Requested, got {other:?}"),
    }
    let status = client.wait_for_result(&group, &id, WAIT).await.unwrap();
    assert_eq!(status.state, JobState::Cancelled);
    assert!(
        seen.saw_cancellation.load(Ordering::SeqCst),
        "the token fired"
    );
    let mut conn = redis.conn();
    let stream = key(&group, "default");
    assert_eq!(xlen(&mut conn, &stream), 0, "the entry is deleted");
    assert_eq!(pending_count(&mut conn, &stream, &group), 0);
    assert!(unique_locks(&mut conn, &group).is_empty(), "lock released");
    assert_eq!(
        xlen(&mut conn, &key(&group, "dead")),
        0,
        "a cancelled job is not dead"
    );
    assert_eq!(
        client.cancel(&group, &id).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobState::Cancelled)
    );
    worker.stop().await;
}

#[tokio::test]
async fn cancel_from_the_cli_terminates_an_exec_child_and_explains_refusals() {
    let redis = RedisServer::start();
    let group = unique_group("cancel-cli");
    let url = redis.url();
    let out_dir = tempfile::tempdir().unwrap();
    // The command records its pid, then becomes `sleep` (same pid).
    let exec = r#"sh -c 'echo $$ > "$OUT/pid"; exec sleep 600'"#;
    let _worker = WorkerProcess::start(&url, out_dir.path(), &["--group", &group, "--exec", exec]);

    let enq = run(&[
        "--redis",
        &url,
        "enqueue",
        "--group",
        &group,
        "--task",
        "render",
        "--keep-result",
        "1h",
    ])
    .await;
    assert!(enq.status.success(), "{}", text(&enq.stderr));
    let id = text(&enq.stdout).trim().to_string();
    let pid_file = out_dir.path().join("pid");
    until("the command to start", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    })
    .await;
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();

    cancel_listener(&redis, &group).await;
    let cancel = run(&["--redis", &url, "cancel", &id, "--group", &group]).await;
    assert!(cancel.status.success(), "{}", text(&cancel.stderr));
    assert!(
        text(&cancel.stdout).contains("is running on")
            && text(&cancel.stdout).contains("asked it to stop"),
        "{}",
        text(&cancel.stdout)
    );
    wait_until(WAIT, "the child process to be gone", || {
        // Gone, or a zombie waiting to be reaped: either way it no longer runs.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let gone = stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z");
        async move { gone }
    })
    .await;
    let client = Client::connect(&url).await.unwrap();
    let job = JobId::parse(&id).unwrap();
    let status = client.wait_for_result(&group, &job, WAIT).await.unwrap();
    assert_eq!(status.state, JobState::Cancelled);

    // A finished job, and an unknown one: exit 1 and a message that says which.
    let again = run(&["--redis", &url, "cancel", &id, "--group", &group]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already ended (cancelled)"),
        "{}",
        text(&again.stderr)
    );
    let unknown = run(&[
        "--redis",
        &url,
        "cancel",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "--group",
        &group,
    ])
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("no such job in group"),
        "{}",
        text(&unknown.stderr)
    );
}

#[tokio::test]
async fn cancelling_a_finished_or_unknown_job_says_so() {
    let redis = RedisServer::start();
    let group = unique_group("cancel-done");
    let client = client(&redis).await;
    let seen = Seen::default();
    let worker = start_worker(&redis.url(), &group, &seen);
    let ok = client
        .enqueue(report(&group, "build", 1).keep_result(KEEP))
        .await
        .unwrap();
    let dead = client
        .enqueue(report(&group, "refuse", 1).keep_result(KEEP))
        .await
        .unwrap();
    client.wait_for_result(&group, &ok, WAIT).await.unwrap();
    client.wait_for_result(&group, &dead, WAIT).await.unwrap();
    worker.stop().await;

    assert_eq!(
        client.cancel(&group, &ok).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobState::Succeeded)
    );
    assert_eq!(
        client.cancel(&group, &dead).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobState::Dead)
    );
    assert_eq!(
        client.cancel(&group, &JobId::generate()).await.unwrap(),
        CancelOutcome::NotFound
    );
}

#[tokio::test]
async fn the_documented_acl_user_can_use_unique_jobs_cancel_and_schedules() {
    let redis = RedisServer::start();
    let url = add_acl_user(&redis, "pw-acl");
    let group = unique_group("acl-sched");
    let client = Client::connect(&url).await.unwrap();

    // Unique, scheduled, cancelled.
    let job = || {
        report(&group, "build", 1)
            .unique_for(Duration::from_secs(60))
            .delay(Duration::from_secs(60))
            .keep_result(KEEP)
    };
    let id = client.enqueue(job()).await.unwrap();
    assert_eq!(client.enqueue(job()).await.unwrap(), id);
    assert_eq!(
        client.cancel(&group, &id).await.unwrap(),
        CancelOutcome::Removed {
            was_scheduled: true
        }
    );

    // A running job cancelled through a worker connected as that user.
    let seen = Seen::default();
    let worker = start_worker(&url, &group, &seen);
    let slow_id = client
        .enqueue(report(&group, "slow", 1).keep_result(KEEP))
        .await
        .unwrap();
    until("the slow job to start", || {
        seen.started.load(Ordering::SeqCst)
    })
    .await;
    cancel_listener(&redis, &group).await;
    assert!(matches!(
        client.cancel(&group, &slow_id).await.unwrap(),
        CancelOutcome::Requested { listeners: 1.., .. }
    ));
    let status = client
        .wait_for_result(&group, &slow_id, WAIT)
        .await
        .unwrap();
    assert_eq!(status.state, JobState::Cancelled);
    worker.stop().await;

    // A scheduler: registers, takes ticks, lists.
    let scheduler = streamworker::Scheduler::new(&client).schedule(
        streamworker::Schedule::every(
            "acl-beat",
            Duration::from_secs(1),
            report(&group, "build", 2),
        )
        .unwrap(),
    );
    let scheduler = Running::scheduler(scheduler);
    wait_until(WAIT, "a tick enqueued as the ACL user", || {
        let client = client.clone();
        let group = group.clone();
        async move {
            client
                .schedules(&group)
                .await
                .unwrap()
                .first()
                .is_some_and(|s| s.last_job_id.is_some())
        }
    })
    .await;
    scheduler.stop().await;
}
