//! The web example end to end over real HTTP (`examples/web.rs`: 202 + Location, then polling
//! the job's state until its result), and [`JobBatch`]: everything on commit, nothing when
//! dropped or rolled back.

mod support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/web.rs"]
mod web;

use std::time::Duration;
use streamworker::{Job, JobId, JobState};
use support::http::http;
use support::inspect::{keys, xlen};
use support::keys::{key, unique_group};
use support::server::RedisServer;
use support::wait::{WAIT, wait_until};
use support::workers::{Running, client, noop_worker};

#[tokio::test]
async fn post_answers_202_with_a_location_that_reports_state_then_result() {
    let redis = RedisServer::start();
    let group = unique_group("web");
    let client = client(&redis).await;
    let worker = Running::worker(web::worker(&redis.url(), &group).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = web::router(web::App {
        client: client.clone(),
        group: group.clone(),
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let created = http(addr, "POST", "/reports", r#"{"user":"ada","pages":3}"#).await;
    assert_eq!(created.status, 202, "{created:?}");
    let location = created.headers["location"].clone();
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/jobs/{id}"));
    assert_eq!(created.body["status_url"], location.as_str());

    // While it is being built: a state and a hint to poll again.
    let first = http(addr, "GET", &location, "").await;
    assert_eq!(first.status, 200);
    let state = first.body["state"].as_str().unwrap().to_string();
    assert!(
        ["queued", "running", "succeeded"].contains(&state.as_str()),
        "{first:?}"
    );
    if state != "succeeded" {
        assert_eq!(first.headers["retry-after"], "1");
        assert!(first.body.get("result").is_none());
    }
    wait_until(WAIT, "the report to be built", || {
        let location = location.clone();
        async move { http(addr, "GET", &location, "").await.body["state"] == "succeeded" }
    })
    .await;
    let done = http(addr, "GET", &location, "").await;
    assert_eq!(done.status, 200);
    assert!(!done.headers.contains_key("retry-after"));
    assert_eq!(done.body["result"]["user"], "ada");
    assert_eq!(done.body["result"]["pages"], 3);
    assert!(
        done.body["result"]["summary"]
            .as_str()
            .unwrap()
            .contains(&id),
        "{done:?}"
    );

    // A request that fails after collecting its job sends nothing.
    let mut conn = redis.conn();
    let tracked_before = keys(&mut conn, &key(&group, "job:*"));
    let refused = http(addr, "POST", "/reports", r#"{"user":"bob","pages":0}"#).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let tracked_after = keys(&mut conn, &key(&group, "job:*"));
    assert_eq!(tracked_after, tracked_before, "no job was sent");
    assert_eq!(xlen(&mut conn, &key(&group, "default")), 0);

    // Unknown and malformed ids.
    let unknown = http(addr, "GET", &format!("/jobs/{}", JobId::generate()), "").await;
    assert_eq!(unknown.status, 404);
    let malformed = http(addr, "GET", "/jobs/not%20an%20id", "").await;
    assert_eq!(malformed.status, 400);

    server.abort();
    worker.stop().await;
}

#[tokio::test]
async fn a_job_batch_sends_everything_on_commit_and_nothing_when_dropped() {
    let redis = RedisServer::start();
    let emails = unique_group("batch-emails");
    let reports = unique_group("batch-reports");
    let client = client(&redis).await;
    let mut conn = redis.conn();
    let xlen = |conn: &mut redis::Connection, group: &str| xlen(conn, &key(group, "default"));
    let welcome =
        |user: u32| Job::new(&emails, "welcome", &serde_json::json!({"user": user})).unwrap();

    // Dropped: the transaction failed, nothing is sent.
    {
        let mut jobs = client.batch();
        jobs.push(welcome(1)).unwrap();
        jobs.push(Job::new(&reports, "first_report", &()).unwrap())
            .unwrap();
        assert_eq!(jobs.len(), 2);
    }
    // Rolled back explicitly: the same.
    let mut jobs = client.batch();
    jobs.push(welcome(2)).unwrap();
    jobs.rollback();
    assert_eq!(xlen(&mut conn, &emails) + xlen(&mut conn, &reports), 0);

    // A bad job fails at push, not at commit.
    let mut jobs = client.batch();
    let too_big = Job::new(&emails, "welcome", &"x".repeat(600 * 1024)).unwrap();
    assert!(matches!(
        jobs.push(too_big),
        Err(streamworker::Error::PayloadTooLarge { .. })
    ));
    assert!(jobs.is_empty());

    // Committed: every job, in one atomic step, under the ids known at push.
    let a = jobs
        .push(welcome(3).keep_result(Duration::from_secs(60)))
        .unwrap();
    let b = jobs
        .push(
            Job::new(&reports, "first_report", &())
                .unwrap()
                .delay(Duration::from_secs(3600))
                .keep_result(Duration::from_secs(60)),
        )
        .unwrap();
    let c = jobs
        .push(welcome(4).unique_for(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(jobs.ids(), vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(xlen(&mut conn, &emails), 0, "nothing before commit");
    let ids = jobs.commit().await.unwrap();
    assert_eq!(ids, vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(xlen(&mut conn, &emails), 2);
    let status = client.status(&reports, &b).await.unwrap().unwrap();
    assert!(matches!(status.state, JobState::Scheduled { .. }));

    // A unique job already there: the batch yields its holder's id.
    let mut again = client.batch();
    again
        .push(welcome(4).unique_for(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(again.commit().await.unwrap(), vec![c]);
    assert_eq!(xlen(&mut conn, &emails), 2);

    // And the committed jobs run.
    let worker = noop_worker(&redis.url(), &emails, "welcome");
    let done = client.wait_for_result(&emails, &a, WAIT).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    worker.stop().await;
}
