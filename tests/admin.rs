//! The `admin` module against a real Redis holding a known state: jobs waiting, in flight
//! (held by a consumer that is gone), delayed, dead and succeeded. Every figure the module
//! reports is checked against that state, and every repair against what it moved.

mod support;

use std::time::Duration;
use streamworker::admin::{Admin, JobPlace, PendingQuery, Retention};
use streamworker::{Error, Job, Priority, Worker};
use support::inspect::{redis_now_ms, stream_entries};
use support::keys::{key, unique_group};
use support::known::{GONE, SEEDER, known_state};
use support::seed::{xadd, xadd_id};
use support::server::RedisServer;
use support::wait::{WAIT, until, wait_until};
use support::workers::{Running, boom, client, noop};

#[tokio::test]
async fn status_counts_every_place_and_the_outcomes_of_the_last_minute() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let admin = Admin::connect(&redis.url()).await.unwrap();
    let st = admin.status(&s.group).await.unwrap();

    let by_priority: Vec<(Priority, u64, u64)> = st
        .queues
        .iter()
        .map(|q| (q.priority, q.ready, q.pending))
        .collect();
    assert_eq!(
        by_priority,
        vec![
            (Priority::High, 1, 0),
            (Priority::Default, 3, 1),
            (Priority::Low, 0, 0)
        ]
    );
    assert_eq!((st.ready, st.pending, st.delayed, st.dead), (4, 1, 2, 2));
    assert!(!st.paused);
    let due = st.next_due_ms.unwrap();
    assert!(
        due > st.now_ms + 3_500_000 && due <= st.now_ms + 3_600_000,
        "next due in about an hour"
    );
    let oldest = st.oldest_ready_age_ms.unwrap();
    assert!(
        oldest < 60_000,
        "the oldest waiting job is seconds old: {oldest}"
    );
    assert!(
        st.queues[2].oldest_ready_age_ms.is_none(),
        "nothing waits in low"
    );

    let consumers: Vec<(&str, u64)> = st
        .consumers
        .iter()
        .map(|c| (c.name.as_str(), c.pending))
        .collect();
    assert_eq!(consumers, vec![(GONE, 1), (SEEDER, 0)]);
    let gone = &st.consumers[0];
    assert!(gone.idle_ms < 60_000, "XREADGROUP is its last interaction");

    // The seeding worker finished 3 jobs: 1 succeeded, 2 dead.
    for rates in [st.last_minute, st.last_hour] {
        assert_eq!(
            (
                rates.processed,
                rates.succeeded,
                rates.failed,
                rates.retried,
                rates.dead
            ),
            (3, 1, 2, 0, 2)
        );
    }

    let all = admin.status_all().await.unwrap();
    assert_eq!(
        all.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(),
        vec![s.group.as_str()],
        "the one group is found by SCAN"
    );
    assert_eq!(
        admin.groups().await.unwrap()[0].as_str(),
        s.group,
        "groups() agrees"
    );
}

#[tokio::test]
async fn pending_lists_held_entries_and_marks_the_ones_a_reaper_takes_next() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let admin = Admin::connect(&redis.url()).await.unwrap();

    let all = admin
        .pending(&s.group, &PendingQuery::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    let p = &all[0];
    assert_eq!(p.job_id, s.in_flight.as_str());
    assert_eq!(p.task.as_deref(), Some("send"));
    assert_eq!((p.consumer.as_str(), p.priority), (GONE, Priority::Default));
    assert_eq!((p.deliveries, p.attempt), (1, 1));
    assert!(p.idle_ms >= 600_000, "idle as set: {}", p.idle_ms);
    assert!(p.next_to_reap, "idle 10 min > visibility 30 s");
    assert!(!p.payload_missing);

    let patient = PendingQuery {
        visibility_timeout: Duration::from_secs(3600),
        ..PendingQuery::default()
    };
    assert!(!admin.pending(&s.group, &patient).await.unwrap()[0].next_to_reap);
    let fresh_only = PendingQuery {
        min_idle: Duration::from_secs(1200),
        ..PendingQuery::default()
    };
    assert!(
        admin
            .pending(&s.group, &fresh_only)
            .await
            .unwrap()
            .is_empty()
    );
    let someone_else = PendingQuery {
        consumer: Some(SEEDER.into()),
        ..PendingQuery::default()
    };
    assert!(
        admin
            .pending(&s.group, &someone_else)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn job_says_where_each_job_is() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let admin = Admin::connect(&redis.url()).await.unwrap();

    let waiting = admin.job(&s.group, s.waiting[1].as_str()).await.unwrap();
    assert!(
        matches!(
            waiting.place,
            JobPlace::Waiting {
                priority: Priority::Default,
                ..
            }
        ),
        "{:?}",
        waiting.place
    );
    assert_eq!(waiting.task.as_deref(), Some("send"));
    assert_eq!(waiting.args.as_deref(), Some(r#"{"n":1}"#));
    let high = admin.job(&s.group, s.waiting_high.as_str()).await.unwrap();
    assert!(matches!(
        high.place,
        JobPlace::Waiting {
            priority: Priority::High,
            ..
        }
    ));

    let running = admin.job(&s.group, s.in_flight.as_str()).await.unwrap();
    match &running.place {
        JobPlace::Running {
            consumer,
            deliveries,
            ..
        } => assert_eq!((consumer.as_str(), *deliveries), (GONE, 1)),
        other => panic!("running expected, got {other:?}"),
    }

    let delayed = admin.job(&s.group, s.delayed[1].as_str()).await.unwrap();
    assert!(
        matches!(
            delayed.place,
            JobPlace::Delayed {
                priority: Some(Priority::High),
                ..
            }
        ),
        "{:?}",
        delayed.place
    );
    assert_eq!(delayed.task.as_deref(), Some("later"));

    let dead = admin.job(&s.group, s.dead[0].as_str()).await.unwrap();
    match &dead.place {
        JobPlace::Dead { reason, .. } => assert_eq!(reason, "failed without retry: boom"),
        other => panic!("dead expected, got {other:?}"),
    }
    assert_eq!(
        dead.last_error.as_deref(),
        Some("failed without retry: boom")
    );

    let done = admin.job(&s.group, s.succeeded.as_str()).await.unwrap();
    assert!(matches!(
        done.place,
        JobPlace::Succeeded {
            finished_ms: Some(_)
        }
    ));
    assert_eq!(done.result.as_deref(), Some("\"done\""));
    assert!(done.tracked);

    let missing = admin.job(&s.group, "01NOSUCHJOB").await.unwrap_err();
    assert!(matches!(missing, Error::UnknownJob { .. }), "{missing}");
    assert!(missing.to_string().contains("keep_result"), "{missing}");
    let no_group = admin.job("no-such-group", "x").await.unwrap_err();
    assert!(matches!(no_group, Error::UnknownGroup { .. }), "{no_group}");
    assert!(
        no_group.to_string().contains(&s.group),
        "names the groups found: {no_group}"
    );
}

#[tokio::test]
async fn dead_jobs_are_listed_shown_redriven_and_purged_exactly() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let admin = Admin::connect(&redis.url()).await.unwrap();
    let mut conn = redis.conn();

    let list = admin.dead_list(&s.group, 10).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|d| d.job_id.as_str()).collect();
    assert_eq!(
        ids,
        vec![s.dead[1].as_str(), s.dead[0].as_str()],
        "newest first"
    );
    assert_eq!(list[0].reason, "failed without retry: boom");
    assert_eq!(list[0].task.as_deref(), Some("boom"));
    assert_eq!(list[0].priority, Some(Priority::Default));
    assert_eq!(
        admin.dead_list(&s.group, 1).await.unwrap().len(),
        1,
        "limit"
    );

    let shown = admin.dead_show(&s.group, s.dead[0].as_str()).await.unwrap();
    assert_eq!(shown.args.as_deref(), Some(r#"{"n":1}"#));
    let by_entry = admin.dead_show(&s.group, &shown.entry_id).await.unwrap();
    assert_eq!(
        by_entry.job_id, shown.job_id,
        "a dead entry id finds it too"
    );

    // An unknown id fails the whole call: nothing moves.
    let err = admin
        .dead_retry(&s.group, &[s.dead[0].to_string(), "01NOPE".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownJob { .. }), "{err}");
    assert_eq!(stream_entries(&mut conn, &key(&s.group, "dead")).len(), 2);

    let moved = admin
        .dead_retry(&s.group, &[s.dead[0].to_string()])
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].job_id, s.dead[0].as_str());
    let dead_left = stream_entries(&mut conn, &key(&s.group, "dead"));
    assert_eq!(dead_left.len(), 1);
    assert_eq!(
        dead_left[0]["id"],
        s.dead[1].as_str(),
        "the other one stays"
    );
    let default = stream_entries(&mut conn, &key(&s.group, "default"));
    let back = default
        .iter()
        .find(|e| e["id"] == s.dead[0].as_str())
        .expect("back in its stream");
    assert_eq!(back["attempt"], "1");
    assert_eq!(back["task"], "boom");
    assert_eq!(default.len(), 5, "4 seeded + the re-driven one");

    // --all with a task filter that matches nothing moves nothing; then everything.
    assert!(
        admin
            .dead_retry_all(&s.group, Some("other"))
            .await
            .unwrap()
            .is_empty()
    );
    let all = admin.dead_retry_all(&s.group, Some("boom")).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].job_id, s.dead[1].as_str());
    assert!(stream_entries(&mut conn, &key(&s.group, "dead")).is_empty());

    // Purge: seed three dead entries, one of them 2 days old by its entry id (in a fresh
    // stream: an XADD id must exceed every id the stream ever had).
    let dead_key = key(&s.group, "dead");
    let _: () = redis::cmd("DEL").arg(&dead_key).query(&mut conn).unwrap();
    let old_ms = redis_now_ms(&mut conn) - 2 * 86_400_000;
    let old = [("task", "t"), ("reason", "old")];
    xadd_id(&mut conn, &dead_key, &format!("{old_ms}-0"), &old);
    let newest_ms = (0..2)
        .map(|_| xadd(&mut conn, &dead_key, &[("task", "t"), ("reason", "new")]))
        .map(|id| id.split_once('-').unwrap().0.parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        admin
            .dead_purge(&s.group, Duration::from_secs(86_400))
            .await
            .unwrap(),
        1,
        "only the one over a day old"
    );
    let left = stream_entries(&mut conn, &dead_key);
    assert!(left.iter().all(|e| e["reason"] == "new"), "{left:?}");
    // Entries of the current millisecond are not older than zero: let Redis's clock move on.
    until("Redis's clock to pass the newest entry", || {
        redis_now_ms(&mut conn) > newest_ms
    })
    .await;
    assert_eq!(admin.dead_purge(&s.group, Duration::ZERO).await.unwrap(), 2);
    assert!(stream_entries(&mut conn, &dead_key).is_empty());
}

/// A worker bounding its groups' dead stream: 3 jobs, 1 h. Its trims run when it adds to the
/// stream; `status` reports the bounds it applied.
#[tokio::test]
async fn a_worker_keeps_its_dead_stream_within_the_bounds_it_is_given() {
    let redis = RedisServer::start();
    let group = unique_group("retention");
    let mut conn = redis.conn();
    let dead_key = key(&group, "dead");
    // An entry 2 h old (by its id), older than the worker's 1 h.
    let old_ms = redis_now_ms(&mut conn) - 2 * 3_600_000;
    let old = xadd_id(
        &mut conn,
        &dead_key,
        &format!("{old_ms}-0"),
        &[("task", "boom"), ("reason", "old")],
    );
    let worker = Running::worker(
        Worker::builder(redis.url())
            .group(&group)
            .concurrency(1)
            .dead_max_len(3)
            .dead_max_age(Duration::from_secs(3600))
            .task("boom", boom)
            .build()
            .unwrap(),
    );
    let client = client(&redis).await;
    let first = client
        .enqueue(Job::from_json(&group, "boom", "{}").unwrap())
        .await
        .unwrap();
    wait_until(WAIT, "the first job dead", || {
        let ids = support::inspect::entry_ids(&mut conn, &dead_key);
        std::future::ready(ids.len() == 1 && ids[0] != old)
    })
    .await;
    let admin = Admin::connect(&redis.url()).await.unwrap();
    assert_eq!(
        admin.dead_list(&group, 10).await.unwrap()[0].job_id,
        first.as_str(),
        "the old entry went when the first job was added"
    );
    let mut ids = vec![first];
    for _ in 0..4 {
        ids.push(
            client
                .enqueue(Job::from_json(&group, "boom", "{}").unwrap())
                .await
                .unwrap(),
        );
    }
    let st = || admin.status(&group);
    wait_until(WAIT, "all 5 jobs dead", || async {
        st().await.unwrap().last_minute.dead == 5
    })
    .await;
    let kept: Vec<String> = stream_entries(&mut conn, &dead_key)
        .into_iter()
        .map(|e| e["id"].clone())
        .collect();
    let newest: Vec<String> = ids[2..].iter().map(|id| id.to_string()).collect();
    assert_eq!(kept, newest, "the newest 3, in the order they died");
    let status = st().await.unwrap();
    assert_eq!(status.dead, 3);
    assert_eq!(
        status.dead_retention,
        Some(Retention {
            max_len: 3,
            max_age_ms: 3_600_000
        })
    );
    worker.stop().await;
}

/// A job over the payload limit lands in the dead stream with its first 1 KiB of args and its
/// size; it is shown so and cannot be re-driven.
#[tokio::test]
async fn an_oversized_job_is_kept_cut_in_dead_and_not_retried() {
    let redis = RedisServer::start();
    let group = unique_group("oversized");
    let worker = Running::worker(
        Worker::builder(redis.url())
            .group(&group)
            .max_payload_bytes(2048)
            .task("boom", boom)
            .build()
            .unwrap(),
    );
    let client = client(&redis).await;
    let args = format!(r#"{{"blob":"{}"}}"#, "x".repeat(10_000));
    let big = client
        .enqueue(Job::from_json(&group, "boom", &args).unwrap())
        .await
        .unwrap();
    let small = client
        .enqueue(Job::from_json(&group, "boom", "{}").unwrap())
        .await
        .unwrap();
    let admin = Admin::connect(&redis.url()).await.unwrap();
    wait_until(WAIT, "both jobs dead", || async {
        admin.dead_list(&group, 10).await.unwrap().len() == 2
    })
    .await;
    let mut conn = redis.conn();
    let stored = stream_entries(&mut conn, &key(&group, "dead"));
    let cut = stored.iter().find(|e| e["id"] == big.as_str()).unwrap();
    assert_eq!(cut["args"], args[..1024]);
    assert_eq!(cut["args_truncated_from"], args.len().to_string());

    let shown = admin.dead_show(&group, big.as_str()).await.unwrap();
    assert_eq!(shown.args_truncated_from, Some(args.len() as u64));
    assert_eq!(shown.args.as_deref(), Some(&args[..1024]));
    assert!(shown.reason.starts_with("too large"), "{}", shown.reason);
    let report = admin.job(&group, big.as_str()).await.unwrap();
    assert_eq!(report.args_truncated_from, Some(args.len() as u64));
    assert_eq!(
        admin
            .dead_show(&group, small.as_str())
            .await
            .unwrap()
            .args_truncated_from,
        None
    );

    // Refused by id, with nothing moved; left in place by --all.
    let err = admin
        .dead_retry(&group, &[small.to_string(), big.to_string()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CannotRetry { .. }), "{err}");
    assert!(err.to_string().contains("over the payload limit"), "{err}");
    assert_eq!(admin.dead_list(&group, 10).await.unwrap().len(), 2);
    worker.stop().await;
    let moved = admin.dead_retry_all(&group, None).await.unwrap();
    assert_eq!(
        moved.iter().map(|r| r.job_id.as_str()).collect::<Vec<_>>(),
        vec![small.as_str()]
    );
    let left = admin.dead_list(&group, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].job_id, big.as_str());
}

#[tokio::test]
async fn delayed_jobs_are_listed_and_run_now() {
    let redis = RedisServer::start();
    let s = known_state(&redis).await;
    let admin = Admin::connect(&redis.url()).await.unwrap();
    let list = admin.delayed_list(&s.group, 10).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|d| d.job_id.as_str()).collect();
    assert_eq!(
        ids,
        vec![s.delayed[0].as_str(), s.delayed[1].as_str()],
        "earliest first"
    );
    assert!(list[0].due_in_ms > 3_500_000 && list[0].due_in_ms <= 3_600_000);
    assert_eq!(list[1].priority, Some(Priority::High));
    assert_eq!(
        (list[0].task.as_deref(), list[0].attempt),
        (Some("later"), 1)
    );

    let entry = admin
        .delayed_run_now(&s.group, s.delayed[1].as_str())
        .await
        .unwrap();
    let high = stream_entries(&mut redis.conn(), &key(&s.group, "high"));
    assert_eq!(high.len(), 2, "the seeded high job and the promoted one");
    assert_eq!(high[1]["id"], s.delayed[1].as_str());
    let st = admin.status(&s.group).await.unwrap();
    assert_eq!((st.delayed, st.queues[0].ready), (1, 2));
    assert!(!entry.is_empty());
    let again = admin
        .delayed_run_now(&s.group, s.delayed[1].as_str())
        .await
        .unwrap_err();
    assert!(matches!(again, Error::UnknownJob { .. }), "{again}");
}

#[tokio::test]
async fn a_paused_group_is_not_fetched_from_until_resumed_and_enqueueing_goes_on() {
    let redis = RedisServer::start();
    let group = unique_group("pause");
    let client = client(&redis).await;
    let first = client
        .enqueue(
            Job::from_json(&group, "slow", "{}")
                .unwrap()
                .keep_result(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let worker = Running::worker(
        Worker::builder(redis.url())
            .group(&group)
            .consumer_name("pausable")
            .task("slow", noop)
            .build()
            .unwrap(),
    );
    client.wait_for_result(&group, &first, WAIT).await.unwrap();

    let admin = Admin::connect(&redis.url()).await.unwrap();
    assert!(admin.pause(&group).await.unwrap());
    assert!(!admin.pause(&group).await.unwrap(), "already paused");
    assert!(admin.status(&group).await.unwrap().paused);
    let held = client
        .enqueue(
            Job::from_json(&group, "slow", "{}")
                .unwrap()
                .keep_result(Duration::from_secs(60)),
        )
        .await
        .unwrap();

    // The worker keeps polling but runs nothing: the job stays queued and waiting while its
    // consumer's idle time grows past two of its fetch intervals. (An idle worker blocked in
    // a read when the pause came takes the job as it arrives and hands it straight back in
    // the same round trip; from then on it reads nothing.)
    wait_until(WAIT, "the paused worker to stay away for 2 s", || {
        let admin = admin.clone();
        let client = client.clone();
        let (group, held) = (group.clone(), held.clone());
        async move {
            let state = client.status(&group, &held).await.unwrap().unwrap().state;
            assert_eq!(state.as_str(), "queued", "nothing runs while paused");
            let st = admin.status(&group).await.unwrap();
            let c = st.consumers.iter().find(|c| c.name == "pausable").unwrap();
            (st.ready, st.pending) == (1, 0) && c.idle_ms >= 2000
        }
    })
    .await;
    let status = client.status(&group, &held).await.unwrap().unwrap();
    assert_eq!(status.state.as_str(), "queued");

    assert!(admin.resume(&group).await.unwrap());
    assert!(!admin.resume(&group).await.unwrap(), "not paused any more");
    let started = std::time::Instant::now();
    client.wait_for_result(&group, &held, WAIT).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "resumed within a fetch interval or two: {:?}",
        started.elapsed()
    );
    worker.stop().await;
}
