//! The known state the operations tests (the `admin` module and the commands on it) read and
//! repair: one group with jobs waiting, in flight with a consumer that is gone, delayed, dead
//! and succeeded.

use super::deployment::Deployment;
use super::inspect::xlen;
use super::keys::{key, unique_group};
use super::seed::abandon_one;
use super::wait::{WAIT, until};
use super::workers::{Running, boom, client, done};
use std::time::Duration;
use streamworker::{Job, JobId, Priority, Worker};

/// The consumer that took [`Known::in_flight`] and is gone.
pub const GONE: &str = "gone-worker";
/// The consumer of the worker that ran the dead and succeeded jobs, then stopped.
pub const SEEDER: &str = "seed-worker";

/// The jobs of the known state, by place.
pub struct Known {
    pub group: String,
    /// Delivered to [`GONE`] from `default`, idle for 10 minutes.
    pub in_flight: JobId,
    /// Waiting in `default`, oldest first (3).
    pub waiting: Vec<JobId>,
    /// Waiting in `high` (1).
    pub waiting_high: JobId,
    /// Delayed by an hour (default priority) and by two hours (high).
    pub delayed: Vec<JobId>,
    /// Dead with reason "failed without retry: boom", oldest first (task `boom`).
    pub dead: Vec<JobId>,
    /// Succeeded with the result `"done"`, kept (task `ok`).
    pub succeeded: JobId,
}

/// Builds the known state: a real worker ([`SEEDER`]) turns two `boom` jobs dead and runs one
/// tracked `ok` job, then stops; then jobs are enqueued (waiting, delayed) and the first one
/// is delivered to [`GONE`], which never finishes it. All jobs have the args `{"n":1}`; the
/// waiting ones have task `send`, the delayed ones `later`.
pub async fn known_state(redis: &impl Deployment) -> Known {
    known_state_in(redis, unique_group("ops")).await
}

/// [`known_state`] in `group` (on a cluster, a group whose slot a chosen master serves).
pub async fn known_state_in(redis: &impl Deployment, group: String) -> Known {
    let client = client(redis).await;
    let job = |task: &str| Job::from_json(&group, task, r#"{"n":1}"#).unwrap();

    let dead = vec![
        client.enqueue(job("boom")).await.unwrap(),
        client.enqueue(job("boom")).await.unwrap(),
    ];
    let succeeded = client
        .enqueue(job("ok").keep_result(Duration::from_secs(600)))
        .await
        .unwrap();
    let worker = Running::worker(
        Worker::builder(redis.url())
            .group(&group)
            .consumer_name(SEEDER)
            .task("boom", boom)
            .task("ok", done)
            .build()
            .unwrap(),
    );
    client
        .wait_for_result(&group, &succeeded, WAIT)
        .await
        .unwrap();
    let mut conn = redis.conn();
    let dead_key = key(&group, "dead");
    until("two dead jobs", || xlen(&mut conn, &dead_key) == 2).await;
    worker.stop().await;

    let in_flight = client.enqueue(job("send")).await.unwrap();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(client.enqueue(job("send")).await.unwrap());
    }
    let waiting_high = client
        .enqueue(job("send").priority(Priority::High))
        .await
        .unwrap();
    let delayed = vec![
        client
            .enqueue(job("later").delay(Duration::from_secs(3600)))
            .await
            .unwrap(),
        client
            .enqueue(
                job("later")
                    .priority(Priority::High)
                    .delay(Duration::from_secs(7200)),
            )
            .await
            .unwrap(),
    ];
    abandon_one(&mut conn, &key(&group, "default"), &group, GONE, 600_000);
    Known {
        group,
        in_flight,
        waiting,
        waiting_high,
        delayed,
        dead,
        succeeded,
    }
}
