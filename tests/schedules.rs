//! Periodic jobs: several schedulers take each tick once, missed ticks follow the schedule's
//! policy after every scheduler was down, unique scheduled jobs do not overlap, and the CLI
//! runs and lists schedules.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use streamworker::{Job, Missed, Schedule, Scheduler};
use support::cli::{json, ok};
use support::inspect::{hash, redis_now_ms, stream_entries, ticks_in};
use support::keys::{key, unique_group};
use support::process::WorkerProcess;
use support::seed::hset;
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};
use support::workers::{Running, client};

const HOUR_MS: u64 = 3_600_000;

/// The state hash of `schedule` in `group`.
fn state(conn: &mut redis::Connection, group: &str, schedule: &str) -> HashMap<String, String> {
    hash(conn, &key(group, &format!("schedule:{schedule}")))
}

/// Runs one scheduler with `schedules`.
async fn start(redis: &RedisServer, schedules: Vec<Schedule>) -> Running {
    let client = client(redis).await;
    let mut scheduler = Scheduler::new(&client);
    for s in schedules {
        scheduler = scheduler.schedule(s);
    }
    Running::scheduler(scheduler)
}

fn every_second(group: &str, name: &str) -> Schedule {
    Schedule::every(
        name,
        Duration::from_secs(1),
        Job::new(group, "ping", &serde_json::json!({"from": name})).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn three_schedulers_enqueue_each_tick_once() {
    let redis = RedisServer::start();
    let group = unique_group("sched-race");
    let stream = key(&group, "default");
    let mut schedulers = Vec::new();
    for _ in 0..3 {
        schedulers.push(start(&redis, vec![every_second(&group, "ping")]).await);
    }
    let mut conn = redis.conn();
    until("four ticks enqueued", || {
        ticks_in(&mut conn, &stream, "ping").len() >= 4
    })
    .await;
    for s in schedulers {
        s.stop().await;
    }
    let ticks = ticks_in(&mut conn, &stream, "ping");
    let distinct: BTreeSet<u64> = ticks.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "a tick enqueued twice: {ticks:?}"
    );
    assert!(
        ticks.windows(2).all(|w| w[1] > w[0]),
        "ticks in order: {ticks:?}"
    );
    assert!(
        ticks.iter().all(|t| t % 1000 == 0),
        "ticks on whole seconds"
    );
    let st = state(&mut conn, &group, "ping");
    let last = *ticks.last().unwrap();
    assert_eq!(st["last_run_tick_ms"], last.to_string());
    assert_eq!(st["last_job_id"], format!("ping.{last}"));
}

#[tokio::test]
async fn after_all_schedulers_were_down_missed_ticks_run_once_or_are_skipped() {
    let redis = RedisServer::start();
    let group = unique_group("sched-missed");
    let stream = key(&group, "default");
    let mut conn = redis.conn();
    // Hourly schedules with a 1 s grace: the latest tick is late unless the hour has just
    // begun, so wait until it is at least 2 s old (into the next hour if it is about to end).
    let now = redis_now_ms(&mut conn);
    let mut latest = now - now % HOUR_MS;
    if now - latest > HOUR_MS - 5000 {
        latest += HOUR_MS;
    }
    until("the hour's tick to be 2 s old", || {
        redis_now_ms(&mut conn) >= latest + 2000
    })
    .await;
    // Both schedules last ran five hours ago; every scheduler was down since.
    for name in ["catch", "skip"] {
        let state = key(&group, &format!("schedule:{name}"));
        hset(
            &mut conn,
            &state,
            &[("tick_ms", &(latest - 5 * HOUR_MS).to_string())],
        );
    }
    let hourly = |name: &str, missed: Missed| {
        Schedule::every(
            name,
            Duration::from_secs(3600),
            Job::new(&group, "report", &()).unwrap(),
        )
        .unwrap()
        .missed(missed)
        .grace(Duration::from_secs(1))
    };
    let schedules = || {
        vec![
            hourly("catch", Missed::CatchUp),
            hourly("skip", Missed::Skip),
        ]
    };
    let scheduler = start(&redis, schedules()).await;
    until("both schedules to handle the missed ticks", || {
        ["catch", "skip"]
            .iter()
            .all(|name| state(&mut conn, &group, name).get("tick_ms") == Some(&latest.to_string()))
    })
    .await;
    scheduler.stop().await;
    assert_eq!(
        ticks_in(&mut conn, &stream, "catch"),
        vec![latest],
        "catch-up: one job, for the latest of the five missed ticks"
    );
    assert_eq!(
        ticks_in(&mut conn, &stream, "skip"),
        Vec::<u64>::new(),
        "skip: nothing"
    );
    assert!(!state(&mut conn, &group, "skip").contains_key("last_job_id"));

    // A scheduler started again enqueues nothing more until the next tick.
    let again = start(&redis, schedules()).await;
    let client = client(&redis).await;
    wait_until(WAIT, "the new scheduler to register", || {
        let client = client.clone();
        let group = group.clone();
        async move { client.schedules(&group).await.unwrap().len() == 2 }
    })
    .await;
    again.stop().await;
    assert_eq!(stream_entries(&mut conn, &stream).len(), 1);
}

#[tokio::test]
async fn after_a_real_pause_catch_up_enqueues_one_job_not_one_per_missed_tick() {
    let redis = RedisServer::start();
    let group = unique_group("sched-pause");
    let stream = key(&group, "default");
    let schedule = || {
        every_second(&group, "beat")
            .grace(Duration::from_millis(300))
            .missed(Missed::CatchUp)
    };
    let first = start(&redis, vec![schedule()]).await;
    let mut conn = redis.conn();
    until("a first tick", || {
        !ticks_in(&mut conn, &stream, "beat").is_empty()
    })
    .await;
    first.stop().await;
    let before = ticks_in(&mut conn, &stream, "beat");
    let last_before = *before.last().unwrap();
    // All schedulers down for more than three ticks.
    until("three ticks to pass", || {
        redis_now_ms(&mut conn) >= last_before + 3500
    })
    .await;
    let second = start(&redis, vec![schedule()]).await;
    let count_before = before.len();
    until("two ticks after the restart", || {
        ticks_in(&mut conn, &stream, "beat").len() >= count_before + 2
    })
    .await;
    second.stop().await;
    let ticks = ticks_in(&mut conn, &stream, "beat");
    let after: Vec<u64> = ticks[before.len()..].to_vec();
    assert!(
        after[0] >= last_before + 3000,
        "the first job after the pause is for the latest missed tick: {ticks:?}"
    );
    for missed in [last_before + 1000, last_before + 2000] {
        assert!(
            !ticks.contains(&missed),
            "no job for the earlier missed ticks: {ticks:?}"
        );
    }
    assert!(
        after.windows(2).all(|w| w[1] > w[0]),
        "then the following ticks: {ticks:?}"
    );
}

#[tokio::test]
async fn a_unique_scheduled_job_does_not_overlap_itself() {
    let redis = RedisServer::start();
    let group = unique_group("sched-unique");
    let stream = key(&group, "default");
    let schedule = Schedule::every(
        "long",
        Duration::from_secs(1),
        Job::new(&group, "long_task", &())
            .unwrap()
            .unique_for(Duration::from_secs(3600)),
    )
    .unwrap();
    let scheduler = start(&redis, vec![schedule]).await;
    let mut conn = redis.conn();
    until("a first job", || {
        ticks_in(&mut conn, &stream, "long").len() == 1
    })
    .await;
    let first = ticks_in(&mut conn, &stream, "long")[0];
    until("two more ticks to be taken", || {
        state(&mut conn, &group, "long")
            .get("tick_ms")
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|t| t >= first + 2000)
    })
    .await;
    scheduler.stop().await;
    assert_eq!(
        ticks_in(&mut conn, &stream, "long"),
        vec![first],
        "no job while the first one holds the lock"
    );
}

#[tokio::test]
async fn a_schedule_name_used_twice_is_refused() {
    let redis = RedisServer::start();
    let group = unique_group("sched-dup");
    let client = client(&redis).await;
    let err = Scheduler::new(&client)
        .schedule(every_second(&group, "same"))
        .schedule(every_second(&group, "same"))
        .run(async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("defined twice"), "{err}");
}

#[tokio::test]
async fn the_cli_runs_schedules_in_a_worker_and_lists_them() {
    let redis = RedisServer::start();
    let group = unique_group("sched-cli");
    let out_dir = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::start(
        &redis.url(),
        out_dir.path(),
        &[
            "--group",
            &group,
            "--exec",
            r#"sh -c 'cat > "$OUT/$STREAMWORKER_JOB_ID"'"#,
            "--schedule",
            r#"name=beat;every=1s;task=ping;missed=skip;args={"n":1}"#,
            "--schedule",
            "name=nightly;cron=0 30 2 * * *;tz=Europe/Paris;task=report",
        ],
    );
    until("a scheduled job to run", || {
        let found = std::fs::read_dir(out_dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("beat."))
            .and_then(|e| std::fs::read_to_string(e.path()).ok());
        found.as_deref() == Some(r#"{"n":1}"#)
    })
    .await;

    let table = ok(&redis, &["schedules", "--group", &group]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("NEXT RUN (UTC)"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("beat ") && lines[1].contains("every 1s") && lines[1].contains("skip"),
        "{table}"
    );
    assert!(lines[1].contains("beat."), "the last job id: {table}");
    assert!(
        lines[2].starts_with("nightly")
            && lines[2].contains("cron 0 30 2 * * * (Europe/Paris)")
            && lines[2].contains("never"),
        "{table}"
    );

    let rows = json(&redis, &["schedules", "--group", &group, "--json"]).await;
    let nightly = &rows[1];
    assert_eq!(nightly["name"], "nightly");
    let next = nightly["next_run_ms"].as_u64().unwrap();
    // 02:30 in Paris is 00:30 or 01:30 UTC.
    let minute_of_day = next % 86_400_000 / 60_000;
    assert!(
        minute_of_day == 30 || minute_of_day == 90,
        "next run {next} is not 02:30 Paris time"
    );
    assert!(rows[0]["last_run_ms"].as_u64().is_some());
}
