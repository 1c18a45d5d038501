//! `cancel.lua` (remove a waiting job, signal a running one) and `finish_cancelled.lua`
//! (record the end of a cancelled running job).

use crate::codes;
use crate::support::inspect::{get, hash, pending_count, stream_entries, xlen, zcard};
use crate::support::keys::{
    CANCEL, DEAD, DEFAULT, DELAYED, DELAYED_JOBS, G, HIGH, LOCK, LOW, STREAMS,
};
use crate::support::lua::script;
use crate::support::seed::{delayed, deliver, hset, set, setup, xadd};
use redis::{Connection, Value};

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
    hset(
        &mut conn,
        status,
        &[("state", "running"), ("consumer", "me")],
    );
    set(&mut conn, LOCK, "J");
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
    assert_eq!(xlen(&mut conn, HIGH), 1, "only the owned entry is deleted");
    assert_eq!(pending_count(&mut conn, HIGH, G), 1);
    let st = hash(&mut conn, status);
    assert_eq!(st["state"], "cancelled");
    assert!(!st.contains_key("consumer"));
    assert_eq!(get(&mut conn, LOCK), None);
    assert_eq!(xlen(&mut conn, DEAD), 0, "a cancelled job is not dead");
}

#[test]
fn cancel_removes_waiting_jobs_signals_running_ones_and_asks_for_locks() {
    let (redis, mut conn) = setup();
    let mut sub_conn = redis.conn();
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.subscribe(CANCEL).unwrap();
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
                .arg(CANCEL)
                .arg(cursor.0)
                .arg(cursor.1)
                .arg(limit)
                .arg(lock);
            let v: Value = inv.invoke(conn).unwrap();
            redis::from_redis_value::<Vec<String>>(v).unwrap()
        };

    // Delayed and unique: the first call asks for the lock and changes nothing.
    set(&mut conn, LOCK, "D");
    let payload = ["2", "task", "t", "args", "{}", "id", "D", "unique_key", "k"];
    delayed(&mut conn, "D", 4_000_000_000_000, &payload);
    assert_eq!(cancel(&mut conn, "D", (1, "-"), 10, ""), ["need_lock", "k"]);
    assert_eq!(zcard(&mut conn, DELAYED), 1);
    assert_eq!(
        cancel(&mut conn, "D", (1, "-"), 10, "k"),
        ["removed", "delayed"]
    );
    assert_eq!(zcard(&mut conn, DELAYED), 0);
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
    assert_eq!(xlen(&mut conn, DEFAULT), 3, "the others stay");

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
    assert_eq!(xlen(&mut conn, HIGH), 1, "{r} stays for its worker to stop");

    // A tracked job that ended, and a job that is nowhere.
    hset(
        &mut conn,
        "streamworker:{g}:job:S",
        &[("state", "succeeded")],
    );
    assert_eq!(
        cancel(&mut conn, "S", (1, "-"), 10, ""),
        ["finished", "succeeded"]
    );
    assert_eq!(
        cancel(&mut conn, "nope", (1, "-"), 10, ""),
        ["not_found", ""]
    );
}
