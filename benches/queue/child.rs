//! The worker under test, in a process of its own (the bench binary run again with
//! `--child`), so its peak memory is its own and the measuring side costs it nothing.
//!
//! It runs a streamworker `Worker` with every safety mechanism on (heartbeats, reaper,
//! batched finishing), serving one group or several, and one task, `bench`, whose args carry a
//! stamp `t` in unix ns. Once `expect` jobs have run and their entries are gone from the
//! streams (acknowledged and deleted), it prints one JSON line: [`ChildReport`].

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamworker::{State, TaskError, Worker};
use tokio_util::sync::CancellationToken;

/// The job payload of every bench: a stamp in unix nanoseconds (enqueue time, due time, or a
/// sequence number where time does not matter).
#[derive(Serialize, Deserialize)]
pub struct Stamp {
    pub t: u64,
}

/// What the child asks of its jobs.
#[derive(Clone, Copy, Serialize, Deserialize, PartialEq, Debug)]
pub enum Work {
    /// Return at once.
    Noop,
    /// Return at once and record start minus the stamp.
    Lag,
    /// Sleep this many milliseconds (keeps every slot busy for the memory bench).
    Sleep(u64),
}

#[derive(Serialize, Deserialize)]
pub struct ChildArgs {
    /// One node's URL, or a cluster's seed URLs, comma-separated.
    pub url: String,
    /// Whether `url` names a Redis Cluster (the child's own check of the streams then goes
    /// through a cluster connection).
    pub cluster: bool,
    /// The groups the worker serves.
    pub groups: Vec<String>,
    pub concurrency: usize,
    pub expect: u64,
    pub work: Work,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ChildReport {
    /// When `Worker::run` was called, unix ns.
    pub started_ns: u64,
    /// When the last entry was seen gone from the stream, unix ns.
    pub acked_ns: u64,
    /// Start minus stamp per job, in µs (only for [`Work::Lag`]).
    pub lags_us: Vec<i64>,
    /// Peak resident memory of this process (VmHWM), KiB.
    pub rss_peak_kib: u64,
    /// CPU time this process used, user plus system, in seconds.
    pub cpu_s: f64,
}

#[derive(Clone)]
struct Tally {
    done: Arc<AtomicU64>,
    lags_us: Arc<Mutex<Vec<i64>>>,
    work: Work,
    all_ran: Arc<tokio::sync::Notify>,
    expect: u64,
}

async fn bench_task(args: Stamp, State(tally): State<Tally>) -> Result<(), TaskError> {
    match tally.work {
        Work::Noop => {}
        Work::Lag => {
            let lag = unix_ns() as i64 - args.t as i64;
            tally.lags_us.lock().unwrap().push(lag / 1_000);
        }
        Work::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
    }
    if tally.done.fetch_add(1, Ordering::Relaxed) + 1 == tally.expect {
        tally.all_ran.notify_one();
    }
    Ok(())
}

pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// The child's main: runs the worker and prints its report.
pub fn main(args_json: &str) {
    let args: ChildArgs = serde_json::from_str(args_json).expect("child args");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let report = runtime.block_on(run(args));
    println!("{}", serde_json::to_string(&report).expect("report"));
}

async fn run(args: ChildArgs) -> ChildReport {
    let tally = Tally {
        done: Arc::default(),
        lags_us: Arc::default(),
        work: args.work,
        all_ran: Arc::default(),
        expect: args.expect,
    };
    let mut builder = Worker::builder(args.url.as_str())
        .state(tally.clone())
        .concurrency(args.concurrency)
        .task("bench", bench_task);
    for group in &args.groups {
        builder = builder.group(group.as_str());
    }
    // BENCH_PREFETCH=N sets the read-ahead (to compare depths); the default otherwise.
    if let Ok(n) = std::env::var("BENCH_PREFETCH") {
        builder = builder.prefetch(n.parse().expect("BENCH_PREFETCH is a number"));
    }
    let worker = builder.build().expect("worker");
    let stop = CancellationToken::new();
    let started_ns = unix_ns();
    let running = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    tally.all_ran.notified().await;
    // Every handler has returned; the entries are gone once their finish batches are written.
    let streams: Vec<String> = args
        .groups
        .iter()
        .map(|g| format!("streamworker:{{{g}}}:default"))
        .collect();
    if args.cluster {
        let seeds: Vec<&str> = args.url.split(',').collect();
        let mut conn = redis::cluster::ClusterClient::new(seeds)
            .expect("seed URLs")
            .get_async_connection()
            .await
            .expect("connect to the cluster");
        wait_empty(&mut conn, &streams).await;
    } else {
        let mut conn = redis::Client::open(args.url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        wait_empty(&mut conn, &streams).await;
    }
    let acked_ns = unix_ns();
    stop.cancel();
    running.await.expect("worker task").expect("worker run");
    let lags_us = std::mem::take(&mut *tally.lags_us.lock().unwrap());
    ChildReport {
        started_ns,
        acked_ns,
        lags_us,
        rss_peak_kib: rss_peak_kib(),
        cpu_s: cpu_seconds(),
    }
}

/// Polls until every stream in `streams` is empty.
async fn wait_empty(conn: &mut impl redis::aio::ConnectionLike, streams: &[String]) {
    for stream in streams {
        loop {
            let len: u64 = redis::cmd("XLEN")
                .arg(stream)
                .query_async(conn)
                .await
                .expect("XLEN");
            if len == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// utime + stime of this process from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A worker child started by the bench: wait for its report with [`Child::report`].
pub struct Child {
    process: tokio::process::Child,
}

impl Child {
    pub fn spawn(args: &ChildArgs) -> Child {
        let exe = std::env::current_exe().expect("bench binary path");
        let process = tokio::process::Command::new(exe)
            .arg("--child")
            .arg(serde_json::to_string(args).expect("child args"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the worker child");
        Child { process }
    }

    pub async fn report(self) -> ChildReport {
        let out = self.process.wait_with_output().await.expect("worker child");
        assert!(out.status.success(), "worker child failed: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("child report {text:?}: {e}"))
    }
}
