//! `--exec-mode persistent`: a long-lived child per slot runs jobs sent as JSON lines and
//! answers each with a JSON line. Real worker processes of the project's binary against a
//! redis-server of the test's own, with `handler.py` (beside this file) as the child: what it
//! does depends on the job's task (see its doc). Linux only: processes are looked at in
//! `/proc`.
#![cfg(target_os = "linux")]

#[path = "../support/mod.rs"]
mod support;

/// The `--exec` tests' view of processes, of which these tests use a part.
#[path = "../exec/procs.rs"]
#[allow(dead_code)]
mod procs;

use procs::{KillOnFailure, members, runs_in};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::cli::run;
use support::keys::unique_group;
use support::process::WorkerProcess;
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};

/// A file of the project, by its path from the project's root.
fn project_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The `--exec` command running `handler.py`.
fn handler() -> String {
    let path = project_file("tests/exec_persistent/handler.py");
    format!("python3 {}", path.display())
}

/// A worker serving `group` with one persistent slot running `exec`, with `flags` added.
fn worker(
    redis: &RedisServer,
    out: &Path,
    group: &str,
    exec: &str,
    flags: &[&str],
) -> WorkerProcess {
    let mut args = vec![
        "--group",
        group,
        "--concurrency",
        "1",
        "--retry-backoff",
        "10ms",
        "--exec-mode",
        "persistent",
        "--exec",
        exec,
    ];
    args.extend_from_slice(flags);
    WorkerProcess::start(&redis.url(), out, &args)
}

/// Enqueues a job of `task` with its result kept, and `flags`; returns its id.
async fn enqueue(redis: &RedisServer, group: &str, task: &str, flags: &[&str]) -> String {
    let mut all = vec!["--task", task, "--keep-result", "1h"];
    all.extend_from_slice(flags);
    support::cli::enqueue(redis, group, &all).await
}

/// Waits (up to [`WAIT`]) until job `id` is in `state`; returns what `job --json` says of it.
async fn job_in_state(redis: &RedisServer, group: &str, id: &str, state: &str) -> Value {
    let url = redis.url();
    let deadline = Instant::now() + WAIT;
    loop {
        let out = run(&["--redis", &url, "--json", "job", "--group", group, id]).await;
        let job: Option<Value> = out
            .status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap());
        if let Some(job) = job.as_ref().filter(|j| j["place"]["state"] == state) {
            return job.clone();
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is not {state} after {WAIT:?}: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs job `task` to success; returns its result as JSON.
async fn succeeded(redis: &RedisServer, group: &str, task: &str, flags: &[&str]) -> Value {
    let id = enqueue(redis, group, task, flags).await;
    let job = job_in_state(redis, group, &id, "succeeded").await;
    let result = job["result"].as_str().unwrap_or_else(|| panic!("{job}"));
    serde_json::from_str(result).unwrap_or_else(|e| panic!("result is not JSON ({e}): {job}"))
}

/// Runs job `task` until it is dead; returns its last error.
async fn dead(redis: &RedisServer, group: &str, task: &str, flags: &[&str]) -> String {
    let id = enqueue(redis, group, task, flags).await;
    let job = job_in_state(redis, group, &id, "dead").await;
    job["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"))
        .to_string()
}

/// The pid of the child that ran a job, from its result.
fn pid(result: &Value) -> i64 {
    result["pid"].as_i64().unwrap_or_else(|| panic!("{result}"))
}

/// A job's headers reach the child as the `headers` member of its line, which a job without
/// headers does not have.
#[tokio::test]
async fn the_child_gets_a_job_s_headers_in_its_line() {
    let redis = RedisServer::start();
    let group = unique_group("persist-hdr");
    let out = tempfile::tempdir().unwrap();
    let _worker = worker(&redis, out.path(), &group, &handler(), &[]);
    let flags = [
        "--header",
        "origin=https://a.example",
        "--header",
        "locale=fr",
    ];
    let with = succeeded(&redis, &group, "echo", &flags).await;
    assert_eq!(
        with["headers"],
        serde_json::json!({"origin": "https://a.example", "locale": "fr"})
    );
    let without = succeeded(&redis, &group, "echo", &[]).await;
    assert_eq!(without["headers"], Value::Null);
}

/// Jobs run on one long-lived child, each answered with its result; the child learns each
/// job's facts from its line and its own from the environment, and its stderr reaches the
/// worker's log escaped.
#[tokio::test]
async fn jobs_succeed_with_their_results_on_one_long_lived_child() {
    let redis = RedisServer::start();
    let group = unique_group("persist-ok");
    let out = tempfile::tempdir().unwrap();
    let worker = worker(&redis, out.path(), &group, &handler(), &[]);

    let first = succeeded(
        &redis,
        &group,
        "echo",
        &["--args", r#"{"to":"a\nb","n":[1,2]}"#],
    )
    .await;
    assert_eq!(
        first["args"],
        serde_json::json!({"to": "a\nb", "n": [1, 2]})
    );
    assert_eq!(
        (&first["task"], &first["attempt"], &first["group"]),
        (&"echo".into(), &1.into(), &group.as_str().into())
    );
    assert_eq!(
        (&first["slot"], &first["protocol"]),
        (&"0".into(), &"1".into())
    );
    let (now, deadline) = (
        first["now_ms"].as_i64().unwrap(),
        first["deadline_ms"].as_i64().unwrap(),
    );
    let left = deadline - now;
    assert!(
        (29 * 60_000..=30 * 60_000).contains(&left),
        "the default 30 min: {left} ms"
    );
    for _ in 0..3 {
        let next = succeeded(&redis, &group, "echo", &[]).await;
        assert_eq!(pid(&next), pid(&first), "the same child runs every job");
    }
    let log = worker.log();
    assert!(log.contains(r"stderr: handler \x1b[2J started"), "{log}");
    assert!(!log.contains('\x1b'), "{log}");
}

/// A job the child fails is retried (and succeeds on its second attempt); one it fails
/// without retry goes to the dead stream with the child's error. The child is kept.
#[tokio::test]
async fn a_failing_job_is_retried_and_a_fatal_one_is_dead() {
    let redis = RedisServer::start();
    let group = unique_group("persist-fail");
    let out = tempfile::tempdir().unwrap();
    let _worker = worker(&redis, out.path(), &group, &handler(), &[]);

    let flaky = succeeded(&redis, &group, "flaky", &[]).await;
    assert_eq!(flaky["attempt"], 2, "{flaky}");
    let error = dead(&redis, &group, "fatal", &[]).await;
    assert_eq!(error, "failed without retry: bad input");
    let after = succeeded(&redis, &group, "echo", &[]).await;
    assert_eq!(
        pid(&after),
        pid(&flaky),
        "a failure the child reports keeps it"
    );
}

/// A child that dies while running a job fails it (retryable, saying how it ended and its last
/// stderr); the job runs again on a new child, which then serves the next jobs.
#[tokio::test]
async fn a_child_that_crashes_mid_job_is_replaced_and_the_job_retried() {
    let redis = RedisServer::start();
    let group = unique_group("persist-crash");
    let out = tempfile::tempdir().unwrap();
    let worker = worker(&redis, out.path(), &group, &handler(), &[]);

    let before = succeeded(&redis, &group, "echo", &[]).await;
    let retried = succeeded(&redis, &group, "crash", &[]).await;
    assert_eq!(retried["attempt"], 2, "{retried}");
    assert_ne!(pid(&retried), pid(&before), "a new child ran the retry");
    let next = succeeded(&redis, &group, "echo", &[]).await;
    assert_eq!(pid(&next), pid(&retried), "the new child stays");
    let log = worker.log();
    let crashed = format!(
        "the --exec child {} exited (exit status 3) before answering; its last stderr: \
         handler \\x1b[2J started | crashing on purpose",
        pid(&before)
    );
    assert!(log.contains(&crashed), "{log}");
    assert!(
        log.contains("the slot's next job starts a new child"),
        "{log}"
    );
}

/// A child that exits after answering is replaced before the next job is sent: that job
/// runs on a new child at its first attempt, and the log says the child exited between jobs.
#[tokio::test]
async fn a_child_that_exits_between_jobs_is_replaced_before_the_next_job() {
    let redis = RedisServer::start();
    let group = unique_group("persist-quit");
    let out = tempfile::tempdir().unwrap();
    let worker = worker(&redis, out.path(), &group, &handler(), &[]);

    let quit = pid(&succeeded(&redis, &group, "quit", &[]).await) as i32;
    until("the child to exit", || !runs_in(quit, quit)).await;
    let next = succeeded(&redis, &group, "echo", &[]).await;
    assert_eq!(next["attempt"], 1, "{next}");
    assert_ne!(pid(&next) as i32, quit);
    let log = worker.log();
    let said = format!("slot 0: the --exec child {quit} exited (exit status 0) between jobs");
    assert!(log.contains(&said), "{log}");
}

/// A reply that is not a protocol line, or that names another job, fails the job with a clear
/// error; the child is killed and the next job runs on a new one.
#[tokio::test]
async fn a_protocol_violation_fails_the_job_and_replaces_the_child() {
    let redis = RedisServer::start();
    let group = unique_group("persist-protocol");
    let out = tempfile::tempdir().unwrap();
    let _worker = worker(
        &redis,
        out.path(),
        &group,
        &handler(),
        &["--max-retries", "0"],
    );

    let first = succeeded(&redis, &group, "echo", &[]).await;
    let error = dead(&redis, &group, "garbage", &[]).await;
    assert!(
        error.starts_with(
            "failed after 1 attempt: protocol error: the --exec child's reply is not a JSON \
             object with \"id\" and \"ok\""
        ),
        "{error}"
    );
    assert!(error.contains("\"this is not json\""), "{error}");
    assert!(
        error.ends_with(&format!("(child {} killed and replaced)", pid(&first))),
        "{error}"
    );
    let second = succeeded(&redis, &group, "echo", &[]).await;
    assert_ne!(pid(&second), pid(&first));
    let gone = pid(&first) as i32;
    until("the replaced child to be gone", || !runs_in(gone, gone)).await;

    let error = dead(&redis, &group, "wrong_id", &[]).await;
    assert!(
        error.contains(
            "protocol error: the --exec child answered job \"someone-else\" while running job"
        ),
        "{error}"
    );
    let third = succeeded(&redis, &group, "echo", &[]).await;
    assert_ne!(pid(&third), pid(&second));
}

/// A job that times out kills its child with the child's whole process group (a grandchild
/// included); the next job runs on a fresh child.
#[tokio::test]
async fn a_timed_out_job_kills_its_child_and_process_group() {
    let redis = RedisServer::start();
    let group = unique_group("persist-timeout");
    let out = tempfile::tempdir().unwrap();
    let mut worker = worker(
        &redis,
        out.path(),
        &group,
        &handler(),
        &["--max-retries", "0", "--timeout", "1s"],
    );

    let id = enqueue(&redis, &group, "hang", &[]).await;
    let pids_file = out.path().join("pids");
    until("the child to record its pids", || pids_file.exists()).await;
    let pids: Vec<i32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let (child, grandchild) = (pids[0], pids[1]);
    let _cleanup = KillOnFailure(child);
    assert!(
        runs_in(grandchild, child),
        "the grandchild is in the child's group"
    );

    let job = job_in_state(&redis, &group, &id, "dead").await;
    assert!(
        job["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out after 1s")),
        "{job}"
    );
    wait_until(WAIT, "no process of the timed-out child's group", || {
        let gone = members(child).is_empty() && !runs_in(grandchild, child);
        async move { gone }
    })
    .await;
    let next = succeeded(&redis, &group, "echo", &[]).await;
    assert_ne!(pid(&next) as i32, child);
    assert!(worker.is_running());
}

/// A worker SIGKILLed with an idle child leaves no process of it: the watchdog kills the
/// children's groups for as long as they live, not only while they run a job.
#[tokio::test]
async fn a_sigkilled_worker_leaves_no_child_behind() {
    let redis = RedisServer::start();
    let group = unique_group("persist-kill");
    let out = tempfile::tempdir().unwrap();
    let mut worker = worker(&redis, out.path(), &group, &handler(), &[]);
    let child = pid(&succeeded(&redis, &group, "echo", &[]).await) as i32;
    let _cleanup = KillOnFailure(child);
    assert!(runs_in(child, child), "the child leads its own group");

    worker.kill();
    wait_until(WAIT, "no process of the idle child's group", || {
        let gone = members(child).is_empty();
        async move { gone }
    })
    .await;
}

/// A command that dies at every start is not restarted in a loop: a child starts only for a
/// job, the delay before each start grows, and the log says so; the job's error says how the
/// child ended and what it wrote.
#[tokio::test]
async fn a_child_that_crashes_at_every_start_backs_off() {
    let redis = RedisServer::start();
    let group = unique_group("persist-crashloop");
    let out = tempfile::tempdir().unwrap();
    let exec = r#"sh -c 'echo "child starting" >&2; exit 1'"#;
    let worker = worker(&redis, out.path(), &group, exec, &["--max-retries", "3"]);

    let error = dead(&redis, &group, "echo", &[]).await;
    assert!(
        error.contains("exited (exit status 1) before answering; its last stderr: child starting"),
        "{error}"
    );
    let log = worker.log();
    assert_eq!(
        log.matches("(slot 0) stderr: child starting").count(),
        4,
        "one start per attempt: {log}"
    );
    assert!(
        log.contains("2 failures in a row without an answer: the next child starts in 100ms"),
        "{log}"
    );
    assert!(
        log.contains("3 failures in a row without an answer: the next child starts in 200ms"),
        "{log}"
    );
}

/// The example handler of the README, `examples/exec_persistent.py`, runs jobs end to end.
#[tokio::test]
async fn the_python_example_handler_runs_jobs() {
    let redis = RedisServer::start();
    let group = unique_group("persist-example");
    let out = tempfile::tempdir().unwrap();
    let example = project_file("examples/exec_persistent.py");
    let exec = format!("python3 {}", example.display());
    let worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &[
            "--group",
            &group,
            "--exec-mode",
            "persistent",
            "--exec",
            &exec,
        ],
    );

    let sum = succeeded(&redis, &group, "add", &["--args", r#"{"a":2,"b":3}"#]).await;
    assert_eq!(sum, 5);
    let hello = succeeded(&redis, &group, "greet", &["--args", r#"{"name":"Ada"}"#]).await;
    assert_eq!(hello, "hello Ada");
    let error = dead(&redis, &group, "add", &["--args", r#"{"a":2}"#]).await;
    assert_eq!(error, "failed without retry: KeyError('b')");
    let error = dead(&redis, &group, "resize", &[]).await;
    assert_eq!(error, "failed without retry: unknown task resize");
    assert!(worker.log().contains("stderr: exec_persistent.py ready"));
}

/// `--exec-mode` without `--exec` is refused.
#[tokio::test]
async fn exec_mode_needs_exec() {
    let out = run(&[
        "--redis",
        "redis://127.0.0.1:1",
        "--group",
        "g",
        "--exec-mode",
        "persistent",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--exec <CMD>"), "{err}");
}
