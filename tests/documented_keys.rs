//! The README's table of Redis keys is the one key table: it names every key and channel a
//! group uses, with its type, and nothing else. Checked against what a real worker, scheduler,
//! client and admin leave in Redis when every kind of key is in use.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use streamworker::admin::Admin;
use streamworker::{Batch, Job, Schedule, Scheduler, Worker};
use support::inspect::keys;
use support::keys::unique_group;
use support::readme::readme_key_table;
use support::server::RedisServer;
use support::wait::{WAIT, until_eq, wait_until};
use support::workers::{Running, boom, client, noop};

/// Reports progress, then succeeds.
async fn report(
    _: serde_json::Value,
    ctx: streamworker::JobContext,
) -> Result<(), streamworker::TaskError> {
    assert!(ctx.progress(50, "half").await.unwrap());
    Ok(())
}

/// The values the README's placeholders take in this test.
const UNIQUE_KEY: &str = "k1";
const SCHEDULE: &str = "beat";

/// The keys of `group` in Redis with their type, and the channels with a subscriber, named and
/// typed as the README's table names them.
fn in_redis(conn: &mut redis::Connection, group: &str) -> BTreeMap<String, String> {
    let pattern = format!("streamworker:{{{group}}}:*");
    let mut found = BTreeMap::new();
    for key in keys(conn, &pattern) {
        let kind: String = redis::cmd("TYPE").arg(&key).query(conn).unwrap();
        let kind = match kind.as_str() {
            "zset" => "sorted set".to_string(),
            other => other.to_string(),
        };
        found.insert(key, kind);
    }
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg(&pattern)
        .query(conn)
        .unwrap();
    for channel in channels {
        found.insert(channel, "pub/sub channel".to_string());
    }
    found
}

/// What differs between the README's table and Redis: keys (or types) on one side only.
#[derive(Debug, Default, PartialEq)]
struct Differences {
    /// In Redis with this type, not in the table.
    undocumented: BTreeMap<String, String>,
    /// In the table with this type, not in Redis.
    not_in_redis: BTreeMap<String, String>,
}

fn differences(
    documented: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> Differences {
    let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    Differences {
        undocumented: only(found, documented),
        not_in_redis: only(documented, found),
    }
}

#[tokio::test]
async fn the_readme_key_table_names_every_key_of_a_group_and_its_type() {
    let redis = RedisServer::start();
    let group = unique_group("keys");
    let client = client(&redis).await;
    let worker = Running::worker(
        Worker::builder(redis.url())
            .group(&group)
            .task("boom", boom)
            .task("ok", noop)
            .task("report", report)
            .build()
            .unwrap(),
    );
    let tick = Job::from_json(&group, "ok", "{}").unwrap();
    let scheduler = Running::scheduler(
        Scheduler::new(&client)
            .schedule(Schedule::every(SCHEDULE, Duration::from_secs(1), tick).unwrap()),
    );
    // A job that goes dead (and is counted), and a tracked unique job enqueued once, waiting
    // for an hour.
    let job = |task: &str| Job::from_json(&group, task, "{}").unwrap();
    client.enqueue(job("boom")).await.unwrap();
    let waiting = client
        .enqueue(
            job("ok")
                .delay(Duration::from_secs(3600))
                .unique_key(UNIQUE_KEY)
                .unique_for(Duration::from_secs(7200))
                .keep_result(Duration::from_secs(3600))
                .enqueue_once(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    // A job that reports progress, and finishes.
    let reported = client.enqueue(job("report")).await.unwrap();
    // A batch with a child that goes dead and one waiting for an hour, so its hash, pending
    // set and failed set all exist.
    let batch = Batch::new(&group)
        .unwrap()
        .job(job("boom"))
        .job(job("ok").delay(Duration::from_secs(3600)))
        .on_complete(job("ok"));
    let batch = client.enqueue_batch(batch).await.unwrap();
    let admin = Admin::connect(&redis.url()).await.unwrap();
    let progress_key = format!("streamworker:{{{group}}}:progress:{reported}");
    let mut conn = redis.conn();
    support::wait::until("the reporting job reported", || {
        redis::cmd("EXISTS")
            .arg(&progress_key)
            .query::<i64>(&mut conn)
            .unwrap()
            == 1
    })
    .await;
    wait_until(WAIT, "the failing jobs to be dead", || {
        let (admin, group) = (admin.clone(), group.clone());
        async move { admin.status(&group).await.unwrap().dead == 2 }
    })
    .await;
    admin.pause(&group).await.unwrap();

    let documented: BTreeMap<String, String> = readme_key_table()
        .into_iter()
        .map(|row| {
            // The progress report is the reporting job's; every other id is the waiting job's.
            let id = if row.pattern.contains(":progress:") {
                reported.as_str()
            } else {
                waiting.as_str()
            };
            let key = row
                .pattern
                .replace("{G}", &format!("{{{group}}}"))
                .replace("{id}", id)
                .replace("{batch}", &batch)
                .replace("{key}", UNIQUE_KEY)
                .replace("{name}", SCHEDULE);
            (key, row.kind)
        })
        .collect();
    let mut conn = redis.conn();
    until_eq(
        "the keys and channels in Redis are the README's key table",
        &Differences::default(),
        || differences(&documented, &in_redis(&mut conn, &group)),
    )
    .await;
    scheduler.stop().await;
    worker.stop().await;
}
