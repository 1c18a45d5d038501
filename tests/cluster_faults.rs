//! Fail-overs, a hung master and resharding of a real Redis Cluster, and a Sentinel fail-over,
//! while worker processes of the project's own binary drain a busy group:
//!
//! 1. `CLUSTER FAILOVER` of the group's master;
//! 2. the group's master SIGKILLed (its replica promoted after the node timeout);
//! 3. the group's master SIGSTOPped until its replica took over and jobs finished there, then
//!    continued (it rejoins as a replica);
//! 4. the group's slot moved to another master one key at a time;
//! 5. `SENTINEL FAILOVER` while a producer keeps enqueueing (and, ignored by default, the same
//!    without `min-replicas-to-write`, to measure what Sentinel's split brain loses);
//! 6. the node a worker's pub/sub listener is subscribed on SIGSTOPped.
//!
//! Every drain counts what it saw (jobs, lost, duplicate runs, runs in flight at the fault,
//! time until jobs finish again) and prints it on stderr (`cargo test --test cluster_faults --
//! --nocapture`), then asserts the guarantees: every job accepted runs to its end, the group is
//! left with nothing waiting, pending, delayed or dead, and there are no more duplicate runs
//! than jobs can be running at once (two workers of eight slots): only jobs in flight when the
//! fault struck run twice.
//!
//! Every job runs `job.sh`, which appends `JOB_ID WORKER_PID start|end` to a file on disk: the
//! record survives whatever happens to Redis. `CLUSTER_FAULTS_LOG=debug` (a `RUST_LOG` filter)
//! makes the workers log more; `CLUSTER_FAULTS_KEEP=DIR` keeps each drain's record and worker
//! logs in `DIR/GROUP/`.
//!
//! The scenarios run one at a time (each holds [`SERIAL`]): each starts five or six
//! `redis-server`s and two workers on a machine of two cores, and a fail-over's timing must
//! not depend on what another scenario loads the machine with. Every wait is for a condition;
//! the only fixed pauses are the producer's rate.

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamworker::{Client, Job, JobId};
use support::cluster::{NODE_TIMEOUT_MS, RedisCluster, poll};
use support::process::WorkerProcess;
use support::sentinel::RedisSentinel;
use support::wait::WAIT;
use tokio_util::sync::CancellationToken;

/// One scenario at a time; see the module doc. (A tokio mutex: the guard is held across the
/// scenario's awaits, and a scenario that fails releases it without poisoning it.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Jobs each cluster scenario enqueues before its workers start.
const JOBS: usize = 2_000;
/// Workers per scenario.
const WORKERS: usize = 2;
/// Each worker's `--concurrency`.
const CONCURRENCY: usize = 8;
/// Jobs that can be running at once: the most a fault can catch in flight.
const IN_FLIGHT_BOUND: usize = WORKERS * CONCURRENCY;
/// The workers' visibility timeout: long enough that a fail-over of a few seconds does not
/// hand running jobs to the other worker on a loaded machine, short enough that an entry
/// whose delivery reply was lost is taken over quickly.
const VISIBILITY: &str = "3s";
/// How long a drain may take, fault included, before the test gives up and reports.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// What each job runs: the task `sleep-S` sleeps S seconds between its two records.
const JOB_SH: &str = r#"echo "$STREAMWORKER_JOB_ID $PPID start" >> "$OUT/runs"
case "$STREAMWORKER_TASK" in
  sleep-*) sleep "${STREAMWORKER_TASK#sleep-}" ;;
esac
echo "$STREAMWORKER_JOB_ID $PPID end" >> "$OUT/runs"
"#;

/// The task of every job: short, so a drain of 2,000 jobs takes a few seconds, and long enough
/// that a fault always finds jobs running.
const TASK: &str = "sleep-0.01";

/// A busy group drained by worker processes, and the runs they recorded.
struct Drain {
    url: String,
    group: String,
    /// Dropped before `out`, which holds their logs.
    workers: Vec<WorkerProcess>,
    out: tempfile::TempDir,
}

impl Drain {
    fn new(url: &str, group: &str) -> Drain {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("job.sh"), JOB_SH).unwrap();
        Drain {
            url: url.to_string(),
            group: group.to_string(),
            out,
            workers: Vec::new(),
        }
    }

    fn out(&self) -> &Path {
        self.out.path()
    }

    /// Starts the [`WORKERS`] worker processes.
    fn start_workers(&mut self) {
        let exec = format!("sh {}", self.out().join("job.sh").display());
        let concurrency = CONCURRENCY.to_string();
        for _ in 0..WORKERS {
            let args = [
                "--group",
                &self.group,
                "--exec",
                &exec,
                "--concurrency",
                &concurrency,
                "--visibility-timeout",
                VISIBILITY,
                "--retry-backoff",
                "50ms",
                // A fault may make the reaper take an entry over more than the default 5 times;
                // such an entry must run, not go dead.
                "--max-deliveries",
                "50",
            ];
            // `CLUSTER_FAULTS_LOG=debug` (a `RUST_LOG` filter) makes the workers say more.
            let log = std::env::var("CLUSTER_FAULTS_LOG").unwrap_or_else(|_| "info".into());
            let worker =
                WorkerProcess::start_env(&self.url, self.out(), &args, &[("RUST_LOG", &log)]);
            self.workers.push(worker);
        }
    }

    /// Enqueues `n` jobs of [`TASK`] in one batch; returns their ids.
    async fn enqueue(&self, n: usize) -> Vec<JobId> {
        let client = Client::connect(&self.url).await.unwrap();
        client.enqueue_many(jobs(&self.group, n)).await.unwrap()
    }

    /// Everything recorded so far.
    fn tally(&self) -> Tally {
        Tally::read(&self.out().join("runs"))
    }

    /// Waits until at least `n` runs have ended; returns the tally then.
    async fn until_ended(&self, n: usize, timeout: Duration) -> Tally {
        let deadline = Instant::now() + timeout;
        loop {
            let tally = self.tally();
            if tally.ended_runs >= n {
                return tally;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {n} runs to end; {} ended; worker logs:\n{}",
                tally.ended_runs,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to [`DRAIN_LIMIT`]) until every one of `ids` has run to its end, and returns
    /// the tally; the jobs still missing then are counted as lost by [`Tally::lost`].
    async fn until_all_ended(&self, ids: &[JobId]) -> Tally {
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            let tally = self.tally();
            if tally.lost(ids).is_empty() || Instant::now() > deadline {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every worker's log, for failure messages.
    fn logs(&self) -> String {
        self.workers
            .iter()
            .map(|w| format!("--- worker {} ---\n{}", w.pid(), tail(&w.log(), 60)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every worker is still running.
    fn assert_workers_alive(&mut self) {
        for w in &mut self.workers {
            assert!(w.is_running(), "a worker died:\n{}", w.log());
        }
    }

    /// Lines of every worker's log that contain `needle`.
    fn count_in_logs(&self, needle: &str) -> usize {
        self.workers
            .iter()
            .map(|w| w.log().matches(needle).count())
            .sum()
    }
}

impl Drop for Drain {
    /// With `CLUSTER_FAULTS_KEEP=DIR`, keeps the runs and the worker logs in `DIR/GROUP/`.
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.kill();
        }
        let Some(dir) = std::env::var_os("CLUSTER_FAULTS_KEEP") else {
            return;
        };
        let keep = Path::new(&dir).join(&self.group);
        let _ = fs::create_dir_all(&keep);
        if let Ok(files) = fs::read_dir(self.out()) {
            for file in files.flatten() {
                let _ = fs::copy(file.path(), keep.join(file.file_name()));
            }
        }
        eprintln!("kept the runs and worker logs in {}", keep.display());
    }
}

/// `n` untracked jobs of [`TASK`] for `group`.
fn jobs(group: &str, n: usize) -> Vec<Job> {
    (0..n)
        .map(|_| Job::new(group, TASK, &serde_json::json!({})).unwrap())
        .collect()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The runs recorded in `$OUT/runs`.
#[derive(Debug, Default)]
struct Tally {
    /// Per job id: runs started and runs ended.
    per_job: HashMap<String, (usize, usize)>,
    started_runs: usize,
    ended_runs: usize,
}

impl Tally {
    fn read(path: &Path) -> Tally {
        let text = fs::read_to_string(path).unwrap_or_default();
        let mut tally = Tally::default();
        for line in text.lines() {
            let mut words = line.split(' ');
            let (Some(id), Some(_pid), Some(what)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let entry = tally.per_job.entry(id.to_string()).or_default();
            match what {
                "start" => {
                    entry.0 += 1;
                    tally.started_runs += 1;
                }
                "end" => {
                    entry.1 += 1;
                    tally.ended_runs += 1;
                }
                _ => {}
            }
        }
        tally
    }

    /// Runs started and not ended: jobs in flight, as far as the record shows.
    fn running(&self) -> usize {
        self.started_runs - self.ended_runs
    }

    /// Jobs of `ids` that never ran to their end.
    fn lost(&self, ids: &[JobId]) -> Vec<String> {
        ids.iter()
            .filter(|id| self.per_job.get(id.as_str()).is_none_or(|&(_, e)| e == 0))
            .map(|id| id.to_string())
            .collect()
    }

    /// Runs beyond the first, over every job.
    fn duplicates(&self) -> usize {
        self.per_job
            .values()
            .map(|&(started, _)| started.saturating_sub(1))
            .sum()
    }
}

/// What a scenario saw, printed and asserted the same way by each.
struct Report {
    scenario: &'static str,
    jobs: usize,
    lost: Vec<String>,
    duplicates: usize,
    in_flight_at_fault: usize,
    recovered_after: Duration,
    wall: Duration,
    extra: String,
}

impl Report {
    fn print(&self) {
        eprintln!(
            "[{}] jobs {}, lost {}, duplicate runs {}, in flight at the fault {} (bound {}), jobs finishing again {:?} after the fault, {:?} in all{}",
            self.scenario,
            self.jobs,
            self.lost.len(),
            self.duplicates,
            self.in_flight_at_fault,
            IN_FLIGHT_BOUND,
            self.recovered_after,
            self.wall,
            self.extra
        );
    }

    /// Nothing lost; duplicates no more than the jobs that could be running at the fault.
    fn assert_guarantees(&self) {
        assert!(
            self.lost.is_empty(),
            "[{}] {} jobs lost, e.g. {:?}",
            self.scenario,
            self.lost.len(),
            &self.lost[..self.lost.len().min(5)]
        );
        assert!(
            self.duplicates <= IN_FLIGHT_BOUND,
            "[{}] {} duplicate runs, more than the {IN_FLIGHT_BOUND} jobs that can be running at once",
            self.scenario,
            self.duplicates
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Redis Cluster

/// A cluster of three masters with one replica each, and a busy group on one of the masters.
struct ClusterScene {
    cluster: RedisCluster,
    drain: Drain,
    slot: u16,
}

impl ClusterScene {
    fn start() -> ClusterScene {
        let cluster = RedisCluster::start(3, 1);
        let group = cluster.groups_on_each_master("busy-").remove(1);
        let slot = RedisCluster::slot_of(&group);
        let drain = Drain::new(&cluster.seeds(), &group);
        ClusterScene {
            cluster,
            drain,
            slot,
        }
    }

    /// The master serving the group's slot now.
    fn owner(&self) -> u16 {
        self.cluster.master_of_slot(self.slot)
    }

    /// Enqueues [`JOBS`] jobs and waits until the owner's replica has them all (`WAIT`), so
    /// that a fault during the drain cannot lose an enqueue.
    async fn enqueue(&self) -> Vec<JobId> {
        let ids = self.drain.enqueue(JOBS).await;
        let owner = self.owner();
        assert_eq!(self.cluster.cli(owner, &["WAIT", "1", "5000"]), "1");
        ids
    }

    /// What the group holds now on the master serving it: entries waiting or pending, delayed
    /// and dead jobs; `None` when it holds nothing.
    fn leftovers(&self) -> Result<Option<String>, String> {
        leftovers(self.owner(), &self.drain.group)
    }

    /// Waits until the group holds nothing.
    fn until_drained(&self) {
        poll(WAIT, "the busy group to hold nothing", || {
            match self.leftovers()? {
                None => Ok(()),
                Some(left) => Err(left),
            }
        });
    }
}

/// What the group `group` holds on the node at `port` (see [`ClusterScene::leftovers`]).
fn leftovers(port: u16, group: &str) -> Result<Option<String>, String> {
    let err = |e: redis::RedisError| format!("{port}: {e}");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(err)?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(err)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(err)?;
    let key = |suffix: &str| format!("streamworker:{{{group}}}:{suffix}");
    let mut left = Vec::new();
    for p in ["high", "default", "low"] {
        let len: usize = redis::cmd("XLEN")
            .arg(key(p))
            .query(&mut conn)
            .map_err(err)?;
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(key(p))
            .arg(group)
            .query(&mut conn)
            .or_else(|e| {
                if e.code() == Some("NOGROUP") {
                    Ok(redis::Value::Nil)
                } else {
                    Err(e)
                }
            })
            .map_err(err)?;
        let pending = match pending {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => 0,
            },
            _ => 0,
        };
        if len > 0 || pending > 0 {
            left.push(format!("{p}: {len} entries, {pending} pending"));
        }
    }
    let delayed: usize = redis::cmd("ZCARD")
        .arg(key("delayed"))
        .query(&mut conn)
        .map_err(err)?;
    let dead: usize = redis::cmd("XLEN")
        .arg(key("dead"))
        .query(&mut conn)
        .map_err(err)?;
    if delayed > 0 {
        left.push(format!("{delayed} delayed"));
    }
    if dead > 0 {
        left.push(format!("{dead} dead"));
    }
    Ok((!left.is_empty()).then(|| left.join(", ")))
}

/// Runs a drain of [`JOBS`] jobs through `fault`, which strikes once a quarter of them ran and
/// returns (after its own waits) when the cluster serves the group again; then waits for every
/// job, and reports.
async fn cluster_drain_through(
    scenario: &'static str,
    fault: impl FnOnce(&mut ClusterScene) -> String,
) -> (ClusterScene, Report) {
    let started = Instant::now();
    let mut scene = ClusterScene::start();
    let ids = scene.enqueue().await;
    scene.drain.start_workers();
    let before = scene.drain.until_ended(JOBS / 4, WAIT).await;
    let in_flight_at_fault = before.running();
    let struck = Instant::now();
    let extra = fault(&mut scene);
    // Jobs finish again: more runs end than could have been running when the fault struck,
    // so some of them were fetched after it.
    let after_fault = scene.drain.tally().ended_runs;
    scene
        .drain
        .until_ended(after_fault + IN_FLIGHT_BOUND + 1, DRAIN_LIMIT)
        .await;
    let recovered_after = struck.elapsed();
    let tally = scene.drain.until_all_ended(&ids).await;
    let lost = tally.lost(&ids);
    if lost.is_empty() {
        scene.until_drained();
    }
    scene.drain.assert_workers_alive();
    let report = Report {
        scenario,
        jobs: ids.len(),
        lost,
        duplicates: tally.duplicates(),
        in_flight_at_fault,
        recovered_after,
        wall: started.elapsed(),
        extra,
    };
    report.print();
    (scene, report)
}

/// 1. `CLUSTER FAILOVER` on the replica of the busy group's master, mid-drain: the replica
///    catches up before it takes over, so nothing is lost and no job runs twice beyond those
///    in flight.
#[tokio::test]
async fn a_graceful_failover_mid_drain_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (_scene, report) = cluster_drain_through("cluster: CLUSTER FAILOVER", |scene| {
        let old = scene.owner();
        let replica = scene.cluster.replica_of(old);
        let t = Instant::now();
        scene.cluster.failover(replica);
        assert_eq!(scene.owner(), replica);
        format!(", fail-over took {:?}", t.elapsed())
    })
    .await;
    report.assert_guarantees();
}

/// 2. The busy group's master SIGKILLed mid-drain; its replica is promoted after the node
///    timeout. Replication is asynchronous, so what the killed master acknowledged last may
///    not have reached the replica; the jobs were all replicated before the drain began
///    (`WAIT`), so only finishes and deliveries can be lost that way: they run again.
#[tokio::test]
async fn a_killed_master_mid_drain_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (_scene, report) = cluster_drain_through("cluster: master SIGKILLed", |scene| {
        let old = scene.owner();
        let replica = scene.cluster.replica_of(old);
        let t = Instant::now();
        scene.cluster.kill(old);
        scene
            .cluster
            .wait_until_master(replica, WAIT + Duration::from_millis(NODE_TIMEOUT_MS));
        assert_eq!(scene.owner(), replica);
        format!(", replica promoted {:?} after the kill", t.elapsed())
    })
    .await;
    report.assert_guarantees();
}

/// 3. The busy group's master SIGSTOPped past the node timeout: its replica is promoted while
///    the old master holds its port and connections but answers nothing. Workers must leave it
///    and finish jobs on the new master while it is still stopped; continued, it rejoins as a
///    replica.
#[tokio::test]
async fn a_hung_master_is_left_behind() {
    let _serial = SERIAL.lock().await;
    let (scene, report) = cluster_drain_through("cluster: master SIGSTOPped", |scene| {
        let old = scene.owner();
        let replica = scene.cluster.replica_of(old);
        let t = Instant::now();
        scene.cluster.pause(old);
        scene
            .cluster
            .wait_until_master(replica, WAIT + Duration::from_millis(NODE_TIMEOUT_MS));
        let promoted = t.elapsed();
        // Jobs finish on the new master while the old one is still stopped.
        let ended = scene.drain.tally().ended_runs;
        let deadline = Instant::now() + DRAIN_LIMIT;
        while scene.drain.tally().ended_runs <= ended + IN_FLIGHT_BOUND {
            assert!(
                Instant::now() < deadline,
                "no job finished on the new master while the old one was stopped; logs:\n{}",
                scene.drain.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let finishing = t.elapsed();
        scene.cluster.resume(old);
        poll(WAIT, &format!("{old} to rejoin as a replica"), || {
            let topology = scene.cluster.topology();
            match topology.master_of(old) {
                Some(master) if master == replica => Ok(()),
                other => Err(format!("{old} replicates from {other:?}")),
            }
        });
        scene.cluster.wait_ok(WAIT);
        format!(
            ", replica promoted {promoted:?} after the stop, jobs finishing on it {finishing:?} after the stop (old master still stopped), continued after {:?}",
            t.elapsed()
        )
    })
    .await;
    report.assert_guarantees();
    assert!(
        report.recovered_after < Duration::from_secs(45),
        "workers took {:?} to finish jobs again",
        report.recovered_after
    );
    drop(scene);
}

/// 4. The busy group's slot moved to another master while workers drain it, step by step
///    (`CLUSTER SETSLOT ... MIGRATING/IMPORTING`, `MIGRATE` of one key at a time, then
///    `SETSLOT ... NODE`), each step taken once the drain went on after the previous one:
///    workers keep fetching and running jobs while the slot is migrating, whichever keys have
///    moved. (A script whose keys are split between the two masters, or that names a key
///    neither holds, meets TRYAGAIN, which the client library retries after a pause: outcomes
///    may wait for the next step, and nothing is lost.)
#[tokio::test]
async fn a_slot_moved_mid_drain_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (_scene, report) = cluster_drain_through("cluster: slot moved", |scene| {
        let from = scene.owner();
        let to = scene
            .cluster
            .masters()
            .into_iter()
            .find(|&m| m != from)
            .expect("another master");
        let moving = scene.cluster.begin_move(scene.slot, to);
        // Waits until more runs ended than could have been running when the step was taken;
        // returns how long that took.
        let progress = |scene: &ClusterScene, what: &str| {
            let t = Instant::now();
            let ended = scene.drain.tally().ended_runs;
            let deadline = t + DRAIN_LIMIT;
            while scene.drain.tally().ended_runs <= ended + IN_FLIGHT_BOUND {
                assert!(
                    Instant::now() < deadline,
                    "the drain stopped {what}; logs:\n{}",
                    scene.drain.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            t.elapsed()
        };
        let slot = scene.slot.to_string();
        let mut steps = vec![format!(
            "migrating {:?}",
            progress(
                scene,
                "while the slot was migrating, every key on the source"
            )
        )];
        loop {
            // The key the next step moves: MIGRATE takes GETKEYSINSLOT's first.
            let next = scene
                .cluster
                .cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1"]);
            if moving.step(&scene.cluster, 1) == 0 {
                break;
            }
            let what = format!("after {next} moved");
            let took = progress(scene, &what);
            let name = next.rsplit(':').next().unwrap_or(&next).to_string();
            steps.push(format!("{name} moved {took:?}"));
        }
        moving.finish(&scene.cluster);
        assert_eq!(scene.owner(), to);
        let took = progress(scene, "after the slot moved");
        steps.push(format!("slot moved {took:?}"));
        format!(
            ", moved from {from} to {to} one key at a time; jobs ran on within: {}",
            steps.join(", ")
        )
    })
    .await;
    report.assert_guarantees();
}

/// 6. The node a worker's pub/sub listener (wake-ups, cancel requests) is subscribed on hangs
///    (SIGSTOP): a subscription hears nothing when nothing is published, so the listener checks
///    a quiet one with a PING and, unanswered, subscribes again on a node that answers, within
///    the quiet spell (5 s) plus the response timeout (10 s) plus its reconnect pause (≤ 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_on_a_hung_node_moves_to_one_that_answers() {
    let _serial = SERIAL.lock().await;
    let cluster = RedisCluster::start(3, 1);
    let group = "listener";
    let channel = format!("streamworker:{{{group}}}:cancel");
    let worker = support::workers::noop_worker(&cluster.seeds(), group, "noop");
    // The node the worker's listener subscribed on, other than `not`.
    let subscribed_on = |not: u16| {
        cluster
            .ports()
            .into_iter()
            .filter(|&p| p != not)
            .find(|&p| {
                let n = cluster.cli(p, &["PUBSUB", "NUMSUB", &channel]);
                n.lines().nth(1) == Some("1")
            })
    };
    let hung = tokio::task::block_in_place(|| {
        poll(WAIT, "the worker to subscribe", || {
            subscribed_on(0).ok_or_else(|| "on no node".to_string())
        })
    });
    cluster.pause(hung);
    let t = Instant::now();
    let moved_to = tokio::task::block_in_place(|| {
        poll(
            Duration::from_secs(30),
            "the listener to subscribe elsewhere",
            || subscribed_on(hung).ok_or_else(|| format!("still only on {hung}")),
        )
    });
    let moved_after = t.elapsed();
    // A message published now reaches it.
    let receivers = cluster.cli(moved_to, &["PUBLISH", &channel, "no-such-job"]);
    cluster.resume(hung);
    eprintln!(
        "[cluster: subscribed node SIGSTOPped] the listener left {hung} for {moved_to} {moved_after:?} after the stop; a message published there reached {receivers}"
    );
    assert_eq!(receivers, "1");
    assert!(
        moved_after < Duration::from_secs(25),
        "the listener took {moved_after:?} to leave a hung node"
    );
    worker.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Redis Sentinel

/// 5. One master, one replica and three sentinels; workers and a producer reach the master
///    through a `redis+sentinel://` URL. `SENTINEL FAILOVER` mid-drain while the producer
///    keeps enqueueing: every job the producer was told is enqueued runs to its end.
///
/// Sentinel promotes the replica (`REPLICAOF NO ONE`) while the old master is still up and
/// still takes writes from the clients connected to it, until it is made a replica of the new
/// one; it then drops what it took meanwhile. So the master runs with `min-replicas-to-write
/// 1`, as README's Sentinel section asks: once its replica has left it, it refuses writes
/// (`NOREPLICAS`), and a producer is told its enqueue failed rather than that it succeeded.
/// [`sentinel_split_brain_without_min_replicas`] measures what is lost without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_drain_with_producers_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (report, _) = sentinel_drain_through_failover(true).await;
    report.assert_guarantees();
}

/// The same fail-over as [`a_sentinel_failover_mid_drain_with_producers_loses_nothing`] with
/// the master at its default `min-replicas-to-write 0`: the old master accepts enqueues after
/// its replica was promoted, and they are lost when it becomes a replica. Asserts only that
/// every job lost was accepted after the fail-over began and before the old master was made a
/// replica (the first enqueue it refused with `READONLY`); run it to see the numbers:
/// `cargo test --test cluster_faults -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of Redis Sentinel's split-brain window, not a guarantee"]
async fn sentinel_split_brain_without_min_replicas() {
    let _serial = SERIAL.lock().await;
    let (report, window) = sentinel_drain_through_failover(false).await;
    let (after, before) = window;
    eprintln!(
        "[sentinel, min-replicas-to-write 0] {} jobs lost, all accepted between {after:?} and {before:?} after the fail-over began",
        report.lost.len()
    );
}

/// Runs scenario 5, with `min-replicas-to-write 1` on the data nodes when `min_replicas`;
/// returns the report, and the window of acceptance times (from the fault) of the jobs lost.
async fn sentinel_drain_through_failover(min_replicas: bool) -> (Report, (Duration, Duration)) {
    let started = Instant::now();
    let set = RedisSentinel::start();
    if min_replicas {
        for port in set.data_ports() {
            set.cli(port, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
        }
    }
    let group = support::keys::unique_group("sentinel");
    let mut drain = Drain::new(&set.url(), &group);
    let mut ids = drain.enqueue(JOBS / 2).await;
    drain.start_workers();
    drain.until_ended(JOBS / 8, WAIT).await;

    // A producer enqueueing one job at a time, about 150 a second, until stopped; it notes
    // when each job was accepted or refused.
    let accepted: Arc<Mutex<Vec<(JobId, Instant)>>> = Arc::default();
    let refused = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let stop = CancellationToken::new();
    let producer = {
        let (accepted, refused, stop) = (accepted.clone(), refused.clone(), stop.clone());
        let client = Client::connect(&set.url()).await.unwrap();
        let group = group.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let job = jobs(&group, 1).remove(0);
                match client.enqueue(job).await {
                    Ok(id) => accepted.lock().unwrap().push((id, Instant::now())),
                    Err(e) => refused
                        .lock()
                        .unwrap()
                        .push((e.to_string(), Instant::now())),
                }
                // The producer's rate, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let produced = |n: usize| {
        let accepted = accepted.clone();
        async move {
            support::wait::wait_until(WAIT, &format!("{n} jobs produced"), || {
                let len = accepted.lock().unwrap().len();
                async move { len >= n }
            })
            .await
        }
    };
    produced(100).await;
    let in_flight_at_fault = drain.tally().running();
    let struck = Instant::now();
    let old = set.master_port();
    tokio::task::block_in_place(|| set.failover());
    let switched = struck.elapsed();
    assert_ne!(set.master_port(), old);
    let produced_before_switch = accepted.lock().unwrap().len();
    produced(produced_before_switch + 200).await;
    stop.cancel();
    producer.await.unwrap();
    let accepted = accepted.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();

    // Recovered: a job enqueued after the sentinels switched has run.
    let after_switch: Vec<JobId> = accepted[produced_before_switch..]
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let deadline = Instant::now() + DRAIN_LIMIT;
    while drain.tally().lost(&after_switch).len() == after_switch.len() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered_after = struck.elapsed();

    ids.extend(accepted.iter().map(|(id, _)| id.clone()));
    let tally = drain.until_all_ended(&ids).await;
    let lost = tally.lost(&ids);
    let since_fault = |at: Instant| at.saturating_duration_since(struck);
    // When each lost job was accepted: before the fault (or before the drain) counts as 0.
    let lost_at: Vec<Duration> = lost
        .iter()
        .map(|id| {
            accepted
                .iter()
                .find(|(a, _)| a.as_str() == id)
                .map_or(Duration::ZERO, |(_, at)| since_fault(*at))
        })
        .collect();
    let window = (
        lost_at.iter().min().copied().unwrap_or_default(),
        lost_at.iter().max().copied().unwrap_or_default(),
    );
    if lost.is_empty() {
        let master = set.master_port();
        poll(WAIT, "the group to hold nothing", || {
            match leftovers(master, &group)? {
                None => Ok(()),
                Some(left) => Err(left),
            }
        });
    } else {
        // Every job lost was accepted by the old master after the fail-over began, before it
        // became a replica and refused its first enqueue.
        let demoted = refused
            .iter()
            .find(|(e, _)| e.contains("ReadOnly") || e.contains("READONLY"))
            .map_or(switched, |(_, at)| since_fault(*at));
        assert!(
            window.0 > Duration::ZERO && window.1 <= demoted,
            "jobs lost outside the split-brain window (0, {demoted:?}]: accepted {window:?} after the fault"
        );
    }
    drain.assert_workers_alive();
    let report = Report {
        scenario: if min_replicas {
            "sentinel: SENTINEL FAILOVER, min-replicas-to-write 1"
        } else {
            "sentinel: SENTINEL FAILOVER, min-replicas-to-write 0"
        },
        jobs: ids.len(),
        lost,
        duplicates: tally.duplicates(),
        in_flight_at_fault,
        recovered_after,
        wall: started.elapsed(),
        extra: format!(
            ", sentinels switched {switched:?} after the fault; producer: {} accepted, {} refused{}; {} outcomes refused as stale",
            accepted.len(),
            refused.len(),
            refused
                .first()
                .map(|(e, at)| format!(" (first {:?} after the fault: {e})", since_fault(*at)))
                .unwrap_or_default(),
            drain.count_in_logs("lost the lease")
        ),
    };
    report.print();
    (report, window)
}
