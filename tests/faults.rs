//! Fault injection: worker processes of the project's own binary are SIGKILLed and SIGSTOPped,
//! redis-server is killed and restarted or loses its data or script cache, entries are
//! malformed, while jobs run. Whatever happens, every job Redis accepted runs to success or
//! lands in the dead stream with its reason. (SIGTERM and the grace period: `shutdown.rs`.)
//!
//! Every job runs `job.sh` ([`support::scene`]), which records each run, so a test can tell
//! which worker ran what, and which runs were cut.

mod support;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::{Duration, Instant};
use streamworker::{Job, JobId, JobState};
use support::cli::{ok, redis_cli};
use support::process::WorkerProcess;
use support::scene::{Scene, VISIBILITY};
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};
use support::workers::{client, noop_worker};

/// A worker SIGKILLed while it runs a job: another worker finishes the job within the
/// visibility timeout plus the reaper interval.
#[tokio::test]
async fn a_job_whose_worker_is_killed_is_finished_by_another() {
    let scene = Scene::new(RedisServer::start(), "killed");
    let mut first = scene.worker(&[]);
    let ids = scene.enqueue("sleep-2", 1).await;
    scene.until_started(&ids[0], 1).await;
    let _second = scene.worker(&[]);
    first.kill();
    let killed_at = Instant::now();
    scene.until_started(&ids[0], 2).await;
    let taken_over_after = killed_at.elapsed();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;

    let starts = scene.starts_of(&ids[0]);
    assert_eq!(starts.len(), 2, "one cut run, one run to the end");
    assert_eq!(starts[0], first.pid());
    assert_ne!(starts[1], first.pid());
    // Visibility 1 s, reaper every 333 ms; the rest is slack for a loaded machine.
    assert!(
        taken_over_after < VISIBILITY + Duration::from_millis(333) + Duration::from_secs(2),
        "taken over after {taken_over_after:?}"
    );
    let result = &scene.status_field(&ids, "result")[0];
    assert_eq!(result.as_deref(), Some(format!("{}\n", starts[1]).as_str()));
    scene.assert_drained();
}

/// Chaos: 2,000 jobs, three worker processes, one SIGKILLed and replaced every 300 ms for
/// 4 s. Every job ran at least once and succeeded; every job that ran more than once lost its
/// other runs to a killed worker; nothing is left pending or delayed.
#[tokio::test]
async fn chaos_of_killed_workers_loses_no_job() {
    const JOBS: usize = 2_000;
    let scene = Scene::new(RedisServer::start(), "chaos");
    let ids = scene.enqueue("sleep-0.05", JOBS).await;
    let flags = ["--concurrency", "8", "--max-deliveries", "50"];
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| scene.worker(&flags)).collect();
    // A run whose worker was killed before its shell started records parent pid 1 (the
    // orphan was adopted by init): it counts as a run on a killed worker.
    let mut killed: HashSet<u32> = HashSet::from([1]);
    let chaos_started = Instant::now();
    let mut victim = 0;
    while chaos_started.elapsed() < Duration::from_secs(4) {
        // The fault's rhythm, not a synchronisation: a kill every 300 ms.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let w = &mut workers[victim % 3];
        killed.insert(w.pid());
        w.kill();
        *w = scene.worker(&flags);
        victim += 1;
    }
    let settle_started = Instant::now();
    scene
        .until_all_in_state(&ids, "succeeded", Duration::from_secs(60))
        .await;
    let settled_after = settle_started.elapsed();

    let runs = scene.runs();
    let mut by_job: HashMap<&str, Vec<(u32, bool)>> = HashMap::new();
    for (id, pid, done) in &runs {
        by_job.entry(id).or_default().push((*pid, *done));
    }
    let mut duplicates = 0;
    for id in &ids {
        let job_runs = by_job
            .get(id.as_str())
            .unwrap_or_else(|| panic!("job {id} never ran"));
        assert!(
            job_runs.iter().any(|(_, done)| *done),
            "job {id} never ran to its end"
        );
        if job_runs.len() > 1 {
            duplicates += job_runs.len() - 1;
            let on_survivors = job_runs
                .iter()
                .filter(|(pid, _)| !killed.contains(pid))
                .count();
            assert!(
                on_survivors <= 1,
                "job {id} ran {} times, {on_survivors} of them on workers never killed: {job_runs:?}",
                job_runs.len()
            );
        }
    }
    assert!(
        scene.dead().is_empty(),
        "no job is dead: {:?}",
        scene.dead()
    );
    scene.assert_drained();
    println!(
        "chaos: {JOBS} jobs, 3 workers, {} kills in {:?}, {} runs, {duplicates} duplicate runs, settled {:?} after the last kill, {:?} in all",
        killed.len() - 1,
        Duration::from_secs(4),
        runs.len(),
        settled_after,
        chaos_started.elapsed()
    );
}

/// Redis killed and restarted (AOF, appendfsync always) in the middle of a run: no job
/// enqueued before is lost, and the same worker processes finish the run.
#[tokio::test]
async fn a_redis_restart_with_aof_always_loses_no_job() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut scene = Scene::new(redis, "aof");
    let ids = scene.enqueue("sleep-0.01", 400).await;
    let flags = ["--concurrency", "4"];
    let mut workers = [scene.worker(&flags), scene.worker(&flags)];
    until("a quarter of the jobs done", || {
        scene.count_in_state(&ids, "succeeded") >= 100
    })
    .await;
    scene.redis.restart();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    for w in &mut workers {
        assert!(w.is_running(), "a worker died with Redis:\n{}", w.log());
    }
    let ran: HashSet<String> = scene.runs().into_iter().map(|(id, _, _)| id).collect();
    assert!(ids.iter().all(|id| ran.contains(id.as_str())));
    scene.assert_drained();
}

/// Redis unreachable for 5 s: the workers survive, carry on, and log the outage once when
/// it starts and once when it ends, not once per retry.
#[tokio::test]
async fn workers_ride_out_five_seconds_without_redis() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut scene = Scene::new(redis, "outage");
    let mut workers = [scene.worker(&[]), scene.worker(&[])];
    let before = scene.enqueue("sleep-0.01", 20).await;
    scene.until_all_in_state(&before, "succeeded", WAIT).await;

    scene.redis.kill();
    // The fault itself: Redis stays away for 5 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    scene.redis.restart();
    let after = scene.enqueue("sleep-0.01", 20).await;
    scene.until_all_in_state(&after, "succeeded", WAIT).await;
    for w in &mut workers {
        until("the worker to log the end of the outage", || {
            w.log().contains("Redis answers again")
        })
        .await;
        assert!(w.is_running());
        let log = w.log();
        let failing = log.matches("Redis is failing").count();
        let back = log.matches("Redis answers again").count();
        assert_eq!(
            failing, 1,
            "the outage is logged once when it starts:\n{log}"
        );
        assert_eq!(back, 1, "and once when it ends:\n{log}");
        assert!(
            log.lines().count() < 20,
            "no flood of log lines during the outage:\n{log}"
        );
    }
    scene.assert_drained();
}

/// A job longer than the visibility timeout runs once while its worker lives (heartbeats
/// renew its lease); kill its worker and it runs again on another.
#[tokio::test]
async fn heartbeats_keep_a_long_job_from_running_twice() {
    let scene = Scene::new(RedisServer::start(), "long");
    let _a = scene.worker(&[]);
    let _b = scene.worker(&[]);
    let long = scene.enqueue("sleep-3.5", 1).await;
    scene.until_all_in_state(&long, "succeeded", WAIT).await;
    assert_eq!(
        scene.starts_of(&long[0]).len(),
        1,
        "a job of 3.5 x the visibility timeout ran once"
    );

    let mut c = scene.worker(&[]);
    let blocked = scene.enqueue("block", 1).await;
    scene.until_started(&blocked[0], 1).await;
    let owner = scene.starts_of(&blocked[0])[0];
    // Kill whichever worker holds the job: that is `c` only if it took it.
    let mut workers = [_a, _b];
    if c.pid() == owner {
        c.kill();
    } else {
        workers
            .iter_mut()
            .find(|w| w.pid() == owner)
            .expect("one of the workers runs the job")
            .kill();
    }
    scene.until_started(&blocked[0], 2).await;
    fs::write(scene.out().join("go"), "").unwrap();
    scene.until_all_in_state(&blocked, "succeeded", WAIT).await;
    let starts = scene.starts_of(&blocked[0]);
    assert_eq!(starts.len(), 2);
    assert_ne!(starts[0], starts[1], "the second run is on another worker");
    scene.assert_drained();
}

/// A poison job lands in the dead stream after its retries, with its last error; a job
/// that kills its worker every time lands there as `stalled N times`.
#[tokio::test]
async fn poison_jobs_end_in_the_dead_stream_with_their_reason() {
    let scene = Scene::new(RedisServer::start(), "poison");
    let flags = ["--max-retries", "2", "--max-deliveries", "2"];
    let mut worker = scene.worker(&flags);
    let failing = scene.enqueue("fail", 1).await;
    scene.until_all_in_state(&failing, "dead", WAIT).await;
    let crashing = scene.enqueue("crash", 1).await;
    // Restart the worker each time the crashing job kills it, until the job is dead.
    let mut restarts = 0;
    wait_until(WAIT, "the crashing job dead", || {
        if !worker.is_running() {
            worker = scene.worker(&flags);
            restarts += 1;
        }
        let n = scene.count_in_state(&crashing, "dead");
        async move { n == 1 }
    })
    .await;
    let dead = scene.dead();
    assert_eq!(dead.len(), 2);
    let reason_of = |id: &JobId| {
        dead.iter()
            .find(|e| e.get("id").map(String::as_str) == Some(id.as_str()))
            .and_then(|e| e.get("reason").cloned())
            .unwrap_or_default()
    };
    let failed = reason_of(&failing[0]);
    assert!(failed.starts_with("failed after 3 attempts"), "{failed}");
    assert!(
        failed.contains("poison: the invoice cannot be parsed"),
        "{failed}"
    );
    assert_eq!(scene.starts_of(&failing[0]).len(), 3);
    let stalled = reason_of(&crashing[0]);
    assert!(stalled.starts_with("stalled 2 times"), "{stalled}");
    assert_eq!(
        scene.starts_of(&crashing[0]).len(),
        2,
        "two deliveries, both killed"
    );
    assert_eq!(restarts, 2, "the crashing job killed its worker twice");
    scene.assert_drained();

    // Once the bug is fixed, re-driving from the dead stream runs both again, to success.
    fs::write(scene.out().join("fixed"), "").unwrap();
    let retry = [
        "dead",
        "--group",
        &scene.group,
        "retry",
        crashing[0].as_str(),
    ];
    ok(&scene.redis, &retry).await;
    scene.until_all_in_state(&crashing, "succeeded", WAIT).await;
    assert_eq!(
        scene.starts_of(&crashing[0]).len(),
        3,
        "re-driven: one more run"
    );
    assert_eq!(scene.dead().len(), 1, "only the failing job is still dead");
    scene.assert_drained();
}

/// A worker SIGSTOPped past the visibility timeout, then continued: the job ran elsewhere,
/// the stopped worker's late finish is rejected as stale, and exactly one result is stored.
#[tokio::test]
async fn a_worker_stopped_past_its_lease_stores_nothing() {
    let scene = Scene::new(RedisServer::start(), "sigstop");
    let stopped = scene.worker(&[]);
    let ids = scene.enqueue("block", 1).await;
    scene.until_started(&ids[0], 1).await;
    stopped.signal("STOP");
    let other = scene.worker(&[]);
    scene.until_started(&ids[0], 2).await;
    assert_eq!(scene.starts_of(&ids[0]), vec![stopped.pid(), other.pid()]);

    // Both runs finish: the stopped worker's child is not stopped, only the worker.
    fs::write(scene.out().join("go"), "").unwrap();
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    stopped.signal("CONT");
    until("the continued worker to notice it lost the lease", || {
        stopped.log().contains("lost the lease")
    })
    .await;
    let result = scene.status_field(&ids, "result").remove(0);
    assert_eq!(
        result,
        Some(format!("{}\n", other.pid())),
        "the one stored result is the live worker's"
    );
    scene.assert_drained();
}

/// Malformed entries written by hand land in the dead stream with their reason, and the
/// worker keeps serving.
#[tokio::test]
async fn malformed_entries_are_dead_lettered_and_the_worker_goes_on() {
    let scene = Scene::new(RedisServer::start(), "malformed");
    let stream = scene.key("default");
    let huge = "x".repeat(2048);
    let entries: [&[&str]; 4] = [
        &["args", "{}"],
        &["task", "sleep-0", "args", "{not json"],
        &["task", "sleep-0", "args", &huge],
        &["task", "sleep-0", "args", "{}", "enc", "pickle"],
    ];
    let mut conn = scene.redis.conn();
    for fields in entries {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&stream).arg("*").arg(fields);
        let _: String = cmd.query(&mut conn).unwrap();
    }
    let _worker = scene.worker(&["--max-payload-bytes", "1024"]);
    let good = scene.enqueue("sleep-0", 1).await;
    scene.until_all_in_state(&good, "succeeded", WAIT).await;
    until("four dead entries", || scene.dead().len() == 4).await;
    let reasons: Vec<String> = scene
        .dead()
        .into_iter()
        .map(|e| e.get("reason").cloned().unwrap_or_default())
        .collect();
    // Jobs run concurrently, so the dead stream's order is the order they failed in.
    for needle in ["field task", "JSON", "1024", "pickle"] {
        assert_eq!(
            reasons.iter().filter(|r| r.contains(needle)).count(),
            1,
            "one reason names {needle:?}: {reasons:?}"
        );
    }
    scene.assert_drained();
    // `redis-cli` exists on the machine: the same check a user would type.
    assert_eq!(redis_cli(&scene.redis, &["XLEN", &scene.key("dead")]), "4");
}

/// Start-up check: a Redis that may evict keys is refused, with the fix in the message.
#[tokio::test]
async fn a_worker_refuses_a_redis_that_evicts_keys() {
    let scene = Scene::new(
        RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]),
        "evicting",
    );
    let mut worker = scene.worker(&[]);
    let status = worker.exit_status(WAIT).await;
    assert_eq!(status.code(), Some(1));
    let log = worker.log();
    assert!(log.contains("maxmemory-policy allkeys-lru"), "{log}");
    assert!(
        log.contains("CONFIG SET maxmemory-policy noeviction"),
        "{log}"
    );
}

/// A Redis restarted without persistence lost the consumer groups: the worker recreates them,
/// says so as an error, and serves new jobs without a restart of its own.
#[tokio::test]
async fn groups_lost_with_redis_data_are_recreated_loudly() {
    let mut scene = Scene::new(RedisServer::start(), "nogroup");
    let mut worker = scene.worker(&[]);
    let before = scene.enqueue("sleep-0", 1).await;
    scene.until_all_in_state(&before, "succeeded", WAIT).await;
    scene.redis.restart();
    until("the worker to report the recreated groups", || {
        worker
            .log()
            .contains("consumer group was missing and has been recreated")
    })
    .await;
    let after = scene.enqueue("sleep-0", 1).await;
    scene.until_all_in_state(&after, "succeeded", WAIT).await;
    assert!(worker.is_running());
    scene.assert_drained();
}

/// A pause is logged by the worker once, a resume once, and jobs enqueued meanwhile run after.
#[tokio::test]
async fn a_paused_worker_says_so_and_resumes() {
    let scene = Scene::new(RedisServer::start(), "pause");
    let worker = scene.worker(&[]);
    until("the worker to start", || {
        worker.log().contains("worker started")
    })
    .await;
    ok(&scene.redis, &["pause", "--group", &scene.group]).await;
    until("the worker to log the pause", || {
        worker.log().contains("group paused")
    })
    .await;
    let ids = scene.enqueue("sleep-0", 3).await;
    ok(&scene.redis, &["resume", "--group", &scene.group]).await;
    scene.until_all_in_state(&ids, "succeeded", WAIT).await;
    let log = worker.log();
    assert_eq!(log.matches("group paused").count(), 1, "{log}");
    assert_eq!(log.matches("group resumed").count(), 1, "{log}");
}

/// A flushed script cache (SCRIPT FLUSH, or a restart that lost it) is reloaded on NOSCRIPT:
/// the next jobs finish as usual.
#[tokio::test]
async fn a_worker_survives_a_flushed_script_cache() {
    let redis = RedisServer::start();
    let group = support::keys::unique_group("noscript");
    let client = client(&redis).await;
    let job = || {
        Job::from_json(&group, "noop", "{}")
            .unwrap()
            .keep_result(Duration::from_secs(60))
    };
    let worker = noop_worker(&redis.url(), &group, "noop");
    let first = client.enqueue(job()).await.unwrap();
    client.wait_for_result(&group, &first, WAIT).await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.conn())
        .unwrap();
    let second = client.enqueue(job()).await.unwrap();
    let status = client
        .wait_for_result(&group, &second, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        status.state,
        JobState::Succeeded,
        "NOSCRIPT is reloaded, not a failure"
    );
    worker.stop().await;
}
