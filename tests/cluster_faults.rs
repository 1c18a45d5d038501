//! Fail-overs, a hung master and resharding of a real Redis Cluster, and a Sentinel fail-over,
//! while worker processes of the project's own binary drain a busy group and a producer keeps
//! enqueueing into it:
//!
//! 1. `CLUSTER FAILOVER` of the group's master;
//! 2. the group's master SIGKILLed (its replica promoted after the node timeout);
//! 3. the group's master SIGSTOPped until its replica took over and jobs finished there, then
//!    continued (it rejoins as a replica);
//! 4. the group's slot moved to another master one key at a time;
//! 5. `SENTINEL FAILOVER` (and, ignored by default, the same without `min-replicas-to-write`,
//!    to measure what Sentinel's split brain loses);
//! 6. the node a worker's pub/sub listener is subscribed on SIGSTOPped.
//!
//! Every drain counts what it saw (jobs, lost, duplicate runs, jobs in flight at the fault,
//! time until jobs finish again) and prints it on stderr (`cargo test --test cluster_faults --
//! --nocapture`), then asserts the guarantees: every job accepted runs to its end, the group is
//! left with nothing waiting, pending, delayed or dead, and only jobs in flight when the fault
//! struck run twice ([`DUPLICATE_BOUND`]). The one loss tolerated is Redis's own: an enqueue a
//! master acknowledged just before it died, hung or was replaced, which replication had not
//! carried to the replica yet; such a job must have been accepted within that window, and is
//! reported with its time.
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
/// Jobs that can be running at once.
const IN_FLIGHT_BOUND: usize = WORKERS * CONCURRENCY;
/// The most duplicate runs a fault may cause: the jobs in flight when it struck. A worker's
/// jobs in flight are the ones running (up to its concurrency) plus the ones whose handler
/// returned and whose outcome waits for the finisher's next write (a job's slot is free again
/// as soon as its handler returns, so the worker may already run the next job); a fault that
/// keeps outcomes from being written long enough (past the visibility timeout) makes them run
/// again. So: twice the slots.
const DUPLICATE_BOUND: usize = 2 * IN_FLIGHT_BOUND;
/// The workers' visibility timeout: long enough that a fail-over of a few seconds does not
/// hand running jobs to the other worker on a loaded machine, short enough that an entry
/// whose delivery reply was lost is taken over quickly.
const VISIBILITY: &str = "3s";
/// When (ms from the fault) an enqueue may have been acknowledged by a master that then died
/// or hung without its replica having it: replication is asynchronous, and on one machine the
/// replica trails by a few ms. A job accepted then and lost is reported, not failed on.
const REPLICATION_LAG_MS: (i64, i64) = (-250, 0);
/// How long the slot-moving scenario dwells on each key it moves (less when the drain has
/// made progress): a reshard as slow as a loaded `redis-cli --cluster reshard`, and well
/// within the visibility timeout over all the group's keys.
const STEP_DWELL: Duration = Duration::from_millis(200);
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

/// A producer enqueueing one job at a time into a group, about 150 a second, until stopped;
/// it notes when each job was accepted and when an enqueue was refused (with the error).
struct Producer {
    accepted: Arc<Mutex<Vec<(JobId, Instant)>>>,
    refused: Arc<Mutex<Vec<(String, Instant)>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    async fn start(url: &str, group: &str) -> Producer {
        let accepted: Arc<Mutex<Vec<(JobId, Instant)>>> = Arc::default();
        let refused: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let stop = CancellationToken::new();
        let client = Client::connect(url).await.unwrap();
        let task = {
            let (accepted, refused, stop) = (accepted.clone(), refused.clone(), stop.clone());
            let group = group.to_string();
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
        Producer {
            accepted,
            refused,
            stop,
            task,
        }
    }

    /// Jobs accepted so far.
    fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Waits until `n` jobs were accepted in all.
    async fn until_accepted(&self, n: usize) {
        support::wait::wait_until(DRAIN_LIMIT, &format!("{n} jobs enqueued"), || {
            let len = self.accepted();
            async move { len >= n }
        })
        .await
    }

    /// Stops; returns the jobs accepted and the enqueues refused, each with its time.
    async fn stop(self) -> (Vec<(JobId, Instant)>, Vec<(String, Instant)>) {
        self.stop.cancel();
        self.task.await.unwrap();
        let accepted = self.accepted.lock().unwrap().clone();
        let refused = self.refused.lock().unwrap().clone();
        (accepted, refused)
    }
}

/// How a producer fared: accepted and refused enqueues, and the first refusal, with times from
/// `struck`.
fn producer_summary(
    accepted: &[(JobId, Instant)],
    refused: &[(String, Instant)],
    struck: Instant,
) -> String {
    let during = accepted.iter().filter(|(_, at)| *at >= struck).count();
    format!(
        "; producer: {} accepted ({during} after the fault began), {} refused{}",
        accepted.len(),
        refused.len(),
        refused
            .first()
            .map(|(e, at)| format!(
                " (first {:?} after the fault: {e})",
                at.saturating_duration_since(struck)
            ))
            .unwrap_or_default()
    )
}

/// A job accepted and never run, and when it was accepted: ms from the fault (negative
/// before it), or `None` for the jobs enqueued (and replicated) before the drain began.
#[derive(Debug)]
struct Lost {
    id: String,
    accepted_ms: Option<i64>,
}

/// The jobs of `before` (enqueued before the drain) and of `accepted` (by the producer) that
/// never ran to their end.
fn lost_jobs(
    tally: &Tally,
    before: &[JobId],
    accepted: &[(JobId, Instant)],
    struck: Instant,
) -> Vec<Lost> {
    let mut lost: Vec<Lost> = tally
        .lost(before)
        .into_iter()
        .map(|id| Lost {
            id,
            accepted_ms: None,
        })
        .collect();
    let ids: Vec<JobId> = accepted.iter().map(|(id, _)| id.clone()).collect();
    for id in tally.lost(&ids) {
        let at = accepted
            .iter()
            .find(|(a, _)| a.as_str() == id)
            .map(|(_, at)| *at)
            .expect("a job the producer noted");
        let ms = if at >= struck {
            at.duration_since(struck).as_millis() as i64
        } else {
            -(struck.duration_since(at).as_millis() as i64)
        };
        lost.push(Lost {
            id,
            accepted_ms: Some(ms),
        });
    }
    lost
}

/// What a scenario saw, printed and asserted the same way by each.
struct Report {
    scenario: &'static str,
    jobs: usize,
    lost: Vec<Lost>,
    duplicates: usize,
    /// Entries delivered and not acknowledged (XPENDING) just before the fault.
    pending_at_fault: usize,
    /// Runs started and not ended just before the fault.
    running_at_fault: usize,
    recovered_after: Duration,
    wall: Duration,
    extra: String,
}

impl Report {
    fn print(&self) {
        let lost_at: Vec<String> = self
            .lost
            .iter()
            .map(|l| match l.accepted_ms {
                Some(ms) => format!("{} at {ms:+} ms", l.id),
                None => format!("{} before the drain", l.id),
            })
            .collect();
        eprintln!(
            "[{}] jobs {}, lost {}{}, duplicate runs {} (bound {DUPLICATE_BOUND}), in flight at the fault: {} pending, {} running, jobs finishing again {:?} after the fault, {:?} in all{}",
            self.scenario,
            self.jobs,
            self.lost.len(),
            if lost_at.is_empty() {
                String::new()
            } else {
                format!(" (accepted, from the fault: {})", lost_at.join(", "))
            },
            self.duplicates,
            self.pending_at_fault,
            self.running_at_fault,
            self.recovered_after,
            self.wall,
            self.extra
        );
    }

    /// Nothing lost, except jobs accepted within `window` (ms from the fault, both ends
    /// included), where Redis's asynchronous replication may drop an acknowledged write in
    /// this fault; no more duplicate runs than [`DUPLICATE_BOUND`].
    fn assert_guarantees(&self, window: Option<(i64, i64)>) {
        let outside: Vec<&Lost> = self
            .lost
            .iter()
            .filter(|l| match (l.accepted_ms, window) {
                (Some(ms), Some((from, to))) => ms < from || ms > to,
                _ => true,
            })
            .collect();
        assert!(
            outside.is_empty(),
            "[{}] {} jobs lost{}, e.g. {:?}",
            self.scenario,
            outside.len(),
            window
                .map(|w| format!(" outside the replication window {w:?} ms"))
                .unwrap_or_default(),
            &outside[..outside.len().min(5)]
        );
        assert!(
            self.duplicates <= DUPLICATE_BOUND,
            "[{}] {} duplicate runs, more than the {DUPLICATE_BOUND} jobs that can be in flight",
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

/// Per priority stream (high, default, low): entries, and entries pending (delivered, not
/// acknowledged); then delayed and dead jobs.
type GroupCounts = ([(usize, usize); 3], usize, usize);

/// What group `group` holds on the node at `port`.
fn group_counts(port: u16, group: &str) -> Result<GroupCounts, String> {
    let err = |e: redis::RedisError| format!("{port}: {e}");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(err)?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(err)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(err)?;
    let key = |suffix: &str| format!("streamworker:{{{group}}}:{suffix}");
    let mut streams = [(0, 0); 3];
    for (i, p) in ["high", "default", "low"].into_iter().enumerate() {
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
                Some(redis::Value::Int(n)) => *n as usize,
                _ => 0,
            },
            _ => 0,
        };
        streams[i] = (len, pending);
    }
    let delayed: usize = redis::cmd("ZCARD")
        .arg(key("delayed"))
        .query(&mut conn)
        .map_err(err)?;
    let dead: usize = redis::cmd("XLEN")
        .arg(key("dead"))
        .query(&mut conn)
        .map_err(err)?;
    Ok((streams, delayed, dead))
}

/// Entries of group `group` pending on the node at `port` (0 when it does not answer).
fn pending(port: u16, group: &str) -> usize {
    group_counts(port, group)
        .map(|(streams, _, _)| streams.iter().map(|&(_, p)| p).sum())
        .unwrap_or(0)
}

/// What the group `group` holds on the node at `port` (see [`ClusterScene::leftovers`]).
fn leftovers(port: u16, group: &str) -> Result<Option<String>, String> {
    let (streams, delayed, dead) = group_counts(port, group)?;
    let mut left = Vec::new();
    for (p, (len, pending)) in ["high", "default", "low"].into_iter().zip(streams) {
        if len > 0 || pending > 0 {
            left.push(format!("{p}: {len} entries, {pending} pending"));
        }
    }
    if delayed > 0 {
        left.push(format!("{delayed} delayed"));
    }
    if dead > 0 {
        left.push(format!("{dead} dead"));
    }
    Ok((!left.is_empty()).then(|| left.join(", ")))
}

/// Runs a drain of [`JOBS`] jobs through `fault`, which strikes once a quarter of them ran and
/// returns (after its own waits) when the cluster serves the group again, while a
/// [`Producer`] keeps enqueueing (until 200 more jobs were accepted after the fault); then
/// waits for every job accepted, and reports. Call it from a multi-thread runtime: the fault
/// blocks its thread while the producer goes on.
async fn cluster_drain_through(
    scenario: &'static str,
    fault: impl FnOnce(&mut ClusterScene) -> String,
) -> (ClusterScene, Report) {
    let started = Instant::now();
    let mut scene = ClusterScene::start();
    let ids = scene.enqueue().await;
    scene.drain.start_workers();
    let producer = Producer::start(&scene.drain.url, &scene.drain.group).await;
    let before = scene.drain.until_ended(JOBS / 4, WAIT).await;
    let pending_at_fault = pending(scene.owner(), &scene.drain.group);
    let running_at_fault = before.running();
    let struck = Instant::now();
    let mut extra = tokio::task::block_in_place(|| fault(&mut scene));
    // Jobs finish again: more runs end than could have been running when the fault struck,
    // so some of them were fetched after it.
    let after_fault = scene.drain.tally().ended_runs;
    let accepted_after_fault = producer.accepted();
    scene
        .drain
        .until_ended(after_fault + IN_FLIGHT_BOUND + 1, DRAIN_LIMIT)
        .await;
    let recovered_after = struck.elapsed();
    producer.until_accepted(accepted_after_fault + 200).await;
    let (accepted, refused) = producer.stop().await;
    extra.push_str(&producer_summary(&accepted, &refused, struck));
    let jobs = ids.len() + accepted.len();
    let all: Vec<JobId> = ids
        .iter()
        .cloned()
        .chain(accepted.iter().map(|(id, _)| id.clone()))
        .collect();
    let tally = scene.drain.until_all_ended(&all).await;
    let lost = lost_jobs(&tally, &ids, &accepted, struck);
    if lost.is_empty() {
        scene.until_drained();
    }
    scene.drain.assert_workers_alive();
    let report = Report {
        scenario,
        jobs,
        lost,
        duplicates: tally.duplicates(),
        pending_at_fault,
        running_at_fault,
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    report.assert_guarantees(None);
}

/// 2. The busy group's master SIGKILLed mid-drain; its replica is promoted after the node
///    timeout. Replication is asynchronous, so what the killed master acknowledged last may
///    not have reached the replica: a finish or a delivery lost that way makes a job run
///    again; an enqueue lost that way loses the job, so the producer's jobs accepted just
///    before the kill ([`REPLICATION_LAG_MS`]) are reported if lost, not failed on. The jobs
///    enqueued before the drain were replicated (`WAIT`) and may never be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    report.assert_guarantees(Some(REPLICATION_LAG_MS));
}

/// 3. The busy group's master SIGSTOPped past the node timeout: its replica is promoted while
///    the old master holds its port and connections but answers nothing. Workers must leave it
///    and finish jobs on the new master while it is still stopped; continued, it rejoins as a
///    replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    report.assert_guarantees(Some(REPLICATION_LAG_MS));
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
        // Waits until more runs ended than could have been running when the step was taken,
        // or `dwell` passed; returns how long progress took, if it came. While the group's
        // keys are split between two masters, no outcome can be written (the scripts get
        // TRYAGAIN), and a worker starts nothing more once as many outcomes wait as it has
        // slots: a step may see no progress at all. A reshard moves the next key regardless.
        let progress = |scene: &ClusterScene, dwell: Duration| {
            let t = Instant::now();
            let ended = scene.drain.tally().ended_runs;
            while scene.drain.tally().ended_runs <= ended + IN_FLIGHT_BOUND {
                if t.elapsed() >= dwell {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(t.elapsed())
        };
        let shown = |took: Option<Duration>| match took {
            Some(took) => format!("{took:?}"),
            None => format!("none within {STEP_DWELL:?}"),
        };
        let slot = scene.slot.to_string();
        let mut steps = vec![format!("migrating {}", shown(progress(scene, STEP_DWELL)))];
        loop {
            // The key the next step moves: MIGRATE takes GETKEYSINSLOT's first.
            let next = scene
                .cluster
                .cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "1"]);
            if moving.step(&scene.cluster, 1) == 0 {
                break;
            }
            let took = progress(scene, STEP_DWELL);
            let name = next.rsplit(':').next().unwrap_or(&next).to_string();
            steps.push(format!("{name} moved {}", shown(took)));
        }
        moving.finish(&scene.cluster);
        assert_eq!(scene.owner(), to);
        let took = progress(scene, DRAIN_LIMIT);
        assert!(
            took.is_some(),
            "the drain stopped after the slot moved; logs:\n{}",
            scene.drain.logs()
        );
        steps.push(format!("slot moved {}", shown(took)));
        format!(
            ", moved from {from} to {to} one key at a time; jobs ran on within: {}",
            steps.join(", ")
        )
    })
    .await;
    report.assert_guarantees(None);
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
///    keeps enqueueing: every job the producer was told is enqueued runs to its end, but for
///    what asynchronous replication drops as the replica is promoted.
///
/// Sentinel promotes the replica (`REPLICAOF NO ONE`) while the old master is still up and
/// still takes writes from the clients connected to it, until it is made a replica of the new
/// one; it then drops what it took meanwhile. So the master runs with `min-replicas-to-write
/// 1`, as README's Sentinel section asks: once its replica has left it, it refuses writes
/// (`NOREPLICAS`), and a producer is told its enqueue failed rather than that it succeeded.
/// What remains is the moment between the promotion and the old master seeing its replica
/// go: an enqueue it acknowledged then never reached the replica. A job lost must have been
/// accepted after the fail-over began and no later than the old master's first refusal.
/// [`sentinel_split_brain_without_min_replicas`] measures what is lost without the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_drain_with_producers_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (report, demoted_ms) = sentinel_drain_through_failover(true).await;
    report.assert_guarantees(Some((0, demoted_ms)));
}

/// The same fail-over as [`a_sentinel_failover_mid_drain_with_producers_loses_nothing`] with
/// the master at its default `min-replicas-to-write 0`: the old master accepts enqueues after
/// its replica was promoted, until it is made a replica (its first `READONLY`), and drops them
/// then; acknowledgements it took make jobs run again. Asserts only that every job lost was
/// accepted in that window; run it to see the numbers:
/// `cargo test --test cluster_faults -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of Redis Sentinel's split-brain window, not a guarantee"]
async fn sentinel_split_brain_without_min_replicas() {
    let _serial = SERIAL.lock().await;
    let (report, demoted_ms) = sentinel_drain_through_failover(false).await;
    let outside: Vec<&Lost> = report
        .lost
        .iter()
        .filter(|l| l.accepted_ms.is_none_or(|ms| ms < 0 || ms > demoted_ms))
        .collect();
    assert!(
        outside.is_empty(),
        "jobs lost outside the split-brain window (0 to {demoted_ms} ms): {outside:?}"
    );
}

/// Runs scenario 5, with `min-replicas-to-write 1` on the data nodes when `min_replicas`;
/// returns the report, and when (ms from the fault) the old master first refused an enqueue
/// (`NOREPLICAS` or `READONLY`), or the sentinels switched if it never did.
async fn sentinel_drain_through_failover(min_replicas: bool) -> (Report, i64) {
    let started = Instant::now();
    let set = RedisSentinel::start();
    if min_replicas {
        for port in set.data_ports() {
            set.cli(port, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
        }
    }
    let group = support::keys::unique_group("sentinel");
    let mut drain = Drain::new(&set.url(), &group);
    let ids = drain.enqueue(JOBS / 2).await;
    drain.start_workers();
    drain.until_ended(JOBS / 8, WAIT).await;

    let producer = Producer::start(&set.url(), &group).await;
    producer.until_accepted(100).await;
    let old = set.master_port();
    let pending_at_fault = pending(old, &group);
    let running_at_fault = drain.tally().running();
    let struck = Instant::now();
    tokio::task::block_in_place(|| set.failover());
    let switched = struck.elapsed();
    assert_ne!(set.master_port(), old);
    let produced_before_switch = producer.accepted();
    producer.until_accepted(produced_before_switch + 200).await;
    let (accepted, refused) = producer.stop().await;

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

    let all: Vec<JobId> = ids
        .iter()
        .cloned()
        .chain(accepted.iter().map(|(id, _)| id.clone()))
        .collect();
    let tally = drain.until_all_ended(&all).await;
    let lost = lost_jobs(&tally, &ids, &accepted, struck);
    if lost.is_empty() {
        let master = set.master_port();
        poll(WAIT, "the group to hold nothing", || {
            match leftovers(master, &group)? {
                None => Ok(()),
                Some(left) => Err(left),
            }
        });
    }
    drain.assert_workers_alive();
    let demoted = refused
        .iter()
        .find(|(e, _)| e.contains("NOREPLICAS") || e.contains("ReadOnly"))
        .map_or(switched, |(_, at)| at.saturating_duration_since(struck));
    let report = Report {
        scenario: if min_replicas {
            "sentinel: SENTINEL FAILOVER, min-replicas-to-write 1"
        } else {
            "sentinel: SENTINEL FAILOVER, min-replicas-to-write 0"
        },
        jobs: all.len(),
        lost,
        duplicates: tally.duplicates(),
        pending_at_fault,
        running_at_fault,
        recovered_after,
        wall: started.elapsed(),
        extra: format!(
            ", sentinels switched {switched:?} after the fault, the old master refused its first enqueue {demoted:?} after it{}; {} outcomes refused as stale",
            producer_summary(&accepted, &refused, struck),
            drain.count_in_logs("lost the lease"),
        ),
    };
    report.print();
    (report, demoted.as_millis() as i64)
}
