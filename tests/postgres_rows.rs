//! Job arguments that are database rows, against a real PostgreSQL and a real Redis, both
//! started per test: the worker loads the committed row as it is at run time; a missing row is
//! dead with its reason and no retry spent, or retried when the task says so; a changed row
//! runs or is dead per task; a job may hold several rows.
#![cfg(feature = "postgres")]

mod support;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::{
    Backoff, ChangedRow, HasRows, Job, JobId, JobState, LoadRow, Loaded, MissingRow, Row, RowPool,
    State, TableRow, TaskError, TaskOptions, Worker,
};
use support::inspect::stream_entries;
use support::keys::{key, unique_group};
use support::postgres::PgServer;
use support::server::RedisServer;
use support::wait::{until, wait_until};
use support::workers::{Running, client};

#[derive(Debug, Clone, sqlx::FromRow)]
struct User {
    id: i64,
    email: String,
    version: i64,
}

impl TableRow for User {
    const TABLE: &'static str = "users";
    const KEY: &'static str = "id";
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
    fn version(&self) -> Option<i64> {
        Some(self.version)
    }
}

/// Two rows in one job.
#[derive(Serialize, Deserialize)]
struct Transfer {
    from: Row<User>,
    to: Row<User>,
}

impl HasRows for Transfer {
    fn rows_mut(&mut self) -> Vec<&mut dyn LoadRow> {
        vec![&mut self.from, &mut self.to]
    }
}

/// The worker's state: the pool rows come from, and what the handlers saw.
#[derive(Clone)]
struct App {
    pool: PgPool,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RowPool for App {
    fn row_pool(&self) -> &PgPool {
        &self.pool
    }
}

impl App {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Records the email of the row it was given.
async fn greet(Loaded(user): Loaded<Row<User>>, State(app): State<App>) -> Result<(), TaskError> {
    app.seen.lock().unwrap().push(user.email.clone());
    Ok(())
}

/// Records `from -> to`.
async fn transfer(Loaded(t): Loaded<Transfer>, State(app): State<App>) -> Result<(), TaskError> {
    app.seen
        .lock()
        .unwrap()
        .push(format!("{} -> {}", t.from.email, t.to.email));
    Ok(())
}

/// A PostgreSQL with the `users` table, a Redis, and a worker serving `group` with `greet`
/// (rows missing → dead, changed → run), `strict` (changed → dead), `patient` (missing →
/// retried) and `transfer`.
struct Setup {
    _pg: PgServer,
    redis: RedisServer,
    app: App,
    group: String,
    worker: Option<Running>,
}

impl Setup {
    async fn new(prefix: &str) -> Setup {
        let pg = PgServer::start();
        let pool = PgPool::connect(&pg.url()).await.unwrap();
        sqlx::query("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, version bigint NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        Setup {
            _pg: pg,
            redis: RedisServer::start(),
            app: App {
                pool,
                seen: Arc::default(),
            },
            group: unique_group(prefix),
            worker: None,
        }
    }

    fn start_worker(&mut self) {
        let worker = Worker::builder(self.redis.url())
            .group(&self.group)
            .backoff(Backoff::new(
                Duration::from_millis(50),
                Duration::from_millis(100),
            ))
            .state(self.app.clone())
            .task("greet", greet)
            .task_with(
                "strict",
                greet,
                TaskOptions::new().changed_row(ChangedRow::Dead),
            )
            .task_with(
                "patient",
                greet,
                TaskOptions::new().missing_row(MissingRow::Retry),
            )
            .task("transfer", transfer)
            .build()
            .unwrap();
        self.worker = Some(Running::worker(worker));
    }

    async fn stop(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await;
        }
    }

    async fn insert(&self, id: i64, email: &str) -> User {
        sqlx::query("INSERT INTO users (id, email, version) VALUES ($1, $2, 1)")
            .bind(id)
            .bind(email)
            .execute(&self.app.pool)
            .await
            .unwrap();
        User {
            id,
            email: email.into(),
            version: 1,
        }
    }

    /// Sets the email and bumps the version.
    async fn update(&self, id: i64, email: &str) {
        sqlx::query("UPDATE users SET email = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(email)
            .execute(&self.app.pool)
            .await
            .unwrap();
    }

    /// Enqueues a tracked job of `task` with `args` and at most `max_retries` retries.
    async fn enqueue<A: Serialize>(&self, task: &str, args: &A, max_retries: u32) -> JobId {
        let job = Job::new(&self.group, task, args)
            .unwrap()
            .max_retries(max_retries)
            .keep_result(Duration::from_secs(600));
        client(&self.redis).await.enqueue(job).await.unwrap()
    }

    /// Waits until job `id` has finished and returns its state and attempt.
    async fn finished(&self, id: &JobId) -> (JobState, u32) {
        let status = client(&self.redis)
            .await
            .wait_for_result(&self.group, id, support::wait::WAIT)
            .await
            .unwrap();
        (status.state, status.attempt)
    }

    /// The dead stream's entries by job id.
    fn dead(&self) -> HashMap<String, HashMap<String, String>> {
        stream_entries(&mut self.redis.conn(), &key(&self.group, "dead"))
            .into_iter()
            .map(|e| (e["id"].clone(), e))
            .collect()
    }
}

/// The `args_msgpack` bytes of the first job waiting in the group's default stream.
fn first_args(s: &Setup) -> Vec<u8> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key(&s.group, "default"))
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query(&mut s.redis.conn())
        .unwrap();
    reply.ids[0].get("args_msgpack").unwrap()
}

#[tokio::test]
async fn a_row_argument_travels_as_a_reference_and_the_handler_sees_the_row_at_run_time() {
    let mut s = Setup::new("rows-load").await;
    let ann = s.insert(1, "ann@old.example").await;
    s.insert(2, "bob@example.com").await;
    let from_rust = s.enqueue("greet", &Row::new(&ann), 3).await;
    // A producer in another language writes the same reference as JSON.
    let json = Job::from_json(&s.group, "greet", r#"{"table":"users","key":2}"#)
        .unwrap()
        .keep_result(Duration::from_secs(600));
    let from_json = client(&s.redis).await.enqueue(json).await.unwrap();

    let wire: serde_json::Value = rmp_serde::from_slice(&first_args(&s)).unwrap();
    assert_eq!(
        wire,
        serde_json::json!({"table": "users", "key": 1, "version": 1}),
        "only the reference is stored, never the row's data"
    );

    s.update(1, "ann@new.example").await; // after enqueue, before the job runs
    s.start_worker();
    assert_eq!(s.finished(&from_rust).await, (JobState::Succeeded, 1));
    assert_eq!(s.finished(&from_json).await, (JobState::Succeeded, 1));
    let mut seen = s.app.seen();
    seen.sort();
    assert_eq!(seen, ["ann@new.example", "bob@example.com"]);
    s.stop().await;
}

#[tokio::test]
async fn a_missing_row_is_dead_with_its_reason_and_no_retry_spent() {
    let mut s = Setup::new("rows-missing").await;
    let deleted = s.insert(42, "gone@example.com").await;
    let deleted_job = s.enqueue("greet", &Row::new(&deleted), 3).await;
    sqlx::query("DELETE FROM users WHERE id = 42")
        .execute(&s.app.pool)
        .await
        .unwrap();
    // A producer that enqueues inside a transaction it has not committed yet.
    let mut tx = s.app.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO users (id, email, version) VALUES (43, 'early@example.com', 1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let uncommitted_job = s.enqueue("greet", &Row::<User>::from_key(43), 3).await;
    s.start_worker();
    assert_eq!(s.finished(&deleted_job).await, (JobState::Dead, 1));
    assert_eq!(s.finished(&uncommitted_job).await, (JobState::Dead, 1));
    tx.rollback().await.unwrap();

    let dead = s.dead();
    assert_eq!(
        dead[deleted_job.as_str()]["reason"],
        "row users/42 not found"
    );
    assert_eq!(
        dead[uncommitted_job.as_str()]["reason"],
        "row users/43 not found"
    );
    for id in [&deleted_job, &uncommitted_job] {
        // `attempt` is written only by a retry: absent, this is still the first attempt.
        assert_eq!(dead[id.as_str()].get("attempt"), None, "no retry was spent");
        assert!(
            dead[id.as_str()].contains_key("args_msgpack"),
            "the args are kept"
        );
    }
    assert!(s.app.seen().is_empty(), "the handler never ran");
    s.stop().await;
}

#[tokio::test]
async fn a_task_that_retries_missing_rows_runs_once_the_row_appears() {
    let mut s = Setup::new("rows-retry").await;
    let late = s.enqueue("patient", &Row::<User>::from_key(7), 100).await;
    let never = s.enqueue("patient", &Row::<User>::from_key(8), 1).await;
    s.start_worker();
    // A replica catching up: the row appears after the job failed at least once.
    let c = client(&s.redis).await;
    wait_until(support::wait::WAIT, "job of row 7 to be retried", || {
        let (c, group, late) = (c.clone(), s.group.clone(), late.clone());
        async move {
            let status = c.status(&group, &late).await.unwrap().unwrap();
            status.attempt >= 2
        }
    })
    .await;
    s.insert(7, "late@example.com").await;
    let (state, attempt) = s.finished(&late).await;
    assert_eq!(state, JobState::Succeeded);
    assert!(attempt >= 2, "ran on attempt {attempt}");
    assert_eq!(s.app.seen(), ["late@example.com"]);

    assert_eq!(s.finished(&never).await, (JobState::Dead, 2));
    assert_eq!(
        s.dead()[never.as_str()]["reason"],
        "failed after 2 attempts: row users/8 not found"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_changed_row_runs_with_the_current_row_or_is_dead_as_the_task_says() {
    let mut s = Setup::new("rows-changed").await;
    let carol = s.insert(3, "carol@old.example").await;
    let dave = s.insert(4, "dave@example.com").await;
    let runs_anyway = s.enqueue("greet", &Row::new(&carol), 3).await;
    let refused = s.enqueue("strict", &Row::new(&carol), 3).await;
    let unchanged = s.enqueue("strict", &Row::new(&dave), 3).await;
    let unversioned = s.enqueue("strict", &Row::<User>::from_key(3), 3).await;
    s.update(3, "carol@new.example").await;
    s.start_worker();

    assert_eq!(s.finished(&runs_anyway).await, (JobState::Succeeded, 1));
    assert_eq!(s.finished(&refused).await, (JobState::Dead, 1));
    assert_eq!(s.finished(&unchanged).await, (JobState::Succeeded, 1));
    assert_eq!(s.finished(&unversioned).await, (JobState::Succeeded, 1));
    assert_eq!(
        s.dead()[refused.as_str()]["reason"],
        "row users/3 changed: version 1 at enqueue, 2 now"
    );
    let mut seen = s.app.seen();
    seen.sort();
    assert_eq!(
        seen,
        ["carol@new.example", "carol@new.example", "dave@example.com"]
    );
    s.stop().await;
}

#[tokio::test]
async fn a_job_with_two_rows_loads_both_and_fails_on_either_missing() {
    let mut s = Setup::new("rows-two").await;
    s.insert(1, "ann@example.com").await;
    s.insert(2, "bob@example.com").await;
    let both = Transfer {
        from: Row::from_key(1),
        to: Row::from_key(2),
    };
    let half = Transfer {
        from: Row::from_key(2),
        to: Row::from_key(99),
    };
    let ok = s.enqueue("transfer", &both, 3).await;
    let dead = s.enqueue("transfer", &half, 3).await;
    s.start_worker();
    assert_eq!(s.finished(&ok).await, (JobState::Succeeded, 1));
    assert_eq!(s.finished(&dead).await, (JobState::Dead, 1));
    assert_eq!(s.dead()[dead.as_str()]["reason"], "row users/99 not found");
    until("the transfer recorded", || s.app.seen().len() == 1).await;
    assert_eq!(s.app.seen(), ["ann@example.com -> bob@example.com"]);
    s.stop().await;
}

#[tokio::test]
async fn a_row_reference_to_another_table_does_not_decode() {
    let mut s = Setup::new("rows-table").await;
    let json = Job::from_json(&s.group, "greet", r#"{"table":"orders","key":1}"#)
        .unwrap()
        .keep_result(Duration::from_secs(600));
    let id = client(&s.redis).await.enqueue(json).await.unwrap();
    s.start_worker();
    assert_eq!(s.finished(&id).await, (JobState::Dead, 1));
    let reason = s.dead()[id.as_str()]["reason"].clone();
    assert!(
        reason.contains(r#"a row of table "orders""#) && reason.contains(r#"table "users""#),
        "{reason}"
    );
    s.stop().await;
}
