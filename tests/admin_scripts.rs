//! Contract tests of the operations side of the Lua scripts: the
//! outcome counters of the finishing scripts, and the repair moves `dead_retry.lua` and
//! `run_now.lua`. Each seeds a state, runs one script, and checks the whole after-state.

mod support;

use redis::{Connection, Value};
use std::collections::HashMap;
use support::lua::*;
use support::stream_entries;

const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;

fn hash(conn: &mut Connection, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(conn).unwrap()
}

fn pttl(conn: &mut Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

/// The current 10 s slot of the stats hash, by Redis's clock.
fn slot(conn: &mut Connection) -> u64 {
    let (secs, _): (u64, u64) = redis::cmd("TIME").query(conn).unwrap();
    secs / 10
}

#[test]
fn finishing_scripts_count_their_outcomes_per_slot_and_drop_old_slots() {
    let (_redis, mut conn) = setup();
    // A slot more than an hour old, and one within the hour: the first count of a new slot
    // drops the first and keeps the second.
    let now = slot(&mut conn);
    let _: () = redis::cmd("HSET")
        .arg(STATS)
        .arg(format!("ok:{}", now - 400))
        .arg(99)
        .arg(format!("dead:{}", now - 100))
        .arg(5)
        .query(&mut conn)
        .unwrap();
    let ids: Vec<String> = (0..4)
        .map(|_| xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]))
        .collect();
    deliver(&mut conn, DEFAULT, "me", 3);
    deliver(&mut conn, DEFAULT, "other", 1);

    // finish_ok: two owned entries and one stale (owned by `other`): counts 2.
    let finish_ok = script("finish_ok");
    let mut ok = finish_ok.prepare_invoke();
    ok.key(&STREAMS)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(2)
        .arg(3);
    ok.arg(&ids[0]).arg(&ids[3]).arg(after(&ids[3]));
    for id in [&ids[0], &ids[1], &ids[3]] {
        ok.arg(id);
    }
    ok.arg(0);
    let codes: Vec<i64> = ok.invoke(&mut conn).unwrap();
    assert_eq!(codes, vec![1, 1, 0]);

    let retry: Vec<i64> = script("finish_retry")
        .key(&STREAMS)
        .key(DELAYED)
        .key(DELAYED_JOBS)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(WAKE)
        .arg(1)
        .arg(2)
        .arg(&ids[2])
        .arg(&ids[2])
        .arg(2)
        .arg(1000)
        .arg("boom")
        .arg(0)
        .arg(1)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(retry, vec![1]);

    let dead: Vec<i64> = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(STATS)
        .arg(G)
        .arg("other")
        .arg(1)
        .arg(2)
        .arg(&ids[3])
        .arg(&ids[3])
        .arg("nope")
        .arg(0)
        .arg(1)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(dead, vec![1]);

    let stats = hash(&mut conn, STATS);
    let now_after = slot(&mut conn);
    let count = |kind: &str| -> u64 {
        (now..=now_after)
            .filter_map(|s| stats.get(&format!("{kind}:{s}")))
            .map(|v| v.parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        (count("ok"), count("retry"), count("dead")),
        (2, 1, 1),
        "{stats:?}"
    );
    assert!(
        !stats.contains_key(&format!("ok:{}", now - 400)),
        "a slot over an hour old is dropped: {stats:?}"
    );
    assert_eq!(
        stats
            .get(&format!("dead:{}", now - 100))
            .map(String::as_str),
        Some("5"),
        "a slot within the hour is kept"
    );
    let ttl = pttl(&mut conn, STATS);
    assert!(ttl > 3_600_000 && ttl <= 7_200_000, "PTTL {ttl}");
}

#[test]
fn dead_retry_sends_jobs_back_to_their_stream_as_a_first_attempt() {
    let (_redis, mut conn) = setup();
    let status = "streamworker:{g}:job:J1";
    let tracked = xadd(
        &mut conn,
        DEAD,
        &[
            ("task", "t"),
            ("args", "{\"a\":1}"),
            ("id", "J1"),
            ("keep_result_ms", "60000"),
            ("attempt", "4"),
            ("last_error", "old"),
            ("custom", "kept"),
            ("priority", "high"),
            ("reason", "failed after 4 attempts: boom"),
            ("dead_ms", "1"),
        ],
    );
    let plain = xadd(
        &mut conn,
        DEAD,
        &[
            ("task", "t"),
            ("args", "{}"),
            ("id", "J2"),
            ("priority", "low"),
            ("reason", "unregistered task"),
            ("dead_ms", "2"),
        ],
    );
    let untouched = xadd(
        &mut conn,
        DEAD,
        &[
            ("task", "t"),
            ("args", "{}"),
            ("id", "J3"),
            ("priority", "default"),
        ],
    );
    let _: () = redis::cmd("HSET")
        .arg(status)
        .arg("state")
        .arg("dead")
        .arg("attempt")
        .arg(4)
        .arg("finished_ms")
        .arg(5)
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg(status)
        .arg(60_000)
        .query(&mut conn)
        .unwrap();

    let reply: Vec<Value> = script("dead_retry")
        .key(&STREAMS)
        .key(DEAD)
        .key(status)
        .key("streamworker:{g}:job:J2")
        .arg(WEEK_MS)
        .arg(3)
        .arg(&tracked)
        .arg(5)
        .arg(&plain)
        .arg(6)
        .arg("1-1")
        .arg(0)
        .invoke(&mut conn)
        .unwrap();
    assert!(matches!(reply[0], Value::BulkString(_)), "{reply:?}");
    assert!(matches!(reply[1], Value::BulkString(_)), "{reply:?}");
    assert_eq!(reply[2], Value::Int(0), "a dead entry that is not there");

    let dead = stream_entries(&mut conn, DEAD);
    assert_eq!(dead.len(), 1, "only the entry not named stays dead");
    assert_eq!(dead[0]["id"], "J3");
    let _ = untouched;

    let high = stream_entries(&mut conn, HIGH);
    assert_eq!(high.len(), 1);
    let mut fields: Vec<(&str, &str)> = high[0]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            ("args", "{\"a\":1}"),
            ("attempt", "1"),
            ("custom", "kept"),
            ("id", "J1"),
            ("keep_result_ms", "60000"),
            ("last_error", "failed after 4 attempts: boom"),
            ("task", "t"),
        ]
    );
    let low = stream_entries(&mut conn, LOW);
    assert_eq!(low.len(), 1);
    assert_eq!(
        (low[0]["id"].as_str(), low[0]["attempt"].as_str()),
        ("J2", "1")
    );
    assert_eq!(len(&mut conn, DEFAULT), 0);

    let s = hash(&mut conn, status);
    assert_eq!(
        (s["state"].as_str(), s["attempt"].as_str()),
        ("queued", "1")
    );
    assert!(!s.contains_key("finished_ms"), "{s:?}");
    let ttl = pttl(&mut conn, status);
    assert!(
        ttl > WEEK_MS as i64,
        "unfinished: keep_result + a week, got {ttl}"
    );
    assert!(
        hash(&mut conn, "streamworker:{g}:job:J2").is_empty(),
        "no status record is created for an untracked job"
    );
}

#[test]
fn run_now_moves_one_delayed_job_into_its_stream() {
    let (_redis, mut conn) = setup();
    let packed = |prio: &str, id: &str| {
        rmp_serde::to_vec(&vec![
            prio, "task", "t", "args", "{}", "id", id, "attempt", "2",
        ])
        .unwrap()
    };
    let _: () = redis::cmd("ZADD")
        .arg(DELAYED)
        .arg(4_000_000_000_000u64)
        .arg("later")
        .arg(4_000_000_000_001u64)
        .arg("other")
        .arg(4_000_000_000_002u64)
        .arg("orphan")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(DELAYED_JOBS)
        .arg("later")
        .arg(packed("3", "later"))
        .arg("other")
        .arg(packed("1", "other"))
        .query(&mut conn)
        .unwrap();
    let status = "streamworker:{g}:job:later";
    let _: () = redis::cmd("HSET")
        .arg(status)
        .arg("state")
        .arg("retry_scheduled")
        .arg("due_ms")
        .arg(4_000_000_000_000u64)
        .query(&mut conn)
        .unwrap();
    let run = |id: &str, conn: &mut Connection| -> Value {
        script("run_now")
            .key(&STREAMS)
            .key(DELAYED)
            .key(DELAYED_JOBS)
            .key(format!("streamworker:{{g}}:job:{id}"))
            .arg(id)
            .invoke(conn)
            .unwrap()
    };
    let Value::BulkString(eid) = run("later", &mut conn) else {
        panic!("an entry id");
    };
    let low = stream_entries(&mut conn, LOW);
    assert_eq!(low.len(), 1);
    assert_eq!(
        (low[0]["id"].as_str(), low[0]["attempt"].as_str()),
        ("later", "2"),
        "same fields, same attempt"
    );
    let entry: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(LOW)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(entry.ids[0].id.as_bytes(), eid.as_slice());
    let s = hash(&mut conn, status);
    assert_eq!(s.get("state").map(String::as_str), Some("queued"));
    assert!(!s.contains_key("due_ms"));

    assert_eq!(run("later", &mut conn), Value::Int(0), "no longer delayed");
    assert_eq!(run("nope", &mut conn), Value::Int(0));
    assert_eq!(
        run("orphan", &mut conn),
        Value::Int(-1),
        "member without payload"
    );
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(DELAYED)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        members,
        vec!["other"],
        "the untouched job and nothing else stays"
    );
    let payloads: Vec<String> = redis::cmd("HKEYS")
        .arg(DELAYED_JOBS)
        .query(&mut conn)
        .unwrap();
    assert_eq!(payloads, vec!["other"]);
    assert_eq!(len(&mut conn, HIGH), 0);
    assert!(
        hash(&mut conn, "streamworker:{g}:job:nope").is_empty(),
        "no status record is created"
    );
}
