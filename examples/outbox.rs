//! Register a user and send the welcome email, right: the view inserts the user and enqueues
//! `send_welcome(Row<User>)` in one PostgreSQL transaction, and answers `202 Accepted` with the
//! job's id. If the transaction rolls back (here: an email that is already registered), no
//! email exists; once it commits, the email goes out even if the process dies a millisecond
//! later, and the task reads the user's row as committed when it runs. A relay and a worker run
//! in the same process.
//!
//! ```sh
//! createdb app; DATABASE_URL=postgres:///app cargo run --example outbox --features postgres
//! curl -i -X POST localhost:3000/users -H 'content-type: application/json' \
//!      -d '{"email": "ada@example.com"}'
//! ```
//!
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1/postgres`), `REDIS_URL` (default
//! `redis://127.0.0.1:6379`), `PORT` (3000).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use streamworker::outbox::{self, Relay};
use streamworker::{Client, Job, Loaded, Row, TableRow, TaskError, Worker};
use tokio_util::sync::CancellationToken;

/// The group the welcome emails go to.
pub const GROUP: &str = "example-welcome";

/// What the view shares.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub group: String,
}

/// `POST /users`'s body.
#[derive(Debug, Deserialize)]
pub struct Register {
    pub email: String,
}

/// A user, as the task reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
}

impl TableRow for User {
    const TABLE: &'static str = "example_users";
    const KEY: &'static str = "id";
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
}

/// The users table of the example, and the outbox table.
pub async fn migrate(pool: &PgPool) -> Result<(), Box<dyn std::error::Error>> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS example_users (
            id bigserial PRIMARY KEY,
            email text NOT NULL UNIQUE
        )",
    )
    .execute(pool)
    .await?;
    outbox::init(pool).await?;
    Ok(())
}

/// The routes: `POST /users`.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/users", post(register))
        .with_state(app)
}

/// Inserts the user and enqueues the welcome email in one transaction; answers 202 with both
/// ids, or 409 (and nothing enqueued) when the email is taken.
async fn register(State(app): State<App>, Json(req): Json<Register>) -> Response {
    let fail = |e: &dyn std::fmt::Display| {
        (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
    };
    let mut tx = match app.pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail(&e),
    };
    let user: i64 = match sqlx::query_scalar(
        "INSERT INTO example_users (email) VALUES ($1) ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(&req.email)
    .fetch_optional(&mut *tx)
    .await
    {
        Ok(Some(id)) => id,
        // Taken: the transaction rolls back when `tx` is dropped, and no email exists.
        Ok(None) => return (StatusCode::CONFLICT, "email already registered").into_response(),
        Err(e) => return fail(&e),
    };
    let job = match Job::new(&app.group, "send_welcome", &Row::<User>::from_key(user)) {
        Ok(job) => job,
        Err(e) => return fail(&e),
    };
    let job_id = match outbox::enqueue_in_tx(&mut tx, job).await {
        Ok(id) => id,
        Err(e) => return fail(&e),
    };
    if let Err(e) = tx.commit().await {
        return fail(&e);
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "user": user, "welcome_job": job_id.to_string() })),
    )
        .into_response()
}

/// The task: sends the welcome email (here, prints it) to the user as committed. A user
/// deleted before it runs sends the job to the dead stream as `row example_users/ID not
/// found`, without retries.
pub async fn send_welcome(Loaded(user): Loaded<Row<User>>) -> Result<(), TaskError> {
    println!("welcome email to {} (user {})", user.email, user.id);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".into());
    let redis =
        std::env::var("REDIS_URL").unwrap_or_else(|_| streamworker::DEFAULT_REDIS_URL.into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let pool = PgPool::connect(&database).await?;
    migrate(&pool).await?;
    let client = Client::connect(&redis).await?;

    let stop = CancellationToken::new();
    let relay = tokio::spawn(Relay::new(pool.clone(), client).run(stop.clone().cancelled_owned()));
    let worker = Worker::builder(&redis)
        .state(pool.clone())
        .group(GROUP)
        .task("send_welcome", send_welcome)
        .build()?;
    let worker = tokio::spawn(worker.run(stop.clone().cancelled_owned()));

    let app = App {
        pool,
        group: GROUP.into(),
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://127.0.0.1:{port}: POST /users {{\"email\": ...}}");
    let shutdown = stop.clone();
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            tokio::signal::ctrl_c().await.ok();
            shutdown.cancel();
        })
        .await?;
    relay.await??;
    worker.await??;
    Ok(())
}
