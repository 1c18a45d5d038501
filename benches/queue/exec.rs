//! `--exec` throughput: trivial jobs drained by a `streamworker` worker process (the project's
//! binary) at the default concurrency, in per-job mode (a process per job: `cat`) and in
//! persistent mode (a child per slot: a Python loop, and a `sh` `while read` loop). Each run
//! starts the worker on an empty group, warms it up (every persistent slot has its child),
//! then times the jobs from the first enqueue until the stream is empty (all acknowledged),
//! and checks none failed.

use crate::drain::load;
use crate::report::{Row, Target, median};
use crate::{Ctx, GROUP, floor};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Jobs at once: the worker's default, passed explicitly so the row's name stays true.
const CONCURRENCY: usize = 16;
/// Jobs timed per run in per-job mode (a process each: about a thousand a second).
const PER_JOB: u64 = 5_000;
/// Jobs timed per run in persistent mode.
const PERSISTENT: u64 = 50_000;
/// Jobs run before timing: enough at once to busy every slot.
const WARM_UP: u64 = 500;

/// Persistent handler in Python: answers each job `ok`.
const PYTHON: &str = r#"python3 -c 'import json, sys
for line in sys.stdin.buffer:
    sys.stdout.write(json.dumps({"id": json.loads(line)["id"], "ok": True}) + "\n")
    sys.stdout.flush()'"#;

/// Persistent handler in `sh`: takes the id (the line's first member) with parameter
/// expansion and answers `ok`, with builtins only (`read` reads a byte per system call).
const SH: &str = r#"sh -c 'while IFS= read -r l; do i=${l#*\"id\":\"}; printf "{\"id\":\"%s\",\"ok\":true}\n" "${i%%\"*}"; done'"#;

/// One way of running the jobs.
struct Mode {
    /// The row's name.
    name: &'static str,
    /// `--exec-mode`.
    exec_mode: &'static str,
    /// `--exec`.
    command: &'static str,
    /// Jobs timed per run (quick mode times two fifths of them).
    jobs: u64,
}

pub async fn run(ctx: &Ctx) -> Vec<Row> {
    let modes = [
        Mode {
            name: "per-job (cat)",
            exec_mode: "per-job",
            command: "cat",
            jobs: PER_JOB,
        },
        Mode {
            name: "persistent (python3)",
            exec_mode: "persistent",
            command: PYTHON,
            jobs: PERSISTENT,
        },
        Mode {
            name: "persistent (sh loop)",
            exec_mode: "persistent",
            command: SH,
            jobs: PERSISTENT,
        },
    ];
    println!("  --exec workers at concurrency {CONCURRENCY}; persistent rows against per-job mode");
    let mut rows: Vec<Row> = Vec::new();
    let mut per_job_rate = None;
    for mode in &modes {
        let jobs = if ctx.quick {
            mode.jobs * 2 / 5
        } else {
            mode.jobs
        };
        let mut runs = Vec::new();
        for _ in 0..ctx.runs {
            runs.push(drain(ctx, mode, jobs).await);
        }
        let row = Row::new(
            format!("exec {}, {}k", mode.name, jobs / 1000),
            "jobs/s",
            runs,
        )
        .target(Target::None);
        rows.push(match per_job_rate {
            None => {
                per_job_rate = Some(median(&row.runs));
                row
            }
            Some(rate) => row.reference(rate, "per-job"),
        });
    }
    rows
}

/// One run: starts a worker in `mode`, warms it up, then returns the rate at which it drains
/// `jobs` jobs.
async fn drain(ctx: &Ctx, mode: &Mode, jobs: u64) -> f64 {
    ctx.server.flush().await;
    let mut conn = ctx.server.conn().await;
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamworker"))
        .args(["--redis", &ctx.server.url, "--group", GROUP])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(["--exec-mode", mode.exec_mode, "--exec", mode.command])
        .env("RUST_LOG", "warn,streamworker::worker::preflight=error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the streamworker binary");
    floor::wait_blocked(&mut conn).await;
    load(ctx, WARM_UP).await;
    wait_empty(&mut conn).await;
    let started = Instant::now();
    load(ctx, jobs).await;
    wait_empty(&mut conn).await;
    let took = started.elapsed();
    let dead: u64 = conn
        .xlen(format!("streamworker:{{{GROUP}}}:dead"))
        .await
        .expect("XLEN");
    let delayed: u64 = conn
        .zcard(format!("streamworker:{{{GROUP}}}:delayed"))
        .await
        .expect("ZCARD");
    assert_eq!((dead, delayed), (0, 0), "--exec {}: jobs failed", mode.name);
    // The worker's watchdog kills its children.
    worker.kill().await.expect("stop the worker");
    jobs as f64 / took.as_secs_f64()
}

/// Polls until the group's default stream is empty: every job ran and was acknowledged.
async fn wait_empty(conn: &mut MultiplexedConnection) {
    let stream = format!("streamworker:{{{GROUP}}}:default");
    loop {
        let len: u64 = conn.xlen(&stream).await.expect("XLEN");
        if len == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
