//! `--exec` commands die with their job and with their worker, and a program that cannot run is
//! refused at start. Real worker processes of the project's own binary run a shell command that
//! leaves a grandchild (`sleep 1000 &`) and records `LEADER GRANDCHILD` pids in `$OUT/pids`;
//! each test then ends the job one way and awaits that no process of the job's group remains.
//! Linux only: processes are looked at in `/proc`.
#![cfg(target_os = "linux")]

#[path = "../support/mod.rs"]
mod support;

mod procs;

use procs::{KillOnFailure, children, cmdline, fd_target, group_of, members, runs_in};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use support::cli::{ok, run, text};
use support::keys::unique_group;
use support::process::WorkerProcess;
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};

/// How long the processes of an ended job may take to be gone.
const GONE: Duration = Duration::from_secs(10);

/// Leaves a grandchild, records the pids, then waits for it (so the command runs until killed).
const LEAVE_AND_WAIT: &str =
    r#"sh -c 'sleep 1000 & echo "$$ $!" > "$OUT/pids.tmp"; mv "$OUT/pids.tmp" "$OUT/pids"; wait'"#;
/// Leaves a grandchild that holds stdout, records the pids, then exits 0 at once.
const LEAVE_AND_EXIT: &str = r#"sh -c 'sleep 1000 & echo "$$ $!" > "$OUT/pids.tmp"; mv "$OUT/pids.tmp" "$OUT/pids"; echo done'"#;

/// The processes of one job's command.
#[derive(Debug, Clone, Copy)]
struct JobPids {
    /// The command the worker started: the leader of the job's process group.
    leader: i32,
    /// The `sleep 1000` it left running.
    grandchild: i32,
}

/// Waits for the job's command to record its pids in `out/pids`.
async fn job_pids(out: &Path) -> JobPids {
    let file = out.join("pids");
    until("the job's command to record its pids", || file.exists()).await;
    let line = fs::read_to_string(&file).unwrap();
    let pids: Vec<i32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    JobPids {
        leader: pids[0],
        grandchild: pids[1],
    }
}

/// Asserts the job's command leads a process group of its own, holding its grandchild, apart
/// from the worker's group.
fn assert_own_group(pids: JobPids, worker: &WorkerProcess) {
    assert_eq!(group_of(pids.leader), Some(pids.leader), "{pids:?}");
    assert_eq!(group_of(pids.grandchild), Some(pids.leader), "{pids:?}");
    assert_ne!(group_of(worker.pid() as i32), Some(pids.leader));
}

/// Waits (up to [`GONE`]) until no process of the job's group runs.
async fn assert_gone(pids: JobPids, after: &str) {
    wait_until(GONE, &format!("no process of the job {after}"), || {
        let gone = members(pids.leader).is_empty()
            && !runs_in(pids.leader, pids.leader)
            && !runs_in(pids.grandchild, pids.leader);
        async move { gone }
    })
    .await;
}

/// Enqueues a job of task `t` in `group` with `flags`; returns its id.
async fn enqueue(redis: &RedisServer, group: &str, flags: &[&str]) -> String {
    let mut all = vec!["--task", "t"];
    all.extend_from_slice(flags);
    support::cli::enqueue(redis, group, &all).await
}

/// `streamworker --json job --group GROUP ID`; `None` while the job is between places.
async fn job(redis: &RedisServer, group: &str, id: &str) -> Option<serde_json::Value> {
    let url = redis.url();
    let out = run(&["--redis", &url, "--json", "job", "--group", group, id]).await;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Waits (up to [`WAIT`]) until the job's state is `state`; returns the job.
async fn job_in_state(
    redis: &RedisServer,
    group: &str,
    id: &str,
    state: &str,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let job = job(redis, group, id).await;
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

/// A worker SIGKILLed while its job runs leaves no process of that job: its watchdog kills the
/// job's process group, grandchild included.
#[tokio::test]
async fn a_sigkilled_worker_leaves_no_process_of_its_job() {
    let redis = RedisServer::start();
    let group = unique_group("exec-kill");
    let out = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", LEAVE_AND_WAIT],
    );
    enqueue(&redis, &group, &[]).await;
    let pids = job_pids(out.path()).await;
    let _cleanup = KillOnFailure(pids.leader);
    assert_own_group(pids, &worker);

    worker.kill();
    assert_gone(pids, "after its worker was SIGKILLed").await;
}

/// A job that times out takes its whole process group with it, not only the command.
#[tokio::test]
async fn a_timed_out_job_leaves_no_process_behind() {
    let redis = RedisServer::start();
    let group = unique_group("exec-timeout");
    let out = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &[
            "--group",
            &group,
            "--timeout",
            "1s",
            "--max-retries",
            "0",
            "--exec",
            LEAVE_AND_WAIT,
        ],
    );
    let id = enqueue(&redis, &group, &[]).await;
    let pids = job_pids(out.path()).await;
    let _cleanup = KillOnFailure(pids.leader);
    assert_own_group(pids, &worker);

    let dead = job_in_state(&redis, &group, &id, "dead").await;
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out after 1s")),
        "{dead}"
    );
    assert_gone(pids, "after it timed out").await;
    assert!(worker.is_running());
}

/// When the command exits, what it left running in its group is killed: the job ends with the
/// command (not when the grandchild holding its stdout ends) and nothing of it runs on.
#[tokio::test]
async fn a_finished_command_takes_its_background_processes_with_it() {
    let redis = RedisServer::start();
    let group = unique_group("exec-exit");
    let out = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", LEAVE_AND_EXIT],
    );
    let id = enqueue(&redis, &group, &["--keep-result", "1h"]).await;
    let done = job_in_state(&redis, &group, &id, "succeeded").await;
    assert_eq!(done["result"], "done\n", "{done}");
    let pids = job_pids(out.path()).await;
    let _cleanup = KillOnFailure(pids.leader);
    assert_gone(pids, "after its command exited").await;
}

/// A job cancelled while it runs leaves no process behind.
#[tokio::test]
async fn a_cancelled_job_leaves_no_process_behind() {
    let redis = RedisServer::start();
    let group = unique_group("exec-cancel");
    let out = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", LEAVE_AND_WAIT],
    );
    let id = enqueue(&redis, &group, &[]).await;
    let pids = job_pids(out.path()).await;
    let _cleanup = KillOnFailure(pids.leader);

    ok(&redis, &["cancel", &id, "--group", &group]).await;
    until("the worker to cancel the job", || {
        worker
            .log()
            .contains("job cancelled on request while running")
    })
    .await;
    assert_gone(pids, "after it was cancelled").await;
    assert!(worker.is_running());
}

/// A worker stopped with SIGTERM hands back a job still running past `--shutdown-grace` and
/// exits 0, leaving no process of that job.
#[tokio::test]
async fn a_worker_stopped_past_its_grace_leaves_no_process_behind() {
    let redis = RedisServer::start();
    let group = unique_group("exec-grace");
    let out = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &[
            "--group",
            &group,
            "--shutdown-grace",
            "100ms",
            "--exec",
            LEAVE_AND_WAIT,
        ],
    );
    enqueue(&redis, &group, &[]).await;
    let pids = job_pids(out.path()).await;
    let _cleanup = KillOnFailure(pids.leader);

    worker.signal("TERM");
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(0), "{status}");
    assert_gone(pids, "after its worker stopped").await;
}

/// The worker's watchdog runs in a process group of its own with null stdout and stderr, and no
/// job's command holds its pipe (a command holding it would keep the watchdog from seeing its
/// worker die).
#[tokio::test]
async fn the_watchdog_runs_apart_and_no_job_holds_its_pipe() {
    let redis = RedisServer::start();
    let group = unique_group("exec-watchdog");
    let out = tempfile::tempdir().unwrap();
    let list_fds = r#"sh -c 'for f in /proc/$$/fd/*; do readlink "$f" || true; done'"#;
    let worker = WorkerProcess::start(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", list_fds],
    );
    let worker_pid = worker.pid() as i32;
    let mut watchdog = None;
    until("the worker's watchdog to start", || {
        watchdog = children(worker_pid)
            .into_iter()
            .find(|&pid| cmdline(pid).contains("streamworker --exec watchdog"));
        watchdog.is_some()
    })
    .await;
    let watchdog = watchdog.unwrap();
    assert_eq!(group_of(watchdog), Some(watchdog), "its own process group");
    assert_eq!(fd_target(watchdog, 1).as_deref(), Some("/dev/null"));
    assert_eq!(fd_target(watchdog, 2).as_deref(), Some("/dev/null"));
    let pipe = fd_target(watchdog, 0).unwrap();
    assert!(pipe.starts_with("pipe:"), "{pipe}");

    let id = enqueue(&redis, &group, &["--keep-result", "1h"]).await;
    let done = job_in_state(&redis, &group, &id, "succeeded").await;
    let held = done["result"].as_str().unwrap();
    assert!(held.contains("pipe:"), "its stdout at least: {held}");
    assert!(!held.lines().any(|l| l == pipe), "holds {pipe}: {held}");
}

/// Without `awk` the worker warns once, saying what is lost, and runs its jobs all the same.
#[tokio::test]
async fn without_awk_the_worker_warns_once_and_runs_jobs() {
    let redis = RedisServer::start();
    let group = unique_group("exec-no-awk");
    let out = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let worker = WorkerProcess::start_env(
        &redis.url(),
        out.path(),
        &["--group", &group, "--exec", "/bin/sh -c 'echo ran'"],
        &[("PATH", empty.path().to_str().unwrap())],
    );
    let first = enqueue(&redis, &group, &["--keep-result", "1h"]).await;
    let second = enqueue(&redis, &group, &["--keep-result", "1h"]).await;
    for id in [first, second] {
        let done = job_in_state(&redis, &group, &id, "succeeded").await;
        assert_eq!(done["result"], "ran\n", "{done}");
    }
    let log = worker.log();
    let warning = "cannot start the --exec watchdog (awk)";
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(log.contains("go on running unseen"), "{log}");
}

/// An `--exec` program that is missing, not executable or a directory is refused before the
/// worker starts (before it connects to Redis), with its path, the reason and what to do.
#[tokio::test]
async fn a_program_that_cannot_run_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.sh");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let script = script.to_str().unwrap();
    let dir_path = dir.path().to_str().unwrap();
    let not_executable = format!("{script} --flag");
    for (exec, wanted) in [
        (
            "/nonexistent/prog",
            &["\"/nonexistent/prog\"", "does not exist"][..],
        ),
        (
            not_executable.as_str(),
            &[script, "is not executable (mode 644)", "chmod +x"][..],
        ),
        (dir_path, &[dir_path, "is a directory"][..]),
        (
            "streamworker-no-such-program",
            &["\"streamworker-no-such-program\"", "is not found on PATH"][..],
        ),
    ] {
        let out = run(&[
            "--redis",
            "redis://127.0.0.1:1",
            "--group",
            "g",
            "--exec",
            exec,
        ])
        .await;
        assert_eq!(out.status.code(), Some(1), "{exec}: {out:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("error: "), "{exec}: {err}");
        for w in wanted {
            assert!(err.contains(w), "{exec}: error does not say {w:?}: {err}");
        }
        assert!(
            !err.contains("cannot connect"),
            "{exec}: checked too late: {err}"
        );
    }
}
