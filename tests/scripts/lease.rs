//! Leases: `heartbeat.lua` renews them, `reap.lua` takes stalled entries over, `hand_back.lua`
//! returns entries at shutdown, `prune_consumers.lua` drops consumers that own nothing.

use crate::codes;
use crate::support::inspect::{pending_count, pending_entry, stream_entries};
use crate::support::keys::{DEFAULT, G, HIGH, LOW, PAUSED, STREAMS};
use crate::support::lua::script;
use crate::support::seed::{age, deliver, hset, set, setup, xadd};
use redis::{Connection, Value};
use std::collections::HashMap;

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
    hset(
        &mut conn,
        status,
        &[("state", "running"), ("consumer", "me")],
    );
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

#[test]
fn reap_takes_over_only_stalled_entries_and_reports_deleted_ones() {
    let (_redis, mut conn) = setup();
    let stalled = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let gone = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let fresh = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "dead-worker", 3);
    age(&mut conn, DEFAULT, G, "dead-worker", &stalled, 60_000);
    age(&mut conn, DEFAULT, G, "dead-worker", &gone, 60_000);
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
    set(&mut conn, PAUSED, "1");
    assert_eq!(
        reap(&mut conn),
        Value::Int(0),
        "a paused group is left alone"
    );
    let (owner, _, _) = pending_entry(&mut conn, DEFAULT, G, &stalled).unwrap();
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

    let (owner, idle, times) = pending_entry(&mut conn, DEFAULT, G, &stalled).unwrap();
    assert_eq!((owner.as_str(), times), ("reaper", 2));
    assert!(idle < 5_000, "claiming resets the idle time: {idle}");
    assert_eq!(pending_entry(&mut conn, DEFAULT, G, &gone), None);
    let (owner, _, times) = pending_entry(&mut conn, DEFAULT, G, &fresh).unwrap();
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
    age(&mut conn, HIGH, G, "me", &mine, 60_000);
    // Another worker's reaper took `taken` over while this one was frozen.
    age(&mut conn, LOW, G, "other", &taken, 60_000);

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
    let (owner, idle, times) = pending_entry(&mut conn, HIGH, G, &mine).unwrap();
    assert_eq!(
        (owner.as_str(), times),
        ("me", 1),
        "renewed without counting a delivery"
    );
    assert!(idle < 5_000, "the lease is renewed: idle {idle}");
    let (owner, idle, _) = pending_entry(&mut conn, LOW, G, &taken).unwrap();
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
