//! The lifecycle on a real Redis Cluster (three masters, `tests/support/cluster.rs`): jobs from
//! Rust, the CLI and `redis-cli -c` run; groups on three masters are served by one worker; a
//! killed worker's job is rescued by another's reaper, and a stopping worker hands its job back;
//! schedules, unique jobs, cancel and the operations commands work across masters; a listing
//! that would miss a master fails naming it; an atomic batch across groups is refused; a dead
//! first seed is skipped.
//!
//! Each test starts a cluster of its own (about 1–2 s): a test that stops or kills a node
//! cannot disturb another, and no node outlives the test binary.

mod support;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamworker::{
    Backoff, CancelOutcome, Error, Job, JobContext, JobId, JobState, Priority, Schedule, Scheduler,
    State, TaskError, Worker,
};
use support::cli::{enqueue, json, ok, row, run, text};
use support::cluster::RedisCluster;
use support::inspect::{
    exists, hash, keys as matching, pending_count, stream_entries, ticks_in, xlen, zcard,
};
use support::keys::key;
use support::known::{GONE, known_state_in};
use support::process::WorkerProcess;
use support::scene::{Scene, VISIBILITY};
use support::server::free_port;
use support::wait::{WAIT, until};
use support::workers::{Running, client};

const KEEP: Duration = Duration::from_secs(600);

/// The port of the master serving `group`'s keys.
fn master_of(cluster: &RedisCluster, group: &str) -> u16 {
    cluster.master_of_slot(RedisCluster::slot_of(group))
}

/// The port in a `redis://127.0.0.1:PORT` URL.
fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Runs `streamworker --redis URL ARGS`: (exit code, stdout, stderr).
async fn outcome(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let all: Vec<&str> = ["--redis", url]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let out = run(&all).await;
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The groups `status --json` (no `--group`) lists, sorted.
async fn listed_groups(cluster: &RedisCluster) -> BTreeSet<String> {
    json(cluster, &["status", "--json"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap().to_string())
        .collect()
}

// ---- handlers -----------------------------------------------------------------------------

/// Returns its arguments: the result shows what the job carried.
async fn echo(args: serde_json::Value) -> Result<serde_json::Value, TaskError> {
    Ok(args)
}

/// Always fails, retryably: dead once its attempts are used up.
async fn flaky(_: serde_json::Value) -> Result<(), TaskError> {
    Err(TaskError::retry("the mail server said no"))
}

/// What the handlers saw: each run's label (the `name` argument) and when it started.
#[derive(Clone, Default)]
struct Seen {
    runs: Arc<Mutex<Vec<(String, Instant)>>>,
    started: Arc<AtomicBool>,
    saw_cancellation: Arc<AtomicBool>,
}

impl Seen {
    fn labels(&self) -> Vec<String> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }

    fn started_at(&self, label: &str) -> Option<Instant> {
        let runs = self.runs.lock().unwrap();
        runs.iter().find(|r| r.0 == label).map(|r| r.1)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Label {
    name: String,
}

fn label(name: &str) -> Label {
    Label { name: name.into() }
}

async fn record(args: Label, State(seen): State<Seen>) -> Result<(), TaskError> {
    seen.runs.lock().unwrap().push((args.name, Instant::now()));
    Ok(())
}

/// Counts its runs per group (the label is the group).
async fn count(
    _: serde_json::Value,
    ctx: JobContext,
    State(seen): State<Seen>,
) -> Result<(), TaskError> {
    seen.runs
        .lock()
        .unwrap()
        .push((ctx.group().to_string(), Instant::now()));
    Ok(())
}

/// Runs until cancelled; says it started, and whether its cancellation token fired.
async fn slow(
    _: serde_json::Value,
    ctx: JobContext,
    State(seen): State<Seen>,
) -> Result<(), TaskError> {
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

/// A worker on `url` serving `groups` with every handler above, retries 50–200 ms apart.
fn worker(url: &str, groups: &[&str], concurrency: usize, seen: &Seen) -> Running {
    let mut builder = Worker::builder(url)
        .concurrency(concurrency)
        .shutdown_grace(Duration::from_millis(100))
        .backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ));
    for group in groups {
        builder = builder.group(*group);
    }
    Running::worker(
        builder
            .state(seen.clone())
            .task("echo", echo)
            .task("flaky", flaky)
            .task("record", record)
            .task("count", count)
            .task("slow", slow)
            .build()
            .unwrap(),
    )
}

// ---- 1. lifecycle -------------------------------------------------------------------------

/// Jobs enqueued from Rust, from `streamworker enqueue` and from `redis-cli -c XADD` run on a
/// cluster, in priority order; a delayed job waits for its due time; a failing job is retried,
/// then dead with its reason; kept results read through `Client::status` and `streamworker job`.
/// The group lives on another master than the one the URL names.
#[tokio::test]
async fn jobs_from_rust_the_cli_and_redis_cli_run_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let url = cluster.url();
    let group = cluster.groups_on_each_master("life-").pop().unwrap();
    let g = group.as_str();
    assert_ne!(master_of(&cluster, g), port_of(&url), "routed, not local");
    let client = client(&cluster).await;

    // Rust: a tracked job (MessagePack args), known by its id before it is stored.
    let job = Job::new(g, "echo", &label("rust"))
        .unwrap()
        .keep_result(KEEP);
    let announced = job.id().clone();
    let rust = client.enqueue(job).await.unwrap();
    assert_eq!(rust, announced);
    let queued = client.status(g, &rust).await.unwrap().expect("tracked");
    assert_eq!(queued.state, JobState::Queued);

    // The CLI, and redis-cli following the redirect from the URL's node (the README's format).
    let cli = enqueue(
        &cluster,
        g,
        &[
            "--task",
            "echo",
            "--args",
            r#"{"via":"cli"}"#,
            "--keep-result",
            "1h",
        ],
    )
    .await;
    let stream = key(g, "default");
    let typed = cluster.cli(
        port_of(&url),
        &[
            "-c",
            "XADD",
            &stream,
            "*",
            "task",
            "echo",
            "args",
            r#"{"via":"redis-cli"}"#,
            "keep_result_ms",
            "600000",
        ],
    );
    let typed = typed.lines().last().unwrap().to_string();
    let typed = JobId::parse(&typed).unwrap_or_else(|e| panic!("{typed:?}: {e}"));

    // Priorities: low, default and high jobs waiting before the worker starts.
    let mut jobs = Vec::new();
    for i in 0..3 {
        for p in [Priority::Low, Priority::Default, Priority::High] {
            let name = format!("{}-{i}", p.as_str());
            jobs.push(Job::new(g, "record", &label(&name)).unwrap().priority(p));
        }
    }
    client.enqueue_many(jobs).await.unwrap();

    // A delayed job, and one that always fails (3 attempts).
    let before_delay = Instant::now();
    let delayed = client
        .enqueue(
            Job::new(g, "record", &label("delayed"))
                .unwrap()
                .delay(Duration::from_secs(1))
                .keep_result(KEEP),
        )
        .await
        .unwrap();
    let scheduled = client.status(g, &delayed).await.unwrap().unwrap();
    assert!(
        matches!(scheduled.state, JobState::Scheduled { .. }),
        "{:?}",
        scheduled.state
    );
    let failing = client
        .enqueue(
            Job::from_json(g, "flaky", "{}")
                .unwrap()
                .max_retries(2)
                .keep_result(KEEP),
        )
        .await
        .unwrap();

    let seen = Seen::default();
    let worker = worker(&url, &[g], 1, &seen);
    for id in [&rust, &delayed] {
        let status = client.wait_for_result(g, id, WAIT).await.unwrap();
        assert_eq!(status.state, JobState::Succeeded, "{id}");
    }
    let done = client.status(g, &rust).await.unwrap().unwrap();
    let result: serde_json::Value = done.result_json().unwrap().unwrap();
    assert_eq!(result, serde_json::json!({ "name": "rust" }));
    for (id, via) in [(&JobId::parse(&cli).unwrap(), "cli"), (&typed, "redis-cli")] {
        let status = client.wait_for_result(g, id, WAIT).await.unwrap();
        assert_eq!(status.state, JobState::Succeeded, "{via}");
        let result: serde_json::Value = status.result_json().unwrap().unwrap();
        assert_eq!(result, serde_json::json!({ "via": via }));
    }
    let dead = client.wait_for_result(g, &failing, WAIT).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempt, 3);
    let reason = dead.last_error.unwrap_or_default();
    assert!(
        reason.starts_with("failed after 3 attempts") && reason.contains("the mail server said no"),
        "{reason}"
    );

    // High before default before low (one slot: strict order).
    let order: Vec<String> = seen
        .labels()
        .into_iter()
        .filter(|l| l != "delayed")
        .map(|l| l.split('-').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = ["high", "default", "low"]
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.to_string(), 3))
        .collect();
    assert_eq!(order, expected);
    // Due 1 s after Redis's clock at enqueue, in whole ms: 2 ms of rounding allowed.
    let started = seen.started_at("delayed").expect("the delayed job ran");
    let due = before_delay + Duration::from_millis(998);
    assert!(
        started >= due,
        "the delayed job ran {:?} early",
        due.saturating_duration_since(started)
    );
    worker.stop().await;

    // `streamworker job`: the kept result, and the dead job's reason.
    let report = ok(&cluster, &["job", rust.as_str(), "--group", g]).await;
    assert!(report.contains("state:      succeeded"), "{report}");
    assert!(
        report.contains(r#"result:     {"name":"rust"}"#),
        "{report}"
    );
    let report = ok(&cluster, &["job", typed.as_str(), "--group", g]).await;
    assert!(
        report.contains(r#"result:     {"via":"redis-cli"}"#),
        "{report}"
    );
    let report = ok(&cluster, &["job", failing.as_str(), "--group", g]).await;
    assert!(report.contains("dead since"), "{report}");
    assert!(report.contains("failed after 3 attempts"), "{report}");

    // Nothing left waiting or running; the dead job is in the dead stream.
    let mut conn = cluster.conn();
    for p in ["high", "default", "low"] {
        assert_eq!(xlen(&mut conn, &key(g, p)), 0, "{p}");
        assert_eq!(pending_count(&mut conn, &key(g, p), g), 0, "{p}");
    }
    assert_eq!(zcard(&mut conn, &key(g, "delayed")), 0);
    let dead_entries = stream_entries(&mut conn, &key(g, "dead"));
    assert_eq!(dead_entries.len(), 1);
    assert_eq!(dead_entries[0]["id"], failing.as_str());
}

// ---- 2. groups on every master --------------------------------------------------------------

/// Groups whose keys live on three different masters (as Redis itself hashes them) are all
/// served by one worker, which drains them.
#[tokio::test]
async fn one_worker_drains_groups_living_on_three_masters() {
    const PER_GROUP: usize = 40;
    let cluster = RedisCluster::start(3, 0);
    let groups = cluster.groups_on_each_master("spread-");
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for (group, &master) in groups.iter().zip(&masters) {
        for suffix in [
            "high",
            "default",
            "low",
            "delayed",
            "delayed:jobs",
            "dead",
            "job:x",
        ] {
            let k = key(group, suffix);
            let slot = cluster.cli(master, &["CLUSTER", "KEYSLOT", &k]);
            let slot: u16 = slot.parse().unwrap();
            assert_eq!(cluster.master_of_slot(slot), master, "{k}");
        }
    }
    let distinct: BTreeSet<u16> = groups.iter().map(|g| master_of(&cluster, g)).collect();
    assert_eq!(distinct.len(), 3, "{groups:?}");

    let client = client(&cluster).await;
    let mut jobs = Vec::new();
    for i in 0..PER_GROUP {
        for group in &groups {
            let job = Job::from_json(group, "count", "{}").unwrap();
            // One job a group tracked: the script path, beside the plain XADDs.
            jobs.push(if i == 0 { job.keep_result(KEEP) } else { job });
        }
    }
    client.enqueue_many(jobs).await.unwrap();
    // Each master holds its own group's jobs (asked without -c: a wrong node would say MOVED).
    for (group, &master) in groups.iter().zip(&masters) {
        let len = cluster.cli(master, &["XLEN", &key(group, "default")]);
        assert_eq!(len, PER_GROUP.to_string(), "{group} on {master}");
    }

    let seen = Seen::default();
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let worker = worker(&cluster.url(), &names, 8, &seen);
    until("every job of the three groups to run", || {
        seen.labels().len() >= 3 * PER_GROUP
    })
    .await;
    let mut per_group: HashMap<String, usize> = HashMap::new();
    for group in seen.labels() {
        *per_group.entry(group).or_default() += 1;
    }
    for group in &groups {
        assert_eq!(per_group.get(group), Some(&PER_GROUP), "{per_group:?}");
    }
    for (group, &master) in groups.iter().zip(&masters) {
        until(&format!("{group} drained on {master}"), || {
            cluster.cli(master, &["XLEN", &key(group, "default")]) == "0"
        })
        .await;
        let pending = cluster.cli(master, &["XPENDING", &key(group, "default"), group]);
        assert!(pending.starts_with('0'), "{group}: {pending}");
    }
    worker.stop().await;
}

// ---- 3. worker kill, reaper, hand-back ------------------------------------------------------

/// A worker process SIGKILLed mid-job: another worker's reaper takes the job over and runs it to
/// success. Then a worker stopped (SIGTERM) past its grace period hands its running job back to
/// its stream, same id and attempt, and another worker runs it.
#[tokio::test]
async fn a_killed_worker_s_job_is_rescued_and_a_stopped_one_s_handed_back() {
    let cluster = RedisCluster::start(3, 0);
    let group = cluster.groups_on_each_master("rescue-").pop().unwrap();
    let scene = Scene::of_group(cluster, group);
    let mut first = scene.worker(&[]);
    let ids = scene.enqueue("sleep-2", 1).await;
    scene.until_started(&ids[0], 1).await;
    let mut second = scene.worker(&["--shutdown-grace", "200ms"]);
    first.kill();
    let killed_at = Instant::now();
    scene.until_started(&ids[0], 2).await;
    let taken_over_after = killed_at.elapsed();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    let starts = scene.starts_of(&ids[0]);
    assert_eq!(
        starts,
        vec![first.pid(), second.pid()],
        "cut, then run again"
    );
    assert!(
        taken_over_after < VISIBILITY + Duration::from_secs(3),
        "taken over after {taken_over_after:?}"
    );
    let result = &scene.status_field(&ids, "result")[0];
    assert_eq!(
        result.as_deref(),
        Some(format!("{}\n", second.pid()).as_str())
    );
    scene.assert_drained();

    // A stop past the grace period hands the running job back.
    let blocked = scene.enqueue("block", 1).await;
    scene.until_started(&blocked[0], 1).await;
    second.signal("TERM");
    let status = second.exit_status(WAIT).await;
    assert!(status.success(), "{status}: {}", second.log());
    let mut conn = scene.redis.conn();
    let stream = scene.key("default");
    let waiting = stream_entries(&mut conn, &stream);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["id"], blocked[0].as_str());
    assert_eq!(pending_count(&mut conn, &stream, &scene.group), 0);
    let third = scene.worker(&[]);
    scene.until_started(&blocked[0], 2).await;
    fs::write(scene.out().join("go"), "").unwrap();
    scene.until_all_in_state(&blocked, "succeeded", WAIT).await;
    assert_eq!(
        scene.starts_of(&blocked[0]),
        vec![second.pid(), third.pid()]
    );
    let attempt = scene.status_field(&blocked, "attempt").remove(0);
    assert_eq!(
        attempt.as_deref(),
        Some("1"),
        "a hand-back costs no attempt"
    );
    scene.assert_drained();
}

// ---- 4. schedules, unique jobs, cancel -------------------------------------------------------

/// Two schedulers, each running a per-second cron schedule in two groups on different masters:
/// every tick is enqueued exactly once in each group; `streamworker schedules` lists them.
#[tokio::test]
async fn two_schedulers_enqueue_each_cron_tick_once_per_group() {
    let cluster = RedisCluster::start(3, 0);
    let groups = cluster.groups_on_each_master("cron-");
    let (a, b) = (groups[1].as_str(), groups[2].as_str());
    let client = client(&cluster).await;
    let schedules = || {
        [(a, "beat-a"), (b, "beat-b")].map(|(group, name)| {
            Schedule::cron(
                name,
                "* * * * * *",
                Job::new(group, "ping", &serde_json::json!({ "from": name })).unwrap(),
            )
            .unwrap()
        })
    };
    let mut schedulers = Vec::new();
    for _ in 0..2 {
        let mut scheduler = Scheduler::new(&client);
        for s in schedules() {
            scheduler = scheduler.schedule(s);
        }
        schedulers.push(Running::scheduler(scheduler));
    }
    let mut conn = cluster.conn();
    until("three ticks in each group", || {
        ticks_in(&mut conn, &key(a, "default"), "beat-a").len() >= 3
            && ticks_in(&mut conn, &key(b, "default"), "beat-b").len() >= 3
    })
    .await;
    for s in schedulers {
        s.stop().await;
    }
    for (group, name) in [(a, "beat-a"), (b, "beat-b")] {
        let ticks = ticks_in(&mut conn, &key(group, "default"), name);
        let distinct: BTreeSet<u64> = ticks.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            ticks.len(),
            "a tick enqueued twice: {ticks:?}"
        );
        assert!(ticks.windows(2).all(|w| w[1] > w[0]), "in order: {ticks:?}");
        assert!(
            ticks.iter().all(|t| t % 1000 == 0),
            "whole seconds: {ticks:?}"
        );
        let state = hash(&mut conn, &key(group, &format!("schedule:{name}")));
        let last = *ticks.last().unwrap();
        assert_eq!(state["last_job_id"], format!("{name}.{last}"));

        let rows = json(&cluster, &["schedules", "--group", group, "--json"]).await;
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["name"], name);
        assert_eq!(rows[0]["last_job_id"], format!("{name}.{last}"));
        let table = ok(&cluster, &["schedules", "--group", group]).await;
        let cells = row(&table, name);
        assert!(
            cells.iter().any(|c| *c == format!("{name}.{last}")),
            "{table}"
        );
    }
}

/// A unique job enqueued twice (Rust, then the CLI) is stored once; cancel removes a waiting and
/// a scheduled job and releases the lock; running jobs are cancelled (from the CLI, from Rust)
/// through their worker, which listens on whichever node its subscription reached.
#[tokio::test]
async fn unique_jobs_and_cancel_of_waiting_scheduled_and_running_jobs() {
    let cluster = RedisCluster::start(3, 0);
    let groups = cluster.groups_on_each_master("cancel-");
    let g = groups[1].as_str();
    let url = cluster.url();
    let client = client(&cluster).await;
    let mut conn = cluster.conn();

    let unique = || {
        Job::from_json(g, "echo", r#"{"user":7}"#)
            .unwrap()
            .unique_for(Duration::from_secs(3600))
            .keep_result(KEEP)
    };
    let first = client.enqueue(unique()).await.unwrap();
    let again = unique();
    let again_own = again.id().clone();
    assert_eq!(
        client.enqueue(again).await.unwrap(),
        first,
        "the holder's id"
    );
    assert_ne!(again_own, first);
    let out = run(&[
        "--redis",
        &url,
        "enqueue",
        "--group",
        g,
        "--task",
        "echo",
        "--args",
        r#"{ "user": 7 }"#,
        "--unique-for",
        "1h",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), first.as_str());
    assert!(
        text(&out.stderr).contains("nothing enqueued"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(xlen(&mut conn, &key(g, "default")), 1, "stored once");
    let locks = || matching(&mut cluster.conn(), &key(g, "unique:*"));
    assert_eq!(locks().len(), 1);

    // Waiting and scheduled jobs are removed; the lock goes with the unique one.
    assert_eq!(
        client.cancel(g, &first).await.unwrap(),
        CancelOutcome::Removed {
            was_scheduled: false
        }
    );
    assert!(locks().is_empty(), "lock released");
    let scheduled = client
        .enqueue(
            Job::from_json(g, "echo", "{}")
                .unwrap()
                .delay(Duration::from_secs(3600))
                .keep_result(KEEP),
        )
        .await
        .unwrap();
    let out = ok(&cluster, &["cancel", scheduled.as_str(), "--group", g]).await;
    assert!(out.contains("(it was scheduled): it will not run"), "{out}");
    for id in [&first, &scheduled] {
        let status = client.status(g, id).await.unwrap().unwrap();
        assert_eq!(status.state, JobState::Cancelled, "{id}");
    }
    assert_eq!(xlen(&mut conn, &key(g, "default")), 0);
    assert_eq!(zcard(&mut conn, &key(g, "delayed")), 0);
    // Once cancelled, the same unique call is a new job.
    let fresh = unique();
    let fresh_own = fresh.id().clone();
    assert_eq!(client.enqueue(fresh).await.unwrap(), fresh_own);
    assert_eq!(
        client.cancel(g, &fresh_own).await.unwrap(),
        CancelOutcome::Removed {
            was_scheduled: false
        }
    );

    // Running jobs, cancelled through their worker. Two workers serve a group on each master and
    // listen on whichever node their subscription reached; the jobs run in a group whose master
    // is not one of them: the message still reaches both, and both count as listeners.
    let seen = Seen::default();
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let workers = [
        worker(&url, &names, 4, &seen),
        worker(&url, &names, 4, &seen),
    ];
    until("both workers to listen for cancel requests", || {
        groups
            .iter()
            .all(|g| cluster.subscribers(&key(g, "cancel")) == 2)
    })
    .await;
    let g = groups
        .iter()
        .find(|g| cluster.subscribers_on(master_of(&cluster, g), &key(g, "cancel")) == 0)
        .expect("two subscriptions leave a master without one")
        .as_str();
    let slow_job = || Job::from_json(g, "slow", "{}").unwrap().keep_result(KEEP);
    let running = client.enqueue(slow_job()).await.unwrap();
    until("the slow job to start", || {
        seen.started.load(Ordering::SeqCst)
    })
    .await;
    let out = ok(&cluster, &["cancel", running.as_str(), "--group", g]).await;
    assert!(
        out.contains("is running on") && out.contains("asked it to stop"),
        "{out}"
    );
    let status = client.wait_for_result(g, &running, WAIT).await.unwrap();
    assert_eq!(status.state, JobState::Cancelled);
    assert!(
        seen.saw_cancellation.load(Ordering::SeqCst),
        "the token fired"
    );

    seen.started.store(false, Ordering::SeqCst);
    let running = client.enqueue(slow_job()).await.unwrap();
    until("the second slow job to start", || {
        seen.started.load(Ordering::SeqCst)
    })
    .await;
    match client.cancel(g, &running).await.unwrap() {
        CancelOutcome::Requested { listeners, .. } => {
            assert_eq!(listeners, 2, "every listening worker is counted")
        }
        other => panic!("expected Requested, got {other:?}"),
    }
    let status = client.wait_for_result(g, &running, WAIT).await.unwrap();
    assert_eq!(status.state, JobState::Cancelled);
    assert_eq!(
        xlen(&mut conn, &key(g, "default")),
        0,
        "the entries are deleted"
    );
    assert_eq!(
        xlen(&mut conn, &key(g, "dead")),
        0,
        "a cancelled job is not dead"
    );
    for w in workers {
        w.stop().await;
    }
}

// ---- 5. the operations commands -------------------------------------------------------------

/// The operations commands on a cluster: `status` and `top` without `--group` list the groups of
/// all three masters; `pending`, `job`, `dead` list/show/retry, `delayed` list/run-now,
/// `cancel`; a paused group is not fetched until resumed.
#[tokio::test]
async fn the_operations_commands_work_across_masters() {
    let cluster = RedisCluster::start(3, 0);
    let groups = cluster.groups_on_each_master("ops-");
    // The known state (waiting, in flight with a gone consumer, delayed, dead) on the middle
    // master; one job in each of the other two groups.
    let s = known_state_in(&cluster, groups[1].clone()).await;
    let g = s.group.as_str();
    let client = client(&cluster).await;
    let paused = groups[0].as_str();
    let other = groups[2].as_str();
    let held = client
        .enqueue(
            Job::from_json(paused, "work", "{}")
                .unwrap()
                .keep_result(KEEP),
        )
        .await
        .unwrap();
    client
        .enqueue(Job::from_json(other, "work", "{}").unwrap())
        .await
        .unwrap();

    // Every group, whichever master holds it.
    let all: BTreeSet<String> = groups.iter().cloned().collect();
    assert_eq!(listed_groups(&cluster).await, all);
    let table = ok(&cluster, &["status"]).await;
    for group in &groups {
        assert!(table.contains(&format!("group {group}: active")), "{table}");
    }
    let url = cluster.url();
    let (code, _, stderr) = outcome(&url, &["status", "--group", "nope"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let known = all.iter().cloned().collect::<Vec<_>>().join(", ");
    assert!(
        stderr.contains(&format!(
            "no such group in this Redis; groups found: {known}"
        )),
        "{stderr}"
    );
    let frame = ok(&cluster, &["top"]).await;
    for group in &groups {
        assert_eq!(row(&frame, group)[1], "active", "{frame}");
    }
    let st = json(&cluster, &["status", "--group", g, "--json"]).await;
    assert_eq!(
        (
            &st[0]["ready"],
            &st[0]["pending"],
            &st[0]["delayed"],
            &st[0]["dead"]
        ),
        (&4.into(), &1.into(), &2.into(), &2.into()),
        "{st}"
    );

    // pending and job: the stalled entry of the gone consumer.
    let pending = ok(&cluster, &["pending", "--group", g]).await;
    let r = row(&pending, "default");
    assert_eq!(
        (r[2].as_str(), r[5].as_str()),
        (s.in_flight.as_str(), GONE),
        "{pending}"
    );
    assert!(pending.contains("next to reap"), "{pending}");
    let report = ok(&cluster, &["job", s.in_flight.as_str(), "--group", g]).await;
    assert!(report.contains(&format!("running on {GONE}")), "{report}");
    let report = ok(&cluster, &["job", s.waiting[0].as_str(), "--group", g]).await;
    assert!(report.contains("waiting in the default stream"), "{report}");

    // dead: list, show, retry.
    let dead = json(&cluster, &["dead", "--group", g, "list", "--json"]).await;
    let listed: Vec<&str> = dead
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [s.dead[1].as_str(), s.dead[0].as_str()],
        "newest first"
    );
    let shown = json(
        &cluster,
        &["dead", "--group", g, "show", s.dead[0].as_str(), "--json"],
    )
    .await;
    assert_eq!(shown["args"], r#"{"n":1}"#);
    let out = ok(
        &cluster,
        &["dead", "--group", g, "retry", s.dead[0].as_str()],
    )
    .await;
    assert!(
        out.contains(&format!("re-driven {} (boom)", s.dead[0])),
        "{out}"
    );
    let mut conn = cluster.conn();
    let dead_left = stream_entries(&mut conn, &key(g, "dead"));
    assert_eq!(dead_left.len(), 1);
    assert_eq!(dead_left[0]["id"], s.dead[1].as_str());
    let default = stream_entries(&mut conn, &key(g, "default"));
    assert_eq!(default.last().unwrap()["id"], s.dead[0].as_str());

    // delayed: list, run-now.
    let table = ok(&cluster, &["delayed", "--group", g, "list"]).await;
    assert!(
        table.contains(s.delayed[0].as_str()) && table.contains(s.delayed[1].as_str()),
        "{table}"
    );
    let moved = json(
        &cluster,
        &[
            "delayed",
            "--group",
            g,
            "run-now",
            s.delayed[1].as_str(),
            "--json",
        ],
    )
    .await;
    assert_eq!(moved["job_id"], s.delayed[1].as_str());
    let high = stream_entries(&mut conn, &key(g, "high"));
    assert_eq!(
        high.last().unwrap()["id"],
        s.delayed[1].as_str(),
        "into its own priority"
    );
    assert_eq!(zcard(&mut conn, &key(g, "delayed")), 1);

    // cancel: a waiting job.
    let out = ok(&cluster, &["cancel", s.waiting[1].as_str(), "--group", g]).await;
    assert!(out.contains("(it was waiting): it will not run"), "{out}");
    let ids: Vec<String> = stream_entries(&mut conn, &key(g, "default"))
        .into_iter()
        .map(|e| e["id"].clone())
        .collect();
    assert!(!ids.contains(&s.waiting[1].to_string()), "{ids:?}");

    // pause: a worker started on the paused group fetches nothing until resume.
    let out = ok(&cluster, &["pause", "--group", paused]).await;
    assert!(out.contains("paused"), "{out}");
    let status = ok(&cluster, &["status", "--group", paused]).await;
    assert!(
        status.starts_with(&format!("group {paused}: PAUSED")),
        "{status}"
    );
    let dir = tempfile::tempdir().unwrap();
    let worker = WorkerProcess::start(
        &cluster.url(),
        dir.path(),
        &[
            "--group",
            paused,
            "--exec",
            r#"sh -c 'cat > /dev/null; touch "$OUT/ran"'"#,
        ],
    );
    until("the worker to see the pause", || {
        worker.log().contains("group paused")
    })
    .await;
    let state = client.status(paused, &held).await.unwrap().unwrap().state;
    assert_eq!(state, JobState::Queued, "not run while paused");
    assert!(!dir.path().join("ran").exists());
    assert_eq!(
        pending_count(&mut conn, &key(paused, "default"), paused),
        0,
        "handed back"
    );
    let out = ok(&cluster, &["resume", "--group", paused]).await;
    assert!(out.contains("resumed"), "{out}");
    let done = client.wait_for_result(paused, &held, WAIT).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert!(dir.path().join("ran").exists());
}

/// Groups in all three masters, listed; then `status`, `status --json` and `top` with master
/// `down` of them not answering (`stop_or_kill` did it): each exits 1 with one line naming that
/// master, and prints no partial list.
async fn listing_fails_naming(stop_or_kill: impl FnOnce(&mut RedisCluster, u16)) {
    let mut cluster = RedisCluster::start(3, 0);
    let groups = cluster.groups_on_each_master("down-");
    let client = client(&cluster).await;
    for group in &groups {
        client
            .enqueue(Job::from_json(group, "work", "{}").unwrap())
            .await
            .unwrap();
    }
    let all: BTreeSet<String> = groups.iter().cloned().collect();
    assert_eq!(listed_groups(&cluster).await, all);

    let url = cluster.url();
    let down = master_of(&cluster, &groups[2]);
    assert_ne!(port_of(&url), down);
    stop_or_kill(&mut cluster, down);
    let wanted = format!(
        "error: cannot list every group: the cluster's master 127.0.0.1:{down} did not answer"
    );
    for args in [vec!["status"], vec!["status", "--json"], vec!["top"]] {
        let (code, stdout, stderr) = outcome(&url, &args).await;
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.starts_with(&wanted) && stderr.contains("name the group (--group)"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: no partial list: {stdout}");
    }
}

/// A master killed (before any fail-over: it has no replica): listing every group fails naming it.
#[tokio::test]
async fn listing_every_group_fails_naming_a_killed_master() {
    listing_fails_naming(|cluster, master| cluster.kill(master)).await;
}

/// A master stopped (SIGSTOP: it holds its port and answers nothing): listing every group fails
/// naming it, within the wait of a one-shot command.
#[tokio::test]
async fn listing_every_group_fails_naming_a_stopped_master() {
    listing_fails_naming(|cluster, master| cluster.pause(master)).await;
}

// ---- 6. batches across groups ---------------------------------------------------------------

/// An atomic batch across groups (on different masters) is refused before anything is sent, and
/// stores nothing; within one group it is stored whole. A batch that need not be atomic, across
/// groups on three masters, stores every job.
#[tokio::test]
async fn an_atomic_batch_across_groups_is_refused_and_a_plain_one_stores_all() {
    let cluster = RedisCluster::start(3, 0);
    let groups = cluster.groups_on_each_master("batch-");
    let client = client(&cluster).await;
    let mut conn = cluster.conn();
    let batch = |a: &str, b: &str| {
        vec![
            Job::from_json(a, "echo", "{}").unwrap(),
            Job::from_json(b, "echo", "{}").unwrap().keep_result(KEEP),
            Job::from_json(b, "echo", "{}")
                .unwrap()
                .delay(Duration::from_secs(60)),
        ]
    };
    let stored = |conn: &mut redis::cluster::ClusterConnection, group: &str| {
        let jobs = matching(conn, &key(group, "job:*"));
        (
            xlen(conn, &key(group, "default")),
            zcard(conn, &key(group, "delayed")),
            jobs.len(),
        )
    };

    let refused = |err: Error| {
        assert!(matches!(err, Error::NotOnCluster { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("cannot run on a Redis Cluster"), "{text}");
        assert!(
            text.contains(&groups[0]) && text.contains(&groups[1]),
            "{text}"
        );
    };
    refused(
        client
            .enqueue_atomic(batch(&groups[0], &groups[1]))
            .await
            .unwrap_err(),
    );
    let mut request = client.batch();
    for job in batch(&groups[0], &groups[1]) {
        request.push(job).unwrap();
    }
    refused(request.commit().await.unwrap_err());
    for group in &groups {
        assert_eq!(
            stored(&mut conn, group),
            (0, 0, 0),
            "{group}: nothing stored"
        );
    }

    // One group: one slot, so atomic works.
    let ids = client
        .enqueue_atomic(batch(&groups[1], &groups[1]))
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(stored(&mut conn, &groups[1]), (2, 1, 1));

    // Not atomic, three groups on three masters: every job stored, ids in order.
    let mut jobs = Vec::new();
    for group in &groups {
        jobs.extend(batch(group, group));
    }
    let wanted: Vec<JobId> = jobs.iter().map(|j| j.id().clone()).collect();
    let ids = client.enqueue_many(jobs).await.unwrap();
    assert_eq!(ids, wanted);
    assert_eq!(stored(&mut conn, &groups[0]), (2, 1, 1));
    assert_eq!(stored(&mut conn, &groups[1]), (4, 2, 2));
    assert_eq!(stored(&mut conn, &groups[2]), (2, 1, 1));
    for (n, group) in groups.iter().enumerate() {
        let in_stream: Vec<String> = stream_entries(&mut conn, &key(group, "default"))
            .into_iter()
            .map(|e| e["id"].clone())
            .collect();
        let mine = [ids[3 * n].to_string(), ids[3 * n + 1].to_string()];
        assert!(in_stream.ends_with(&mine), "{group}: {in_stream:?}");
        let scheduled = ids[3 * n + 2].as_str();
        let member: Option<String> = redis::cmd("ZSCORE")
            .arg(key(group, "delayed"))
            .arg(scheduled)
            .query(&mut conn)
            .unwrap();
        assert!(member.is_some(), "{group}: {scheduled} delayed");
        assert!(exists(
            &mut conn,
            &key(group, &format!("job:{}", ids[3 * n + 1]))
        ));
    }
}

// ---- 7. seeds ---------------------------------------------------------------------------------

/// Seeds given comma-separated, the first one a dead node: the client, a worker and the CLI skip
/// it and use the cluster.
#[tokio::test]
async fn a_dead_first_seed_is_skipped() {
    let cluster = RedisCluster::start(3, 0);
    let dead = free_port();
    let url = format!("redis://127.0.0.1:{dead},{}", cluster.seeds());
    let groups = cluster.groups_on_each_master("seed-");
    let client = streamworker::Client::connect(&url).await.unwrap();
    let mut ids = Vec::new();
    for group in &groups {
        let job = Job::from_json(group, "echo", r#"{"ok":true}"#)
            .unwrap()
            .keep_result(KEEP);
        ids.push(client.enqueue(job).await.unwrap());
    }
    let seen = Seen::default();
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let worker = worker(&url, &names, 4, &seen);
    for (group, id) in groups.iter().zip(&ids) {
        let status = client.wait_for_result(group, id, WAIT).await.unwrap();
        assert_eq!(status.state, JobState::Succeeded, "{group}");
    }
    // The CLI, given the same seeds.
    let cli = run(&[
        "--redis",
        &url,
        "enqueue",
        "--group",
        &groups[0],
        "--task",
        "echo",
        "--keep-result",
        "1h",
    ])
    .await;
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    let id = JobId::parse(text(&cli.stdout).trim()).unwrap();
    let status = client.wait_for_result(&groups[0], &id, WAIT).await.unwrap();
    assert_eq!(status.state, JobState::Succeeded);
    let out = run(&["--redis", &url, "status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    worker.stop().await;
}
