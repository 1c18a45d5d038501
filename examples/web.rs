//! The 202 pattern in a web app: `POST /reports` hands a slow report to the queue and answers
//! at once with `202 Accepted` and `Location: /jobs/{id}`; `GET /jobs/{id}` answers the job's
//! state and, once it is done, its result. A worker in the same process builds the reports.
//!
//! ```sh
//! cargo run --example web          # REDIS_URL (default redis://127.0.0.1:6379), PORT (3000)
//! curl -i -X POST localhost:3000/reports -H 'content-type: application/json' \
//!      -d '{"user": "ada", "pages": 5}'
//! curl -i localhost:3000/jobs/01J...                # queued, running, then succeeded + result
//! ```
//!
//! The jobs a request makes are collected in a [`JobBatch`] and sent only when the request
//! succeeds: a request that fails after collecting them (here: a report of 0 pages, standing in
//! for a database transaction that rolls back) leaves nothing in Redis.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use streamworker::{Client, Job, JobBatch, JobContext, JobId, TaskError, Worker};

/// The group the reports go to when the example runs on its own.
pub const GROUP: &str = "example-reports";
/// How long a report of one page takes to build: the "slow" work.
pub const PAGE_TIME: Duration = Duration::from_millis(200);
/// Most pages a report may have.
pub const MAX_PAGES: u32 = 50;
/// How long a report's status and result are kept after it is built.
const KEEP_RESULT: Duration = Duration::from_secs(3600);

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct App {
    pub client: Client,
    pub group: String,
}

/// A report asked for in `POST /reports`, and the job's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportRequest {
    pub user: String,
    pub pages: u32,
}

/// A built report: the job's result.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub user: String,
    pub pages: u32,
    pub summary: String,
}

/// The task: builds the report page by page (slowly).
pub async fn build_report(req: ReportRequest, ctx: JobContext) -> Result<Report, TaskError> {
    for _ in 0..req.pages {
        tokio::time::sleep(PAGE_TIME).await;
    }
    Ok(Report {
        summary: format!(
            "{} pages for {} (job {}, attempt {})",
            req.pages,
            req.user,
            ctx.job_id(),
            ctx.attempt()
        ),
        user: req.user,
        pages: req.pages,
    })
}

/// The worker that builds the reports of `group`.
pub fn worker(redis_url: &str, group: &str) -> streamworker::Result<Worker> {
    Worker::builder(redis_url)
        .group(group)
        .task("build_report", build_report)
        .build()
}

/// The HTTP routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/reports", post(create_report))
        .route("/jobs/{id}", get(job_status))
        .with_state(app)
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn unavailable(e: streamworker::Error) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, e)
}

/// `POST /reports`: enqueue, answer 202 with where to look.
async fn create_report(State(app): State<App>, Json(req): Json<ReportRequest>) -> Response {
    // Everything this request enqueues goes out together when it succeeds, or not at all.
    let mut jobs: JobBatch = app.client.batch();
    let job = match Job::new(&app.group, "build_report", &req) {
        Ok(job) => job.keep_result(KEEP_RESULT),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let id = match jobs.push(job) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // The request's own work would go here (e.g. INSERT INTO reports ... in a database
    // transaction). If it fails, returning drops `jobs` and nothing is sent.
    if req.pages == 0 || req.pages > MAX_PAGES {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("pages must be 1 to {MAX_PAGES}"),
        );
    }
    if let Err(e) = jobs.commit().await {
        return unavailable(e);
    }
    let location = format!("/jobs/{id}");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a job id is a valid header value"),
    );
    (
        StatusCode::ACCEPTED,
        headers,
        Json(json!({ "id": id.as_str(), "status_url": location })),
    )
        .into_response()
}

/// `GET /jobs/{id}`: the job's state; its result once it succeeded.
async fn job_status(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Ok(id) = JobId::parse(id) else {
        return error(StatusCode::BAD_REQUEST, "not a job id");
    };
    let status = match app.client.status(&app.group, &id).await {
        Ok(Some(status)) => status,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such job (or its result expired)"),
        Err(e) => return unavailable(e),
    };
    let mut body = json!({
        "id": id.as_str(),
        "state": status.state.as_str(),
        "attempt": status.attempt,
    });
    if let Some(Ok(result)) = status.result_json::<serde_json::Value>() {
        body["result"] = result;
    }
    if let Some(e) = &status.last_error {
        body["error"] = e.clone().into();
    }
    let mut headers = HeaderMap::new();
    if !status.state.is_finished() {
        // Tells a polling client when to ask again.
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    (StatusCode::OK, headers, Json(body)).into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| streamworker::DEFAULT_REDIS_URL.into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let client = Client::connect(&url).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(worker(&url, GROUP)?.run(stop.clone().cancelled_owned()));

    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = router(App {
        client,
        group: GROUP.into(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    stop.cancel();
    worker.await??;
    Ok(())
}
