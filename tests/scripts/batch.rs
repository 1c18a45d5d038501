//! A batch's counting in the finishing scripts (`lua/lib/batch.lua`): a child is counted only
//! by a script that finished it (the fencing check passed), once, and the last one adds the
//! callback once.

use crate::codes;
use crate::support::inspect::{entry_ids, stream_entries};
use crate::support::keys::{DEAD, DEAD_RETENTION, DEFAULT, G, STATS, STREAMS};
use crate::support::lua::script;
use crate::support::seed::{after, deliver, setup, xadd};
use redis::Connection;
use std::collections::HashMap;

const BATCH: &str = "streamworker:{g}:batch:b";
const PENDING: &str = "streamworker:{g}:batch:b:pending";
const FAILED: &str = "streamworker:{g}:batch:b:failed";

/// A running batch `b` of children `c1` and `c2` holding an `on_complete` callback.
fn seed_batch(conn: &mut Connection) {
    redis::cmd("EVAL")
        .arg(
            "redis.call('HSET', KEYS[1], 'state', 'running', 'batch_id', 'b', 'total', 2, \
             'succeeded', 0, 'failed', 0, 'policy', 'fail', 'ttl_ms', 60000, 'cb_on_complete', \
             cmsgpack.pack({'2', 'task', 'cb', 'args', '{}', 'id', 'CB'})) \
             redis.call('SADD', KEYS[2], 'c1', 'c2')",
        )
        .arg(2)
        .arg(BATCH)
        .arg(PENDING)
        .query::<()>(conn)
        .unwrap();
}

/// finish_ok of child `job` in entry `eid` (default stream) for `consumer`.
fn finish_ok(conn: &mut Connection, consumer: &str, eid: &str, job: &str) -> Vec<i64> {
    let reply = script("finish_ok")
        .key(&STREAMS)
        .key(BATCH)
        .key(PENDING)
        .key(FAILED)
        .key(STATS)
        .arg(G)
        .arg(consumer)
        .arg(1)
        .arg(2)
        .arg(1)
        .arg(eid)
        .arg(eid)
        .arg(after(eid))
        .arg(eid)
        .arg(0) // nothing tracked
        .arg(0) // no lock
        .arg(1) // one child: job 1, batch keys 4..6
        .arg(1)
        .arg(4)
        .arg(5)
        .arg(6)
        .arg(job)
        .arg("")
        .invoke(conn)
        .unwrap();
    codes(reply)
}

/// The batch's text fields (the held callbacks are MessagePack, left out).
fn batch_fields(conn: &mut Connection) -> HashMap<String, String> {
    let names = [
        "state",
        "total",
        "succeeded",
        "failed",
        "outcome",
        "fired_on_complete",
    ];
    let values: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(BATCH)
        .arg(&names)
        .query(conn)
        .unwrap();
    names
        .iter()
        .zip(values)
        .filter_map(|(n, v)| Some((n.to_string(), v?)))
        .collect()
}

#[test]
fn a_child_counts_once_only_when_finished_by_its_owner_and_the_last_adds_the_callback() {
    let (_redis, mut conn) = setup();
    seed_batch(&mut conn);
    let e1 = xadd(
        &mut conn,
        DEFAULT,
        &[("task", "t"), ("args", "{}"), ("id", "c1"), ("batch", "b")],
    );
    let e2 = xadd(
        &mut conn,
        DEFAULT,
        &[("task", "t"), ("args", "{}"), ("id", "c2"), ("batch", "b")],
    );
    deliver(&mut conn, DEFAULT, "me", 1);
    deliver(&mut conn, DEFAULT, "other", 1);

    // "me" sends both to dead: only its own entry is moved and counted.
    let reply = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(DEAD_RETENTION)
        .key(BATCH)
        .key(PENDING)
        .key(FAILED)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(2)
        .arg(0)
        .arg(0)
        .arg(2)
        .arg(&e1)
        .arg("c1")
        .arg("boom")
        .arg(0)
        .arg(1)
        .arg(0)
        .arg(2)
        .arg(&e2)
        .arg("c2")
        .arg("boom")
        .arg(0)
        .arg(1)
        .arg(0)
        .arg(0) // no lock
        .arg(2)
        .arg(1)
        .arg(6)
        .arg(7)
        .arg(8)
        .arg("c1")
        .arg("")
        .arg(2)
        .arg(6)
        .arg(7)
        .arg(8)
        .arg("c2")
        .arg("")
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(reply), vec![1, 0]);
    let batch = batch_fields(&mut conn);
    assert_eq!(
        (batch["failed"].as_str(), batch["state"].as_str()),
        ("1", "running")
    );
    let pending: Vec<String> = redis::cmd("SMEMBERS")
        .arg(PENDING)
        .query(&mut conn)
        .unwrap();
    assert_eq!(pending, ["c2"], "the stale child is not counted");

    // Its owner finishes c2: the batch completes and adds the callback, once.
    assert_eq!(finish_ok(&mut conn, "other", &e2, "c2"), vec![1]);
    let batch = batch_fields(&mut conn);
    assert_eq!(batch["state"], "done");
    assert_eq!(batch["outcome"], "failed");
    assert_eq!(batch["succeeded"], "1");
    let added = stream_entries(&mut conn, DEFAULT);
    assert_eq!(added.len(), 1, "only the callback is left in the stream");
    let fields = &added[0];
    assert_eq!(fields["task"], "cb");
    assert_eq!(fields["h.batch_id"], "b");
    assert_eq!(fields["h.batch_failed"], "c1");
    assert_eq!(batch["fired_on_complete"], entry_ids(&mut conn, DEFAULT)[0]);
    let ttl: i64 = redis::cmd("PTTL").arg(BATCH).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");

    // A later finish of the same child (a re-drive) counts nothing and adds nothing.
    let e3 = xadd(
        &mut conn,
        DEFAULT,
        &[("task", "t"), ("args", "{}"), ("id", "c2"), ("batch", "b")],
    );
    deliver(&mut conn, DEFAULT, "other", 2);
    assert_eq!(finish_ok(&mut conn, "other", &e3, "c2"), vec![1]);
    assert_eq!(batch_fields(&mut conn)["succeeded"], "1");
    assert_eq!(
        stream_entries(&mut conn, DEFAULT).len(),
        1,
        "no second callback"
    );
}
