//! The PostgreSQL outbox (feature `postgres`): a job written in a transaction runs once if it
//! commits and never if it rolls back; a relay killed between Redis and the delete, two relays
//! at once, and a Redis that stops meanwhile each leave every job run exactly once. Real
//! servers: a PostgreSQL and a redis-server per test, started by the harness.
#![cfg(feature = "postgres")]

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/outbox.rs"]
mod example;

use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::admin::Admin;
use streamworker::outbox::{self, Relay, RelayConfig};
use streamworker::{Client, Job, JobContext, JobState, Priority, TaskError, Worker};
use support::postgres::PgServer;
use support::process::WorkerProcess;
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};
use support::workers::Running;
use tokio_util::sync::CancellationToken;

/// How many times each job id ran.
type Runs = Arc<Mutex<HashMap<String, usize>>>;

/// A database with the outbox table, and a Redis.
struct Scene {
    pg: PgServer,
    pool: PgPool,
    redis: RedisServer,
    client: Client,
}

impl Scene {
    async fn new() -> Scene {
        let pg = PgServer::start();
        let pool = PgPool::connect(&pg.url()).await.unwrap();
        outbox::init(&pool).await.unwrap();
        // A second init changes nothing and does not fail.
        outbox::init(&pool).await.unwrap();
        let redis = RedisServer::start();
        let client = Client::connect(&redis.url()).await.unwrap();
        Scene {
            pg,
            pool,
            redis,
            client,
        }
    }

    /// A relay running in this process until the token is cancelled.
    fn relay(
        &self,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<streamworker::Result<()>>,
    ) {
        let stop = CancellationToken::new();
        let relay = Relay::new(self.pool.clone(), self.client.clone());
        let handle = tokio::spawn(relay.run(stop.clone().cancelled_owned()));
        (stop, handle)
    }

    /// A worker of `group` counting the runs of task `t` in `runs`.
    fn worker(&self, group: &str, runs: &Runs) -> Running {
        let runs = runs.clone();
        Running::worker(
            Worker::builder(self.redis.url())
                .group(group)
                .task("t", move |_: serde_json::Value, ctx: JobContext| {
                    let runs = runs.clone();
                    async move {
                        *runs
                            .lock()
                            .unwrap()
                            .entry(ctx.job_id().to_string())
                            .or_default() += 1;
                        Ok::<_, TaskError>(())
                    }
                })
                .build()
                .unwrap(),
        )
    }

    /// Commits `n` jobs of `group`, `per_tx` per transaction; returns their ids.
    async fn commit_jobs(&self, group: &str, n: usize, per_tx: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut left = n;
        while left > 0 {
            let take = left.min(per_tx);
            let jobs: Vec<Job> = (0..take)
                .map(|i| Job::new(group, "t", &serde_json::json!({ "i": i })).unwrap())
                .collect();
            let mut tx = self.pool.begin().await.unwrap();
            for id in outbox::enqueue_all_in_tx(&mut tx, jobs).await.unwrap() {
                ids.push(id.to_string());
            }
            tx.commit().await.unwrap();
            left -= take;
        }
        ids
    }

    /// Where job `id` of `group` is in Redis (`waiting`, `delayed`, ...), `None` if nowhere.
    async fn place(&self, group: &str, id: &str) -> Option<&'static str> {
        let admin = Admin::connect(&self.redis.url()).await.unwrap();
        match admin.job(group, id).await {
            Ok(report) => Some(report.place.as_str()),
            Err(streamworker::Error::UnknownJob { .. }) => None,
            Err(e) => panic!("job {id}: {e}"),
        }
    }

    async fn backlog(&self) -> u64 {
        outbox::status(&self.pool).await.unwrap().backlog
    }

    /// Entries in the group's default stream (read or not).
    fn stream_len(&self, group: &str) -> usize {
        let mut conn = self.redis.conn();
        redis::cmd("XLEN")
            .arg(format!("streamworker:{{{group}}}:default"))
            .query(&mut conn)
            .unwrap()
    }
}

/// Asserts every id in `ids` ran exactly once, and nothing else ran.
async fn each_ran_once(runs: &Runs, ids: &[String]) {
    until("every job ran", || runs.lock().unwrap().len() >= ids.len()).await;
    let runs = runs.lock().unwrap();
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    for id in ids {
        assert_eq!(runs.get(id), Some(&1), "job {id}");
    }
    assert_eq!(runs.len(), ids.len());
}

#[tokio::test]
async fn a_committed_job_runs_once_and_a_rolled_back_one_never_exists() {
    let scene = Scene::new().await;
    let runs = Runs::default();
    let worker = scene.worker("g", &runs);
    let (stop, relay) = scene.relay();

    // Rolled back: the job exists nowhere, ever.
    let mut tx = scene.pool.begin().await.unwrap();
    let rolled_back = outbox::enqueue_in_tx(&mut tx, Job::from_json("g", "t", "{}").unwrap())
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    // Committed: it runs once. Its id was known before the commit.
    let job = Job::from_json("g", "t", r#"{"user":42}"#).unwrap();
    let known = job.id().clone();
    let mut tx = scene.pool.begin().await.unwrap();
    let id = outbox::enqueue_in_tx(&mut tx, job).await.unwrap();
    assert_eq!(id, known);
    tx.commit().await.unwrap();

    each_ran_once(&runs, &[id.to_string()]).await;
    until_backlog(&scene, 0).await;
    assert!(!runs.lock().unwrap().contains_key(rolled_back.as_str()));
    assert_eq!(
        scene.place("g", rolled_back.as_str()).await,
        None,
        "a rolled-back job is nowhere in Redis"
    );
    stop.cancel();
    relay.await.unwrap().unwrap();
    worker.stop().await;
}

async fn until_backlog(scene: &Scene, n: u64) {
    wait_until(WAIT, &format!("outbox backlog {n}"), || async {
        scene.backlog().await == n
    })
    .await;
}

#[tokio::test]
async fn options_travel_through_the_outbox() {
    let scene = Scene::new().await;
    let runs = Runs::default();
    let (stop, relay) = scene.relay();
    let mut tx = scene.pool.begin().await.unwrap();
    let unique = Job::from_json("u", "t", "{}")
        .unwrap()
        .unique_key("welcome-42")
        .unique_for(Duration::from_secs(60));
    let unique_again = Job::from_json("u", "t", "{}")
        .unwrap()
        .unique_key("welcome-42")
        .unique_for(Duration::from_secs(60));
    let delayed = Job::from_json("u", "t", "{}")
        .unwrap()
        .delay(Duration::from_secs(3600))
        .priority(Priority::High);
    let tracked = Job::from_json("u", "t", "{}")
        .unwrap()
        .priority(Priority::Low)
        .keep_result(Duration::from_secs(600));
    let ids = outbox::enqueue_all_in_tx(&mut tx, [unique, unique_again.clone(), delayed, tracked])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    until_backlog(&scene, 0).await;

    // Delayed: waiting for its time, not run.
    assert_eq!(scene.place("u", ids[2].as_str()).await, Some("delayed"));
    // The second unique job found the first one's lock: only one is stored.
    let mut conn = scene.redis.conn();
    let low: usize = redis::cmd("XLEN")
        .arg("streamworker:{u}:low")
        .query(&mut conn)
        .unwrap();
    let default: usize = redis::cmd("XLEN")
        .arg("streamworker:{u}:default")
        .query(&mut conn)
        .unwrap();
    assert_eq!((default, low), (1, 1), "one unique job and the tracked one");
    let worker = scene.worker("u", &runs);
    until("the unique and the tracked job ran", || {
        runs.lock().unwrap().len() == 2
    })
    .await;
    assert!(runs.lock().unwrap().contains_key(ids[0].as_str()));
    assert!(
        !runs
            .lock()
            .unwrap()
            .contains_key(unique_again.id().as_str())
    );
    // keep_result: its status is kept and says it succeeded.
    wait_until(WAIT, "the tracked job's status says succeeded", || async {
        let status = scene.client.status("u", &ids[3]).await.unwrap();
        status.is_some_and(|s| s.state == JobState::Succeeded)
    })
    .await;
    stop.cancel();
    relay.await.unwrap().unwrap();
    worker.stop().await;
}

#[tokio::test]
async fn a_relay_killed_between_redis_and_the_delete_leaves_each_job_run_once() {
    let scene = Scene::new().await;
    let runs = Runs::default();
    let ids = scene.commit_jobs("g", 300, 50).await;
    let out = tempfile::tempdir().unwrap();
    let url = scene.pg.url();
    // This relay SIGKILLs itself after its first send to Redis, before it deletes the rows.
    let mut crashing = WorkerProcess::start_env(
        &scene.redis.url(),
        out.path(),
        &[
            "outbox",
            "--database-url",
            &url,
            "relay",
            "--outbox-batch",
            "100",
        ],
        &[("STREAMWORKER_OUTBOX_CRASH_AFTER_SEND", "1")],
    );
    let status = crashing.exit_status(WAIT).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the relay killed itself: {}",
        crashing.log()
    );
    // Redis has the first batch, and the table still has every row.
    assert_eq!(scene.stream_len("g"), 100);
    assert_eq!(scene.backlog().await, 300);

    // The next relay sends all 300 rows; the first 100 store nothing the second time.
    let relay = WorkerProcess::start(
        &scene.redis.url(),
        out.path(),
        &[
            "outbox",
            "--database-url",
            &url,
            "relay",
            "--outbox-batch",
            "100",
        ],
    );
    until_backlog(&scene, 0).await;
    assert_eq!(scene.stream_len("g"), 300, "each job entered Redis once");
    let worker = scene.worker("g", &runs);
    each_ran_once(&runs, &ids).await;
    drop(relay);
    worker.stop().await;
}

#[tokio::test]
async fn two_relays_at_once_send_each_job_once() {
    let scene = Scene::new().await;
    let runs = Runs::default();
    let config = RelayConfig {
        batch: 50,
        ..RelayConfig::default()
    };
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let relay = Relay::new(scene.pool.clone(), scene.client.clone()).config(config.clone());
            tokio::spawn(relay.run(stop.clone().cancelled_owned()))
        })
        .collect();
    // Committed while both relays run, in many small transactions.
    let ids = scene.commit_jobs("g", 1000, 10).await;
    until_backlog(&scene, 0).await;
    assert_eq!(scene.stream_len("g"), 1000);
    let worker = scene.worker("g", &runs);
    each_ran_once(&runs, &ids).await;
    stop.cancel();
    for relay in relays {
        relay.await.unwrap().unwrap();
    }
    worker.stop().await;
}

#[tokio::test]
async fn rows_wait_while_redis_is_down_and_go_when_it_returns() {
    let mut scene = Scene::new().await;
    let runs = Runs::default();
    let metrics = streamworker::Metrics::new();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(scene.pool.clone(), scene.client.clone())
            .config(RelayConfig {
                sample_interval: Duration::from_millis(50),
                ..RelayConfig::default()
            })
            .metrics(metrics.clone())
            .run(stop.clone().cancelled_owned()),
    );
    scene.redis.kill();
    let ids = scene.commit_jobs("g", 200, 20).await;
    // A pass fails while Redis is down, and the rows stay; the metrics say they wait.
    let pass = Relay::new(scene.pool.clone(), scene.client.clone())
        .relay_batch()
        .await;
    assert!(pass.is_err(), "a pass with Redis down fails: {pass:?}");
    assert_eq!(scene.backlog().await, 200);
    until("the metrics report the backlog", || {
        metrics
            .encode()
            .lines()
            .any(|l| l == "streamworker_outbox_backlog 200")
    })
    .await;
    scene.redis.restart();
    until_backlog(&scene, 0).await;
    let worker = scene.worker("g", &runs);
    each_ran_once(&runs, &ids).await;
    until("the metrics count the relayed jobs", || {
        metrics
            .encode()
            .lines()
            .any(|l| l == "streamworker_outbox_relayed_total 200")
    })
    .await;
    stop.cancel();
    relay.await.unwrap().unwrap();
    worker.stop().await;
}

#[tokio::test]
async fn a_row_that_is_not_a_job_is_marked_and_the_others_go() {
    let scene = Scene::new().await;
    // Rows as a producer in another language writes them: one good, one with a misspelt
    // option, one with an invalid group name.
    for (job_id, group, options) in [
        ("good-1", "g", r#"{"priority":"high"}"#),
        ("bad-1", "g", r#"{"priorty":"high"}"#),
        ("bad-2", "no spaces", "{}"),
    ] {
        sqlx::query(
            "INSERT INTO streamworker_outbox (job_id, queue_group, task, args, options)
             VALUES ($1, $2, 't', '{}', $3::jsonb)",
        )
        .bind(job_id)
        .bind(group)
        .bind(options)
        .execute(&scene.pool)
        .await
        .unwrap();
    }
    let (stop, relay) = scene.relay();
    until_backlog(&scene, 0).await;
    let status = outbox::status(&scene.pool).await.unwrap();
    assert_eq!(status.failed_count, 2);
    assert!(
        status.failed[0].error.contains("unknown field `priorty`"),
        "{:?}",
        status.failed
    );
    assert!(status.failed[1].error.contains("invalid group name"));
    assert_eq!(scene.place("g", "good-1").await, Some("waiting"));
    // The CLI lists them.
    let out = support::cli::run(&["outbox", "--database-url", &scene.pg.url(), "status"]).await;
    let text = support::cli::text(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("0 rows waiting"), "{text}");
    assert!(text.contains("2 rows are not jobs"), "{text}");
    stop.cancel();
    relay.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_worker_with_outbox_relays_and_a_missing_table_is_a_clear_error() {
    let scene = Scene::new().await;
    let out = tempfile::tempdir().unwrap();
    std::fs::write(
        out.path().join("job.sh"),
        "echo \"$STREAMWORKER_JOB_ID\" >> \"$OUT/runs\"\n",
    )
    .unwrap();
    let exec = format!("sh {}", out.path().join("job.sh").display());
    let _worker = WorkerProcess::start(
        &scene.redis.url(),
        out.path(),
        &["--group", "g", "--exec", &exec, "--outbox", &scene.pg.url()],
    );
    let ids = scene.commit_jobs("g", 20, 20).await;
    let runs_file = out.path().join("runs");
    until("the worker ran the 20 jobs", || {
        std::fs::read_to_string(&runs_file)
            .map(|t| t.lines().count() >= 20)
            .unwrap_or(false)
    })
    .await;
    let mut ran: Vec<String> = std::fs::read_to_string(&runs_file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    ran.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(ran, want);

    // A database without the table: the command says what to run.
    sqlx::query("DROP TABLE streamworker_outbox")
        .execute(&scene.pool)
        .await
        .unwrap();
    let out = support::cli::run(&[
        "--redis",
        &scene.redis.url(),
        "outbox",
        "--database-url",
        &scene.pg.url(),
        "status",
    ])
    .await;
    let err = support::cli::text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("streamworker outbox init"), "{err}");
}

#[tokio::test]
async fn the_example_registers_a_user_and_sends_one_welcome_email_per_commit() {
    let scene = Scene::new().await;
    example::migrate(&scene.pool).await.unwrap();
    let group = "welcome";
    let (stop, relay) = scene.relay();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = example::router(example::App {
        pool: scene.pool.clone(),
        group: group.into(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let created =
        support::http::http(addr, "POST", "/users", r#"{"email":"ada@example.com"}"#).await;
    assert_eq!(created.status, 202, "{created:?}");
    let job_id = created.body["welcome_job"].as_str().unwrap().to_string();
    // The same email again: the transaction rolls back, and no second email exists.
    let taken = support::http::http(addr, "POST", "/users", r#"{"email":"ada@example.com"}"#).await;
    assert_eq!(taken.status, 409);
    until_backlog(&scene, 0).await;
    assert_eq!(scene.place(group, &job_id).await, Some("waiting"));
    assert_eq!(
        scene.stream_len(group),
        1,
        "one welcome email, for the commit"
    );

    // The example's task reads the committed row.
    let worker = Running::worker(
        Worker::builder(scene.redis.url())
            .state(scene.pool.clone())
            .group(group)
            .task("send_welcome", example::send_welcome)
            .build()
            .unwrap(),
    );
    wait_until(WAIT, "the welcome email was sent", || async {
        scene.place(group, &job_id).await.is_none() && scene.stream_len(group) == 0
    })
    .await;
    worker.stop().await;
    stop.cancel();
    relay.await.unwrap().unwrap();
    server.abort();
}

#[tokio::test]
async fn a_relay_sends_jobs_of_several_groups_to_a_cluster_once() {
    let pg = PgServer::start();
    let pool = PgPool::connect(&pg.url()).await.unwrap();
    outbox::init(&pool).await.unwrap();
    let cluster = support::cluster::RedisCluster::start(3, 0);
    let client = Client::connect(&cluster.url()).await.unwrap();
    // Groups whose slots fall on different masters, in one transaction.
    let groups = ["ga", "gb", "gc", "gd"];
    let jobs: Vec<Job> = groups
        .iter()
        .flat_map(|g| {
            (0..50).map(move |i| {
                Job::new(g, "t", &i)
                    .unwrap()
                    .delay(Duration::from_millis(if i % 10 == 0 {
                        3_600_000
                    } else {
                        0
                    }))
            })
        })
        .collect();
    let relay = Relay::new(pool.clone(), client.clone()).config(RelayConfig {
        batch: 64,
        ..RelayConfig::default()
    });
    // Sent twice, the second time as a relay killed before its delete would: the second
    // enqueue of each id stores nothing.
    for _ in 0..2 {
        let mut tx = pool.begin().await.unwrap();
        outbox::enqueue_all_in_tx(&mut tx, jobs.clone())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        while relay.relay_batch().await.unwrap() > 0 {}
    }
    let mut conn = cluster.conn();
    for g in groups {
        let ready = support::inspect::xlen(&mut conn, &format!("streamworker:{{{g}}}:default"));
        let delayed = support::inspect::zcard(&mut conn, &format!("streamworker:{{{g}}}:delayed"));
        assert_eq!((ready, delayed), (45, 5), "group {g}");
    }
    assert_eq!(outbox::status(&pool).await.unwrap().backlog, 0);
}
