//! Contract tests of the Lua scripts in `lua/`: seed a state, run one script, compare the whole
//! after-state. These pin down each atomic move, including the ownership check (fencing).

mod support;

use redis::{Connection, Value};
use std::collections::HashMap;
use support::lua::*;
use support::{pending_count, stream_entries};

fn codes(v: Value) -> Vec<i64> {
    redis::from_redis_value(v).unwrap()
}

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
        len(&mut conn, DEFAULT),
        0,
        "the valid first record was not written either"
    );
}

#[test]
fn finish_ok_acks_deletes_and_stores_results_only_for_the_owner() {
    let (_redis, mut conn) = setup();
    let mine = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let theirs = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "me", 1);
    deliver(&mut conn, DEFAULT, "other", 1);
    let reply: Value = script("finish_ok")
        .key(&STREAMS)
        .key("streamworker:{g}:job:J")
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1) // one stream: default, two entries, ascending
        .arg(2)
        .arg(2)
        .arg(&mine)
        .arg(&theirs)
        .arg(after(&theirs))
        .arg(&mine)
        .arg(&theirs)
        .arg(1) // one tracked job: job 1, status hash KEYS[4]
        .arg(1)
        .arg(4)
        .arg(30_000)
        .arg("42")
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(
        codes(reply),
        vec![1, 0],
        "the entry owned by another consumer is stale"
    );
    let left = stream_entries(&mut conn, DEFAULT);
    assert_eq!(left.len(), 1, "only the owned entry was deleted");
    assert_eq!(
        pending_count(&mut conn, DEFAULT, G),
        1,
        "the other consumer's entry is still pending"
    );
    let status: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("streamworker:{g}:job:J")
        .query(&mut conn)
        .unwrap();
    assert_eq!(status["state"], "succeeded");
    assert_eq!(status["result"], "42");
}

/// finish_ok with `ids` (all on the default stream, ascending) for consumer "me".
fn finish_ok_default(conn: &mut redis::Connection, ids: &[&str]) -> Vec<i64> {
    let lua = script("finish_ok");
    let mut call = lua.prepare_invoke();
    call.key(&STREAMS).key(STATS).arg(G).arg("me").arg(1).arg(2);
    call.arg(ids.len())
        .arg(ids[0])
        .arg(ids[ids.len() - 1])
        .arg(after(ids[ids.len() - 1]));
    for id in ids {
        call.arg(*id);
    }
    codes(call.arg(0).invoke(conn).unwrap())
}

fn ids_of(conn: &mut redis::Connection, stream: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    reply.ids.into_iter().map(|e| e.id).collect()
}

#[test]
fn finish_ok_removes_finished_entries_only_never_a_waiting_or_running_one() {
    let (_redis, mut conn) = setup();
    let e: Vec<String> = (0..5)
        .map(|_| xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]))
        .collect();
    deliver(&mut conn, DEFAULT, "me", 3); // e0, e1, e2 running here
    deliver(&mut conn, DEFAULT, "other", 1); // e3 running elsewhere; e4 waiting
    // e0 still runs: e1 and e2 are removed, nothing else.
    assert_eq!(finish_ok_default(&mut conn, &[&e[1], &e[2]]), vec![1, 1]);
    assert_eq!(
        ids_of(&mut conn, DEFAULT),
        vec![e[0].clone(), e[3].clone(), e[4].clone()]
    );
    // e0 finishes: it goes; the other consumer's entry and the waiting one stay.
    assert_eq!(finish_ok_default(&mut conn, &[&e[0]]), vec![1]);
    assert_eq!(ids_of(&mut conn, DEFAULT), vec![e[3].clone(), e[4].clone()]);
    assert_eq!(pending_count(&mut conn, DEFAULT, G), 1);
    // A stale finish of the other consumer's entry changes nothing.
    assert_eq!(finish_ok_default(&mut conn, &[&e[3]]), vec![0]);
    assert_eq!(ids_of(&mut conn, DEFAULT), vec![e[3].clone(), e[4].clone()]);
}

#[test]
fn finish_retry_moves_the_entry_to_delayed_with_the_next_attempt() {
    let (_redis, mut conn) = setup();
    let eid = xadd(&mut conn, HIGH, &[("task", "t"), ("args", "{\"a\":1}")]);
    let gone = xadd(&mut conn, HIGH, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, HIGH, "me", 2);
    let _: () = redis::cmd("XDEL")
        .arg(HIGH)
        .arg(&gone)
        .query(&mut conn)
        .unwrap();
    let retry = script("finish_retry");
    let mut inv = retry.prepare_invoke();
    for k in [HIGH, DEFAULT, LOW, DELAYED, DELAYED_JOBS, STATS] {
        inv.key(k);
    }
    inv.arg(G).arg("me").arg(WAKE).arg(3);
    inv.arg(1)
        .arg(&eid)
        .arg(&eid)
        .arg(2)
        .arg(5_000)
        .arg("boom")
        .arg(0)
        .arg(1);
    inv.arg(1)
        .arg(&gone)
        .arg(&gone)
        .arg(2)
        .arg(5_000)
        .arg("boom")
        .arg(0)
        .arg(1);
    inv.arg(1)
        .arg("0-1")
        .arg("x")
        .arg(2)
        .arg(5_000)
        .arg("boom")
        .arg(0)
        .arg(1);
    let reply: Value = inv.invoke(&mut conn).unwrap();
    assert_eq!(
        codes(reply),
        vec![1, -1, 0],
        "moved; payload missing; never delivered = stale"
    );
    assert_eq!(len(&mut conn, HIGH), 0);
    assert_eq!(
        pending_count(&mut conn, HIGH, G),
        0,
        "the deleted entry was acknowledged too"
    );
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(DELAYED)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        members,
        vec![eid.clone()],
        "the redis-cli job keeps its first entry id as job id"
    );
    let packed: Vec<u8> = redis::cmd("HGET")
        .arg(DELAYED_JOBS)
        .arg(&eid)
        .query(&mut conn)
        .unwrap();
    let fields: Vec<String> = rmp_serde::from_slice(&packed).unwrap();
    assert_eq!(
        fields,
        vec![
            "1",
            "task",
            "t",
            "args",
            "{\"a\":1}",
            "id",
            &eid,
            "attempt",
            "2",
            "last_error",
            "boom"
        ]
    );
}

#[test]
fn finish_dead_keeps_every_field_and_adds_the_reason() {
    let (_redis, mut conn) = setup();
    let eid = xadd(
        &mut conn,
        LOW,
        &[("task", "t"), ("args", "{}"), ("custom", "kept")],
    );
    deliver(&mut conn, LOW, "me", 1);
    let stale: Value = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(STATS)
        .arg(G)
        .arg("intruder")
        .arg(1)
        .arg(3)
        .arg(&eid)
        .arg(&eid)
        .arg("nope")
        .arg(0)
        .arg(1)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(stale), vec![0]);
    assert_eq!(len(&mut conn, DEAD), 0, "a stale finish writes nothing");
    let reply: Value = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(3)
        .arg(&eid)
        .arg(&eid)
        .arg("unregistered task")
        .arg(0)
        .arg(1)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(reply), vec![1]);
    let dead = stream_entries(&mut conn, DEAD);
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(
        (d["task"].as_str(), d["custom"].as_str(), d["id"].as_str()),
        ("t", "kept", eid.as_str())
    );
    assert_eq!(
        (d["priority"].as_str(), d["reason"].as_str()),
        ("low", "unregistered task")
    );
    assert_eq!(len(&mut conn, LOW), 0);
    assert_eq!(pending_count(&mut conn, LOW, G), 0);
}

#[test]
fn promote_moves_only_due_jobs_into_their_priority_stream() {
    let (_redis, mut conn) = setup();
    let packed = |prio: &str, id: &str| {
        rmp_serde::to_vec(&vec![prio, "task", "t", "args", "{}", "id", id]).unwrap()
    };
    let _: () = redis::cmd("ZADD")
        .arg(DELAYED)
        .arg(1)
        .arg("due-high")
        .arg(2)
        .arg("due-low")
        .arg(4_000_000_000_000u64)
        .arg("later")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(DELAYED_JOBS)
        .arg("due-high")
        .arg(packed("1", "due-high"))
        .arg("due-low")
        .arg(packed("3", "due-low"))
        .arg("later")
        .arg(packed("2", "later"))
        .query(&mut conn)
        .unwrap();
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
    assert_eq!(len(&mut conn, DEFAULT), 0);
    let left: Vec<String> = redis::cmd("HKEYS")
        .arg(DELAYED_JOBS)
        .query(&mut conn)
        .unwrap();
    assert_eq!(left, vec!["later"]);
}

#[test]
fn hand_back_requeues_owned_entries_with_their_id_and_queued_status() {
    let (_redis, mut conn) = setup();
    let eid = xadd(
        &mut conn,
        DEFAULT,
        &[("task", "t"), ("args", "{}"), ("attempt", "2")],
    );
    deliver(&mut conn, DEFAULT, "me", 1);
    let status = "streamworker:{g}:job:J";
    let _: () = redis::cmd("HSET")
        .arg(status)
        .arg("state")
        .arg("running")
        .arg("consumer")
        .arg("me")
        .query(&mut conn)
        .unwrap();
    let hand_back = |consumer: &str, conn: &mut Connection| -> Value {
        script("hand_back")
            .key(&STREAMS)
            .key(status)
            .arg(G)
            .arg(consumer)
            .arg(1)
            .arg(2)
            .arg(&eid)
            .arg(&eid)
            .arg(4)
            .invoke(conn)
            .unwrap()
    };
    assert_eq!(codes(hand_back("other", &mut conn)), vec![0]);
    assert_eq!(codes(hand_back("me", &mut conn)), vec![1]);
    let entries = stream_entries(&mut conn, DEFAULT);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0]["id"].as_str(), entries[0]["attempt"].as_str()),
        (eid.as_str(), "2")
    );
    assert_eq!(
        pending_count(&mut conn, DEFAULT, G),
        0,
        "undelivered again: any worker can take it"
    );
    let fields: HashMap<String, String> =
        redis::cmd("HGETALL").arg(status).query(&mut conn).unwrap();
    assert_eq!(fields.get("state").map(String::as_str), Some("queued"));
    assert!(!fields.contains_key("consumer"), "{fields:?}");
}

/// `(owner, idle ms, times delivered)` of entry `id` in `stream`'s pending list.
fn pending_entry(conn: &mut Connection, stream: &str, id: &str) -> Option<(String, i64, i64)> {
    let rows: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(G)
        .arg(id)
        .arg(id)
        .arg(1)
        .query(conn)
        .unwrap();
    rows.into_iter().next().map(|(_, c, idle, n)| (c, idle, n))
}

/// Makes entry `id`, pending for `consumer`, look idle for `ms` (without counting a delivery).
fn age(conn: &mut Connection, stream: &str, consumer: &str, id: &str, ms: u64) {
    let _: Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(G)
        .arg(consumer)
        .arg(0)
        .arg(id)
        .arg("IDLE")
        .arg(ms)
        .arg("JUSTID")
        .query(conn)
        .unwrap();
}

#[test]
fn reap_takes_over_only_stalled_entries_and_reports_deleted_ones() {
    let (_redis, mut conn) = setup();
    let stalled = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let gone = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let fresh = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "dead-worker", 3);
    age(&mut conn, DEFAULT, "dead-worker", &stalled, 60_000);
    age(&mut conn, DEFAULT, "dead-worker", &gone, 60_000);
    let _: i64 = redis::cmd("XDEL")
        .arg(DEFAULT)
        .arg(&gone)
        .query(&mut conn)
        .unwrap();

    let reap = |conn: &mut Connection| -> Value {
        script("reap")
            .key(DEFAULT)
            .key(PAUSED)
            .arg(G)
            .arg("reaper")
            .arg(30_000)
            .arg("0-0")
            .arg(10)
            .invoke(conn)
            .unwrap()
    };
    let _: () = redis::cmd("SET")
        .arg(PAUSED)
        .arg(1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        reap(&mut conn),
        Value::Int(0),
        "a paused group is left alone"
    );
    let (owner, _, _) = pending_entry(&mut conn, DEFAULT, &stalled).unwrap();
    assert_eq!(owner, "dead-worker");
    let _: () = redis::cmd("DEL").arg(PAUSED).query(&mut conn).unwrap();

    let (cursor, claimed, deleted): (String, Vec<Value>, Vec<String>) =
        redis::from_redis_value(reap(&mut conn)).unwrap();
    assert_eq!(cursor, "0-0", "the whole pending list was scanned");
    assert_eq!(deleted, vec![gone.clone()]);
    assert_eq!(claimed.len(), 3, "one entry: id, fields, deliveries");
    assert_eq!(
        redis::from_redis_value::<String>(claimed[0].clone()).unwrap(),
        stalled
    );
    let fields: HashMap<String, String> = redis::from_redis_value(claimed[1].clone()).unwrap();
    assert_eq!(fields["task"], "t");
    assert_eq!(
        redis::from_redis_value::<i64>(claimed[2].clone()).unwrap(),
        2
    );

    let (owner, idle, times) = pending_entry(&mut conn, DEFAULT, &stalled).unwrap();
    assert_eq!((owner.as_str(), times), ("reaper", 2));
    assert!(idle < 5_000, "claiming resets the idle time: {idle}");
    assert_eq!(pending_entry(&mut conn, DEFAULT, &gone), None);
    let (owner, _, times) = pending_entry(&mut conn, DEFAULT, &fresh).unwrap();
    assert_eq!(
        (owner.as_str(), times),
        ("dead-worker", 1),
        "a fresh entry is left alone"
    );
}

#[test]
fn heartbeat_renews_only_the_entries_this_consumer_still_owns() {
    let (_redis, mut conn) = setup();
    let mine = xadd(&mut conn, HIGH, &[("task", "t"), ("args", "{}")]);
    let taken = xadd(&mut conn, LOW, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, HIGH, "me", 1);
    deliver(&mut conn, LOW, "me", 1);
    age(&mut conn, HIGH, "me", &mine, 60_000);
    // Another worker's reaper took `taken` over while this one was frozen.
    age(&mut conn, LOW, "other", &taken, 60_000);

    let reply: Value = script("heartbeat")
        .key(&STREAMS)
        .arg(G)
        .arg("me")
        .arg(2)
        .arg(1)
        .arg(&mine)
        .arg(3)
        .arg(&taken)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(reply), vec![1, 0]);
    let (owner, idle, times) = pending_entry(&mut conn, HIGH, &mine).unwrap();
    assert_eq!(
        (owner.as_str(), times),
        ("me", 1),
        "renewed without counting a delivery"
    );
    assert!(idle < 5_000, "the lease is renewed: idle {idle}");
    let (owner, idle, _) = pending_entry(&mut conn, LOW, &taken).unwrap();
    assert_eq!(owner, "other", "a lost entry is not stolen back");
    assert!(idle >= 60_000);
}

#[test]
fn prune_consumers_removes_only_consumers_that_own_nothing() {
    let (_redis, mut conn) = setup();
    xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "busy", 1);
    for (stream, name) in [(DEFAULT, "idle"), (LOW, "idle"), (HIGH, "me")] {
        let _: i64 = redis::cmd("XGROUP")
            .arg("CREATECONSUMER")
            .arg(stream)
            .arg(G)
            .arg(name)
            .query(&mut conn)
            .unwrap();
    }

    let removed: Vec<Value> = script("prune_consumers")
        .key(&STREAMS)
        .arg(G)
        .arg(0)
        .arg("me")
        .invoke(&mut conn)
        .unwrap();
    let removed: Vec<String> = removed
        .chunks(2)
        .map(|pair| redis::from_redis_value(pair[1].clone()).unwrap())
        .collect();
    assert_eq!(
        removed,
        vec!["idle", "idle"],
        "from the default and low streams"
    );
    let names = |conn: &mut Connection, stream: &str| -> Vec<String> {
        let infos: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg(G)
            .query(conn)
            .unwrap();
        infos
            .into_iter()
            .map(|i| redis::from_redis_value(i["name"].clone()).unwrap())
            .collect()
    };
    assert_eq!(
        names(&mut conn, DEFAULT),
        vec!["busy"],
        "a consumer with pending entries stays"
    );
    assert_eq!(
        names(&mut conn, HIGH),
        vec!["me"],
        "this worker is never removed"
    );
    assert!(names(&mut conn, LOW).is_empty());
    assert_eq!(
        pending_count(&mut conn, DEFAULT, G),
        1,
        "nothing pending was dropped"
    );
}

const LOCK: &str = "streamworker:{g}:unique:k";
const SCHEDULE: &str = "streamworker:{g}:schedule:beat";

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

fn texts(v: Value) -> Vec<String> {
    redis::from_redis_value(v).unwrap()
}

fn hash(conn: &mut Connection, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(conn).unwrap()
}

fn get(conn: &mut Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(conn).unwrap()
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
    assert_eq!(len(&mut conn, DEFAULT), 1, "B was not added");
    assert_eq!(get(&mut conn, LOCK).as_deref(), Some("A"));

    // A malformed condition is refused before anything is written.
    for bad in [("unique", 9, 1000), ("often", 6, 1000), ("unique", 0, 1000)] {
        assert!(
            enqueue_one(&mut conn, "C", &[LOCK], &[bad]).is_err(),
            "{bad:?}"
        );
    }
    assert_eq!(len(&mut conn, DEFAULT), 1);
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
    assert_eq!(len(&mut conn, DEFAULT), 1);

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
    assert_eq!(len(&mut conn, DEFAULT), 1);

    // A new tick whose job is locked is taken but not added.
    let _: () = redis::cmd("SET")
        .arg(LOCK)
        .arg("beat.2000")
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        texts(run(&mut conn, "beat.4000", "tick", 4000)),
        ["duplicate", "beat.2000"]
    );
    let st = hash(&mut conn, SCHEDULE);
    assert_eq!(
        (st["tick_ms"].as_str(), st["last_job_id"].as_str()),
        ("4000", "beat.2000")
    );
    assert_eq!(len(&mut conn, DEFAULT), 1);
}

#[test]
fn finishing_scripts_release_the_locks_of_the_jobs_they_finished_only() {
    let (_redis, mut conn) = setup();
    let other_lock = "streamworker:{g}:unique:other";
    let mine = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let theirs = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "me", 1);
    deliver(&mut conn, DEFAULT, "other", 1);
    let _: () = redis::cmd("SET")
        .arg(LOCK)
        .arg("J1")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(other_lock)
        .arg("J2")
        .query(&mut conn)
        .unwrap();
    // finish_ok: job 1 is mine (lock freed), job 2 is stale (lock kept).
    let reply: Value = script("finish_ok")
        .key(&STREAMS)
        .key(LOCK)
        .key(other_lock)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(2)
        .arg(2)
        .arg(&mine)
        .arg(&theirs)
        .arg(after(&theirs))
        .arg(&mine)
        .arg(&theirs)
        .arg(0) // no tracked job
        .arg(2)
        .arg(1)
        .arg(4)
        .arg("J1")
        .arg(2)
        .arg(5)
        .arg("J2")
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(reply), vec![1, 0]);
    assert_eq!(get(&mut conn, LOCK), None);
    assert_eq!(get(&mut conn, other_lock).as_deref(), Some("J2"));

    // finish_dead: a lock that names another job is not this job's to free.
    let _: () = redis::cmd("SET")
        .arg(LOCK)
        .arg("newer")
        .query(&mut conn)
        .unwrap();
    let eid = xadd(&mut conn, LOW, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, LOW, "me", 1);
    let reply: Value = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(LOCK)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(3)
        .arg(&eid)
        .arg("J1")
        .arg("failed")
        .arg(0)
        .arg(1)
        .arg(1)
        .arg(1)
        .arg(5)
        .arg("J1")
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(reply), vec![1]);
    assert_eq!(get(&mut conn, LOCK).as_deref(), Some("newer"));
    // The stats hash stays the last key, after the locks: one success and one dead counted.
    let stats = hash(&mut conn, STATS);
    let count = |kind: &str| -> i64 {
        stats
            .iter()
            .filter(|(k, _)| k.starts_with(kind))
            .map(|(_, v)| v.parse::<i64>().unwrap())
            .sum()
    };
    assert_eq!((count("ok:"), count("dead:")), (1, 1), "{stats:?}");
}

#[test]
fn finish_cancelled_acks_and_records_the_cancel_only_for_the_owner() {
    let (_redis, mut conn) = setup();
    let status = "streamworker:{g}:job:J";
    let mine = xadd(
        &mut conn,
        HIGH,
        &[("task", "t"), ("args", "{}"), ("id", "J")],
    );
    let theirs = xadd(&mut conn, HIGH, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, HIGH, "me", 1);
    deliver(&mut conn, HIGH, "other", 1);
    let _: () = redis::cmd("HSET")
        .arg(status)
        .arg("state")
        .arg("running")
        .arg("consumer")
        .arg("me")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(LOCK)
        .arg("J")
        .query(&mut conn)
        .unwrap();
    let reply: Value = script("finish_cancelled")
        .key(&STREAMS)
        .key(status)
        .key(LOCK)
        .arg(G)
        .arg("me")
        .arg(2)
        .arg(1)
        .arg(&mine)
        .arg(4)
        .arg(30_000)
        .arg(1)
        .arg(&theirs)
        .arg(0)
        .arg(1)
        .arg(1)
        .arg(1)
        .arg(5)
        .arg("J")
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(reply), vec![1, 0]);
    assert_eq!(len(&mut conn, HIGH), 1, "only the owned entry is deleted");
    assert_eq!(pending_count(&mut conn, HIGH, G), 1);
    let st = hash(&mut conn, status);
    assert_eq!(st["state"], "cancelled");
    assert!(!st.contains_key("consumer"));
    assert_eq!(get(&mut conn, LOCK), None);
    assert_eq!(len(&mut conn, DEAD), 0, "a cancelled job is not dead");
}

#[test]
fn cancel_removes_waiting_jobs_signals_running_ones_and_asks_for_locks() {
    let (redis, mut conn) = setup();
    let mut sub_conn = redis.conn();
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.subscribe("streamworker:{g}:cancel").unwrap();
    let cancel =
        |conn: &mut Connection, id: &str, cursor: (usize, &str), limit: usize, lock: &str| {
            let lua = script("cancel");
            let mut inv = lua.prepare_invoke();
            for k in [HIGH, DEFAULT, LOW, DELAYED, DELAYED_JOBS] {
                inv.key(k);
            }
            inv.key(format!("streamworker:{{g}}:job:{id}"));
            if !lock.is_empty() && lock != "*" {
                inv.key(format!("streamworker:{{g}}:unique:{lock}"));
            }
            inv.arg(G)
                .arg(id)
                .arg("streamworker:{g}:cancel")
                .arg(cursor.0)
                .arg(cursor.1)
                .arg(limit)
                .arg(lock);
            let v: Value = inv.invoke(conn).unwrap();
            redis::from_redis_value::<Vec<String>>(v).unwrap()
        };

    // Delayed and unique: the first call asks for the lock and changes nothing.
    let _: () = redis::cmd("SET")
        .arg(LOCK)
        .arg("D")
        .query(&mut conn)
        .unwrap();
    let packed = {
        // The payload format enqueue.lua writes: msgpack array {priority, field, value, ...}.
        let fields = ["2", "task", "t", "args", "{}", "id", "D", "unique_key", "k"];
        rmp_serde::to_vec(&fields).unwrap()
    };
    let _: () = redis::cmd("ZADD")
        .arg(DELAYED)
        .arg(4_000_000_000_000u64)
        .arg("D")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(DELAYED_JOBS)
        .arg("D")
        .arg(packed)
        .query(&mut conn)
        .unwrap();
    assert_eq!(cancel(&mut conn, "D", (1, "-"), 10, ""), ["need_lock", "k"]);
    assert_eq!(len_zset(&mut conn, DELAYED), 1);
    assert_eq!(
        cancel(&mut conn, "D", (1, "-"), 10, "k"),
        ["removed", "delayed"]
    );
    assert_eq!(len_zset(&mut conn, DELAYED), 0);
    assert_eq!(get(&mut conn, LOCK), None);

    // Waiting in `low` behind three others: a scan of 2 entries per call stops with a cursor.
    for i in 0..3 {
        xadd(
            &mut conn,
            DEFAULT,
            &[
                ("task", "t"),
                ("args", "{}"),
                ("id", format!("x{i}").as_str()),
            ],
        );
    }
    let w = xadd(
        &mut conn,
        LOW,
        &[("task", "t"), ("args", "{}"), ("id", "W")],
    );
    let step = cancel(&mut conn, "W", (1, "-"), 2, "");
    assert_eq!(step[..2], ["continue", "2"]);
    // From the cursor: the last entry of `default`, then `low`, within one call's budget.
    assert_eq!(
        cancel(&mut conn, "W", (2, &step[2]), 2, ""),
        ["removed", "waiting"]
    );
    assert!(stream_entries(&mut conn, LOW).is_empty(), "{w} deleted");
    assert_eq!(len(&mut conn, DEFAULT), 3, "the others stay");

    // Pending for a consumer: running; the id goes out on the cancel channel.
    let r = xadd(
        &mut conn,
        HIGH,
        &[("task", "t"), ("args", "{}"), ("id", "R")],
    );
    deliver(&mut conn, HIGH, "busy", 1);
    assert_eq!(
        cancel(&mut conn, "R", (1, "-"), 10, ""),
        ["running", "busy", "1"]
    );
    let msg = pubsub.get_message().unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "R");
    assert_eq!(len(&mut conn, HIGH), 1, "{r} stays for its worker to stop");

    // A tracked job that ended, and a job that is nowhere.
    let _: () = redis::cmd("HSET")
        .arg("streamworker:{g}:job:S")
        .arg("state")
        .arg("succeeded")
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        cancel(&mut conn, "S", (1, "-"), 10, ""),
        ["finished", "succeeded"]
    );
    assert_eq!(
        cancel(&mut conn, "nope", (1, "-"), 10, ""),
        ["not_found", ""]
    );
}

fn len_zset(conn: &mut Connection, key: &str) -> usize {
    redis::cmd("ZCARD").arg(key).query(conn).unwrap()
}
