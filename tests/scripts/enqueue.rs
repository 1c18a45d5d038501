//! `enqueue.lua` (ready, delayed and tracked jobs; unique locks; schedule ticks) and `promote.lua`
//! (due delayed jobs into their stream): how a job enters a stream.

use crate::support::inspect::{get, hash, hkeys, stream_entries, xlen};
use crate::support::keys::{
    DEFAULT, DELAYED, DELAYED_JOBS, HIGH, LOCK, LOW, SCHEDULE, STREAMS, WAKE,
};
use crate::support::lua::script;
use crate::support::seed::{delayed, set, setup};
use crate::texts;
use redis::{Connection, Value};
use std::collections::HashMap;

#[test]
fn enqueue_adds_ready_delayed_and_tracked_jobs_in_one_step() {
    let (redis, mut conn) = setup();
    let mut pubsub_conn = redis.conn();
    let mut pubsub = pubsub_conn.as_pubsub();
    pubsub.subscribe(WAKE).unwrap();
    let enqueue = script("enqueue");
    let mut inv = enqueue.prepare_invoke();
    for k in [
        HIGH,
        DEFAULT,
        LOW,
        DELAYED,
        DELAYED_JOBS,
        "streamworker:{g}:job:B",
    ] {
        inv.key(k);
    }
    inv.arg(WAKE).arg(2);
    // job A: high, now, untracked; job B: low, due far ahead, tracked (KEYS[6]).
    inv.arg(1)
        .arg(0)
        .arg("A")
        .arg(0)
        .arg(0)
        .arg(3)
        .arg("task")
        .arg("t")
        .arg("args")
        .arg("{}")
        .arg("id")
        .arg("A");
    inv.arg(3)
        .arg(4_000_000_000_000u64)
        .arg("B")
        .arg(6)
        .arg(60_000)
        .arg(2)
        .arg("task")
        .arg("t")
        .arg("args")
        .arg("[]");
    let reply: Vec<String> = inv.invoke(&mut conn).unwrap();
    assert_eq!(reply[1], "delayed");
    let high = stream_entries(&mut conn, HIGH);
    assert_eq!(high.len(), 1);
    assert_eq!(high[0]["id"], "A");
    let score: f64 = redis::cmd("ZSCORE")
        .arg(DELAYED)
        .arg("B")
        .query(&mut conn)
        .unwrap();
    assert_eq!(score, 4_000_000_000_000.0);
    let status: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("streamworker:{g}:job:B")
        .query(&mut conn)
        .unwrap();
    assert_eq!(status["state"], "scheduled");
    assert_eq!(status["task"], "t", "the status record names the task");
    let ttl: i64 = redis::cmd("PTTL")
        .arg("streamworker:{g}:job:B")
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000);
    let msg = pubsub.get_message().unwrap();
    assert_eq!(
        msg.get_payload::<String>().unwrap(),
        "4000000000000",
        "promoters are told of the earliest due time"
    );

    // A malformed record is refused before anything is written.
    let mut bad = enqueue.prepare_invoke();
    for k in [HIGH, DEFAULT, LOW, DELAYED, DELAYED_JOBS] {
        bad.key(k);
    }
    bad.arg(WAKE).arg(2);
    bad.arg(2)
        .arg(0)
        .arg("C")
        .arg(0)
        .arg(0)
        .arg(1)
        .arg("task")
        .arg("t");
    bad.arg(9).arg(0).arg("D").arg(0).arg(0).arg(0);
    assert!(bad.invoke::<Value>(&mut conn).is_err());
    assert_eq!(
        xlen(&mut conn, DEFAULT),
        0,
        "the valid first record was not written either"
    );
}

#[test]
fn promote_moves_only_due_jobs_into_their_priority_stream() {
    let (_redis, mut conn) = setup();
    for (id, due_ms, priority) in [
        ("due-high", 1, "1"),
        ("due-low", 2, "3"),
        ("later", 4_000_000_000_000, "2"),
    ] {
        let payload = [priority, "task", "t", "args", "{}", "id", id];
        delayed(&mut conn, id, due_ms, &payload);
    }
    let reply: Vec<i64> = script("promote")
        .key(&STREAMS)
        .key(DELAYED)
        .key(DELAYED_JOBS)
        .arg(100)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(reply[0], 2, "moved");
    assert_eq!(reply[1], 4_000_000_000_000, "next due");
    assert_eq!(reply[3], 0, "orphans");
    assert_eq!(stream_entries(&mut conn, HIGH)[0]["id"], "due-high");
    assert_eq!(stream_entries(&mut conn, LOW)[0]["id"], "due-low");
    assert_eq!(xlen(&mut conn, DEFAULT), 0);
    let left = hkeys(&mut conn, DELAYED_JOBS);
    assert_eq!(left, vec!["later"]);
}

/// One enqueue.lua call for one untracked job `id` due now in `default`, with `conditions`
/// (kind, index into KEYS, number); `extra_keys` follow KEYS[1..5].
fn enqueue_one(
    conn: &mut Connection,
    id: &str,
    extra_keys: &[&str],
    conditions: &[(&str, usize, u64)],
) -> redis::RedisResult<Value> {
    let enqueue = script("enqueue");
    let mut inv = enqueue.prepare_invoke();
    for k in [HIGH, DEFAULT, LOW, DELAYED, DELAYED_JOBS]
        .iter()
        .chain(extra_keys)
    {
        inv.key(*k);
    }
    inv.arg(WAKE).arg(1);
    inv.arg(2).arg(0).arg(id).arg(0).arg(0).arg(2);
    inv.arg("task").arg("t").arg("id").arg(id);
    if !conditions.is_empty() {
        inv.arg(conditions.len());
        for (kind, key, n) in conditions {
            inv.arg(1).arg(*kind).arg(*key).arg(*n);
        }
    }
    inv.invoke(conn)
}

#[test]
fn enqueue_takes_a_free_unique_lock_and_names_the_holder_of_a_taken_one() {
    let (_redis, mut conn) = setup();
    let first = enqueue_one(&mut conn, "A", &[LOCK], &[("unique", 6, 60_000)]).unwrap();
    let first: Vec<Value> = redis::from_redis_value(first).unwrap();
    assert!(matches!(first[0], Value::BulkString(_)), "an entry id");
    assert_eq!(get(&mut conn, LOCK).as_deref(), Some("A"));
    let ttl: i64 = redis::cmd("PTTL").arg(LOCK).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");

    let second = enqueue_one(&mut conn, "B", &[LOCK], &[("unique", 6, 60_000)]).unwrap();
    let second: Vec<Value> = redis::from_redis_value(second).unwrap();
    assert_eq!(texts(second[0].clone()), ["duplicate", "A"]);
    assert_eq!(xlen(&mut conn, DEFAULT), 1, "B was not added");
    assert_eq!(get(&mut conn, LOCK).as_deref(), Some("A"));

    // A malformed condition is refused before anything is written.
    for bad in [("unique", 9, 1000), ("often", 6, 1000), ("unique", 0, 1000)] {
        assert!(
            enqueue_one(&mut conn, "C", &[LOCK], &[bad]).is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(xlen(&mut conn, DEFAULT), 1);
}

#[test]
fn enqueue_takes_each_tick_once_and_records_skipped_ticks() {
    let (_redis, mut conn) = setup();
    let run = |conn: &mut Connection, id: &str, kind: &str, tick: u64| {
        let v = enqueue_one(
            conn,
            id,
            &[SCHEDULE, LOCK],
            &[(kind, 6, tick), ("unique", 7, 60_000)],
        )
        .unwrap();
        let v: Vec<Value> = redis::from_redis_value(v).unwrap();
        v[0].clone()
    };
    assert!(matches!(
        run(&mut conn, "beat.2000", "tick", 2000),
        Value::BulkString(_)
    ));
    let st = hash(&mut conn, SCHEDULE);
    assert_eq!(st["tick_ms"], "2000");
    assert_eq!(st["last_run_tick_ms"], "2000");
    assert_eq!(st["last_job_id"], "beat.2000");
    assert!(st.contains_key("last_run_ms"));

    // The same tick, or an older one, is taken: nothing added, the lock untouched.
    let _: () = redis::cmd("DEL").arg(LOCK).query(&mut conn).unwrap();
    assert_eq!(
        texts(run(&mut conn, "beat.2000", "tick", 2000)),
        ["tick_taken"]
    );
    assert_eq!(
        texts(run(&mut conn, "beat.1000", "tick", 1000)),
        ["tick_taken"]
    );
    assert_eq!(get(&mut conn, LOCK), None, "a taken tick does not lock");
    assert_eq!(xlen(&mut conn, DEFAULT), 1);

    // A skipped tick advances the record and adds nothing.
    assert_eq!(
        texts(run(&mut conn, "beat.3000", "tick_skip", 3000)),
        ["tick_skipped"]
    );
    let st = hash(&mut conn, SCHEDULE);
    assert_eq!(
        (st["tick_ms"].as_str(), st["last_run_tick_ms"].as_str()),
        ("3000", "2000")
    );
    assert_eq!(xlen(&mut conn, DEFAULT), 1);

    // A new tick whose job is locked is taken but not added.
    set(&mut conn, LOCK, "beat.2000");
    assert_eq!(
        texts(run(&mut conn, "beat.4000", "tick", 4000)),
        ["duplicate", "beat.2000"]
    );
    let st = hash(&mut conn, SCHEDULE);
    assert_eq!(
        (st["tick_ms"].as_str(), st["last_job_id"].as_str()),
        ("4000", "beat.2000")
    );
    assert_eq!(xlen(&mut conn, DEFAULT), 1);
}
