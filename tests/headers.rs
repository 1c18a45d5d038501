//! Job headers end to end on a real Redis: set by a Rust producer, the CLI (`enqueue
//! --header`) or redis-cli (`h.<name>` fields), read by a handler
//! (`JobContext::header`, `origin_url`) and by an `--exec` command (environment), through a
//! delay, a retry, and dead + re-drive; shown by `streamworker job`; refused when over the
//! limits. With the `axum` feature, `RequestOrigin` captured from a real HTTP request.

mod support;

use serde_json::json;
use std::fs;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::admin::Admin;
use streamworker::{Backoff, Job, JobContext, State, TaskError, Worker};
use support::cli::{enqueue, json as cli_json, ok, redis_cli, run, text};
use support::inspect::stream_entries;
use support::keys::{key, unique_group};
use support::process::WorkerProcess;
use support::server::RedisServer;
use support::wait::until;
use support::workers::{Running, client};

/// One run as the handler saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: String,
    attempt: u32,
    headers: Vec<(String, String)>,
    link: Option<String>,
}

/// Every run, shared with the test.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<Seen>>>);

impl Runs {
    fn of(&self, id: &str) -> Vec<Seen> {
        let runs = self.0.lock().unwrap();
        runs.iter().filter(|s| s.id == id).cloned().collect()
    }
}

/// Records what it saw; `{"fail": "retry"}` fails its first attempt (retried), `{"fail":
/// "dead"}` its first run for good (no retry).
async fn see(
    args: serde_json::Value,
    ctx: JobContext,
    State(runs): State<Runs>,
) -> Result<(), TaskError> {
    let seen = Seen {
        id: ctx.job_id().to_string(),
        attempt: ctx.attempt(),
        headers: ctx
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        link: ctx.origin_url("/users/42"),
    };
    let first = runs.of(ctx.job_id()).is_empty();
    runs.0.lock().unwrap().push(seen);
    match args["fail"].as_str() {
        Some("retry") if ctx.attempt() == 1 => Err(TaskError::retry("not yet")),
        Some("dead") if first => Err(TaskError::fatal("gone")),
        _ => Ok(()),
    }
}

fn start(url: &str, group: &str, runs: &Runs) -> Running {
    Running::worker(
        Worker::builder(url)
            .group(group)
            .backoff(Backoff::new(
                Duration::from_millis(20),
                Duration::from_millis(50),
            ))
            .state(runs.clone())
            .task("see", see)
            .build()
            .unwrap(),
    )
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const ORIGIN: &str = "https://a.example/app";

#[tokio::test]
async fn headers_reach_the_handler_through_a_delay_a_retry_and_dead_then_redrive() {
    let redis = RedisServer::start();
    let group = unique_group("hdr");
    let runs = Runs::default();
    let worker = start(&redis.url(), &group, &runs);
    let client = client(&redis).await;
    let job = |args: serde_json::Value| {
        Job::new(&group, "see", &args)
            .unwrap()
            .header("origin", ORIGIN)
            .header("locale", "fr")
    };
    let want = pairs(&[("origin", ORIGIN), ("locale", "fr")]);
    let link = Some("https://a.example/app/users/42".to_string());

    let plain = client.enqueue(job(json!({}))).await.unwrap();
    let delayed = client
        .enqueue(job(json!({"fail": "retry"})).delay(Duration::from_millis(200)))
        .await
        .unwrap();
    let dies = client.enqueue(job(json!({"fail": "dead"}))).await.unwrap();
    until(
        "the plain and delayed jobs to run, the delayed one twice",
        || runs.of(plain.as_str()).len() == 1 && runs.of(delayed.as_str()).len() == 2,
    )
    .await;
    for seen in runs
        .of(plain.as_str())
        .iter()
        .chain(&runs.of(delayed.as_str()))
    {
        assert_eq!(seen.headers, want, "{seen:?}");
        assert_eq!(seen.link, link, "{seen:?}");
    }
    assert_eq!(runs.of(delayed.as_str())[1].attempt, 2, "the retry ran");

    let dead_key = key(&group, "dead");
    until("the failing job to be dead", || {
        !stream_entries(&mut redis.conn(), &dead_key).is_empty()
    })
    .await;
    let dead = &stream_entries(&mut redis.conn(), &dead_key)[0];
    assert_eq!(dead["h.origin"], ORIGIN, "the dead entry keeps the headers");
    let admin = Admin::connect(&redis.url()).await.unwrap();
    admin.dead_retry(&group, &[dies.to_string()]).await.unwrap();
    until("the re-driven job to run", || {
        runs.of(dies.as_str()).len() == 2
    })
    .await;
    for seen in runs.of(dies.as_str()) {
        assert_eq!(seen.headers, want, "{seen:?}");
    }
    // A job without headers sees none.
    let bare = client
        .enqueue(Job::new(&group, "see", &json!({})).unwrap())
        .await
        .unwrap();
    until("the job without headers to run", || {
        runs.of(bare.as_str()).len() == 1
    })
    .await;
    assert_eq!(runs.of(bare.as_str())[0].headers, []);
    assert_eq!(runs.of(bare.as_str())[0].link, None);
    worker.stop().await;
}

#[tokio::test]
async fn a_redis_cli_job_with_header_fields_is_read() {
    let redis = RedisServer::start();
    let group = unique_group("hdr");
    let runs = Runs::default();
    let worker = start(&redis.url(), &group, &runs);
    let entry = redis_cli(
        &redis,
        &[
            "XADD",
            &key(&group, "default"),
            "*",
            "task",
            "see",
            "args",
            "{}",
            "h.origin",
            "http://cli.example:8080",
            "h.bad name",
            "ignored: not a valid header name",
        ],
    );
    until("the redis-cli job to run", || runs.of(&entry).len() == 1).await;
    let seen = &runs.of(&entry)[0];
    assert_eq!(
        seen.headers,
        pairs(&[("origin", "http://cli.example:8080")])
    );
    assert_eq!(
        seen.link.as_deref(),
        Some("http://cli.example:8080/users/42")
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_exec_command_finds_the_headers_in_its_environment() {
    let redis = RedisServer::start();
    let group = unique_group("hdr");
    let out = tempfile::tempdir().unwrap();
    let command = r#"sh -c 'printf "%s|%s" "$STREAMWORKER_HEADER_ORIGIN" "$STREAMWORKER_HEADER_X_TRACE_ID" > "$OUT/env.tmp"; mv "$OUT/env.tmp" "$OUT/env"'"#;
    let _worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", command],
    );
    enqueue(
        &redis,
        &group,
        &[
            "--task",
            "t",
            "--header",
            "origin=https://a.example",
            "--header",
            "x-trace.id=a=b",
        ],
    )
    .await;
    let file = out.path().join("env");
    until("the command to write its environment", || file.exists()).await;
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "https://a.example|a=b",
        "the value is everything after the first '='"
    );
}

#[tokio::test]
async fn the_cli_enqueues_headers_and_shows_them_escaped() {
    let redis = RedisServer::start();
    let group = unique_group("hdr");
    let id = enqueue(
        &redis,
        &group,
        &[
            "--task",
            "t",
            "--header",
            "origin=https://a.example",
            "--header",
            "note=red\x1b[31malert",
        ],
    )
    .await;
    let shown = ok(&redis, &["job", &id, "--group", &group]).await;
    assert!(
        shown.contains("  headers:    note: red\\x1b[31malert\n"),
        "{shown}"
    );
    assert!(
        shown.contains("              origin: https://a.example\n"),
        "{shown}"
    );
    assert!(!shown.contains('\x1b'), "control characters are escaped");
    let report = cli_json(&redis, &["--json", "job", &id, "--group", &group]).await;
    assert_eq!(
        report["headers"],
        json!({"origin": "https://a.example", "note": "red\x1b[31malert"})
    );
    let stored = &stream_entries(&mut redis.conn(), &key(&group, "default"))[0];
    assert_eq!(stored["h.origin"], "https://a.example");

    // A job without headers says so.
    let bare = enqueue(&redis, &group, &["--task", "t"]).await;
    let shown = ok(&redis, &["job", &bare, "--group", &group]).await;
    assert!(shown.contains("  headers:    -\n"), "{shown}");
}

#[tokio::test]
async fn headers_over_the_limits_are_refused_at_enqueue_saying_what_to_do() {
    let redis = RedisServer::start();
    let group = unique_group("hdr");
    let url = redis.url();
    for (flag, want) in [
        ("bad name=x", "invalid header name \"bad name\""),
        ("=x", "invalid header name \"\""),
        ("novalue", "has no '=': write NAME=VALUE"),
    ] {
        let out = run(&[
            "--redis", &url, "enqueue", "--group", &group, "--task", "t", "--header", flag,
        ])
        .await;
        assert!(!out.status.success(), "{flag:?} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{flag:?}: {err}");
    }
    let client = client(&redis).await;
    let big = Job::new(&group, "t", &json!({}))
        .unwrap()
        .header("origin", "x".repeat(5000));
    let err = client.enqueue(big).await.unwrap_err().to_string();
    assert!(
        err.contains("header origin is 5000 bytes, over the limit of 4096")
            && err.contains("put larger values in the job's arguments"),
        "{err}"
    );
    assert!(
        stream_entries(&mut redis.conn(), &key(&group, "default")).is_empty(),
        "nothing was enqueued"
    );
}

#[cfg(feature = "axum")]
mod axum_origin {
    use super::*;
    use axum::extract::State as AxumState;
    use axum::routing::post;
    use axum::{Extension, Router};
    use streamworker::{Client, OriginConfig, RequestOrigin};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn signup(
        origin: RequestOrigin,
        AxumState((client, group)): AxumState<(Client, String)>,
    ) -> String {
        let job = Job::new(&group, "see", &json!({})).unwrap().origin(&origin);
        client.enqueue(job).await.unwrap().to_string()
    }

    /// POSTs to `path` with `headers`; returns the response body (the job id).
    async fn post_to(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        raw.split_once("\r\n\r\n").unwrap().1.to_string()
    }

    #[tokio::test]
    async fn a_request_origin_becomes_the_links_a_job_builds() {
        let redis = RedisServer::start();
        let group = unique_group("hdr");
        let runs = Runs::default();
        let worker = start(&redis.url(), &group, &runs);
        let client = client(&redis).await;
        let api = Router::new()
            .route("/signup", post(signup))
            .with_state((client, group.clone()));
        let direct = Router::new().nest("/app", api.clone());
        let proxied = Router::new()
            .nest("/app", api)
            .layer(Extension(OriginConfig::default().trust_forwarded()));
        let mut addrs = Vec::new();
        for app in [direct, proxied] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        let forwarded = "X-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n";

        // Not trusted by default: the Host header and plain http.
        let id = post_to(addrs[0], "/app/signup", forwarded).await;
        until("the direct request's job to run", || {
            runs.of(&id).len() == 1
        })
        .await;
        assert_eq!(
            runs.of(&id)[0].link,
            Some(format!("http://{}/app/users/42", addrs[0]))
        );
        // Behind a trusted proxy: its scheme and host.
        let id = post_to(addrs[1], "/app/signup", forwarded).await;
        until("the proxied request's job to run", || {
            runs.of(&id).len() == 1
        })
        .await;
        assert_eq!(
            runs.of(&id)[0].link.as_deref(),
            Some("https://shop.example/app/users/42")
        );
        worker.stop().await;
    }
}
