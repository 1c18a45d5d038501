//! Connections for short commands: one shared connection, one round trip per command, and a
//! broken connection replaced on its own; `Client::from_pool` still works.

mod support;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use streamworker::{Client, Job, JobState};
use support::keys::unique_group;
use support::server::RedisServer;
use support::wait::wait_until;
use support::workers::{client, noop_worker};

#[derive(Debug, Serialize, Deserialize)]
struct Nothing {
    n: u64,
}

fn job(group: &str, n: u64) -> Job {
    Job::new(group, "nothing", &Nothing { n }).unwrap()
}

/// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
fn command_calls(conn: &mut redis::Connection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

/// Client connections Redis has open, not counting `conn` itself.
fn other_clients(conn: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(conn)
        .unwrap();
    list.lines().count() - 1
}

fn reset_stats(conn: &mut redis::Connection) {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query::<()>(conn)
        .unwrap();
}

/// At most one PING per quiet second (the check of a connection nobody used for a second);
/// never UNWATCH.
fn assert_no_checkout_round_trips(calls: &HashMap<String, u64>, elapsed: Duration) {
    let ping = calls.get("ping").copied().unwrap_or(0);
    assert!(
        ping <= elapsed.as_secs(),
        "{ping} PINGs in {elapsed:?}: {calls:?}"
    );
    assert_eq!(calls.get("unwatch"), None, "{calls:?}");
}

#[tokio::test]
async fn an_awaited_enqueue_is_one_command_on_one_connection() {
    let redis = RedisServer::start();
    let mut raw = redis.conn();
    let group = unique_group("conn");
    let client = client(&redis).await;
    reset_stats(&mut raw);
    let started = Instant::now();
    for n in 0..200 {
        client.enqueue(job(&group, n)).await.unwrap();
    }
    let elapsed = started.elapsed();
    let calls = command_calls(&mut raw);
    assert_eq!(calls.get("xadd"), Some(&200), "{calls:?}");
    assert_no_checkout_round_trips(&calls, elapsed);

    // Clones and concurrent callers share the one connection.
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let client = client.clone();
            let job = job(&group, n);
            tokio::spawn(async move { client.enqueue(job).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        other_clients(&mut raw),
        1,
        "one connection for short commands"
    );
}

#[tokio::test]
async fn a_worker_finishes_jobs_without_checkout_round_trips() {
    let redis = RedisServer::start();
    let mut raw = redis.conn();
    let group = unique_group("conn");
    let client = client(&redis).await;
    let ids = client
        .enqueue_many((0..300).map(|n| job(&group, n).keep_result(Duration::from_secs(60))))
        .await
        .unwrap();
    reset_stats(&mut raw);
    let started = Instant::now();
    let worker = noop_worker(&redis.url(), &group, "nothing");
    for id in &ids {
        let status = client
            .wait_for_result(&group, id, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(status.state, JobState::Succeeded);
    }
    worker.stop().await;
    let elapsed = started.elapsed();
    let calls = command_calls(&mut raw);
    assert_no_checkout_round_trips(&calls, elapsed);
}

#[tokio::test]
async fn a_killed_connection_is_replaced() {
    let redis = RedisServer::start();
    let mut raw = redis.conn();
    let group = unique_group("conn");
    let client = client(&redis).await;
    client.enqueue(job(&group, 0)).await.unwrap();
    let kill = |raw: &mut redis::Connection| {
        let killed: u64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
            .query(raw)
            .unwrap();
        assert_eq!(killed, 1);
    };

    // Used at once: the command that finds the connection closed may fail; the next one runs
    // on a new connection.
    kill(&mut raw);
    let mut failures = 0;
    while let Err(e) = client.enqueue(job(&group, 1)).await {
        failures += 1;
        assert!(failures < 2, "the connection was not replaced: {e}");
    }
    client.enqueue(job(&group, 2)).await.unwrap();

    // Used after a quiet second: the check finds it closed, and no command fails.
    kill(&mut raw);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.enqueue(job(&group, 3)).await.unwrap();
    assert_eq!(other_clients(&mut raw), 1);
}

#[tokio::test]
async fn a_restarted_redis_is_reconnected() {
    let mut redis = RedisServer::start();
    let group = unique_group("conn");
    let client = client(&redis).await;
    client.enqueue(job(&group, 0)).await.unwrap();
    redis.kill();
    assert!(client.enqueue(job(&group, 1)).await.is_err());
    redis.restart();
    wait_until(
        Duration::from_secs(5),
        "an enqueue to succeed after the restart",
        || {
            let client = client.clone();
            let job = job(&group, 2);
            async move { client.enqueue(job).await.is_ok() }
        },
    )
    .await;
    client.enqueue(job(&group, 3)).await.unwrap();
}

#[tokio::test]
async fn a_client_over_an_application_pool_still_works() {
    let redis = RedisServer::start();
    let group = unique_group("conn");
    let pool = deadpool_redis::Config::from_url(redis.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let client = Client::from_pool(pool);
    let id = client
        .enqueue(job(&group, 0).keep_result(Duration::from_secs(60)))
        .await
        .unwrap();
    let status = client.status(&group, &id).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Queued);
}
