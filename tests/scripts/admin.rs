//! The repair moves of the operations commands: `dead_retry.lua` and `run_now.lua`.

use crate::support::inspect::{hash, hkeys, pttl, stream_entries, xlen, zmembers};
use crate::support::keys::{DEAD, DEFAULT, DELAYED, DELAYED_JOBS, HIGH, LOW, STREAMS};
use crate::support::lua::script;
use crate::support::seed::{delayed, hset, setup, xadd};
use redis::{Connection, Value};

const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;

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
    hset(
        &mut conn,
        status,
        &[("state", "dead"), ("attempt", "4"), ("finished_ms", "5")],
    );
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
    assert_eq!(xlen(&mut conn, DEFAULT), 0);

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
    for (id, due_ms, priority) in [
        ("later", 4_000_000_000_000, "3"),
        ("other", 4_000_000_000_001, "1"),
    ] {
        let payload = [
            priority, "task", "t", "args", "{}", "id", id, "attempt", "2",
        ];
        delayed(&mut conn, id, due_ms, &payload);
    }
    // A member without its payload.
    let _: () = redis::cmd("ZADD")
        .arg(DELAYED)
        .arg(4_000_000_000_002u64)
        .arg("orphan")
        .query(&mut conn)
        .unwrap();
    let status = "streamworker:{g}:job:later";
    hset(
        &mut conn,
        status,
        &[("state", "retry_scheduled"), ("due_ms", "4000000000000")],
    );
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
    let members = zmembers(&mut conn, DELAYED);
    assert_eq!(
        members,
        vec!["other"],
        "the untouched job and nothing else stays"
    );
    let payloads = hkeys(&mut conn, DELAYED_JOBS);
    assert_eq!(payloads, vec!["other"]);
    assert_eq!(xlen(&mut conn, HIGH), 0);
    assert!(
        hash(&mut conn, "streamworker:{g}:job:nope").is_empty(),
        "no status record is created"
    );
}
