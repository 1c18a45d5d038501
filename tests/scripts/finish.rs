//! The finishing scripts `finish_ok.lua`, `finish_retry.lua` and `finish_dead.lua`: each acts
//! only on the entries its consumer still owns, releases their unique locks and counts the
//! outcomes.

use crate::codes;
use crate::support::inspect::{
    entry_ids, get, hash, pending_count, pttl, redis_now_ms, stream_entries, xlen, zmembers,
};
use crate::support::keys::{
    DEAD, DEAD_RETENTION, DEFAULT, DELAYED, DELAYED_JOBS, G, HIGH, LOCK, LOW, STATS, STREAMS, WAKE,
};
use crate::support::lua::script;
use crate::support::seed::{after, deliver, hset, set, setup, xadd};
use redis::{Connection, Value};
use std::collections::HashMap;

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
        entry_ids(&mut conn, DEFAULT),
        vec![e[0].clone(), e[3].clone(), e[4].clone()]
    );
    // e0 finishes: it goes; the other consumer's entry and the waiting one stay.
    assert_eq!(finish_ok_default(&mut conn, &[&e[0]]), vec![1]);
    assert_eq!(
        entry_ids(&mut conn, DEFAULT),
        vec![e[3].clone(), e[4].clone()]
    );
    assert_eq!(pending_count(&mut conn, DEFAULT, G), 1);
    // A stale finish of the other consumer's entry changes nothing.
    assert_eq!(finish_ok_default(&mut conn, &[&e[3]]), vec![0]);
    assert_eq!(
        entry_ids(&mut conn, DEFAULT),
        vec![e[3].clone(), e[4].clone()]
    );
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
    assert_eq!(xlen(&mut conn, HIGH), 0);
    assert_eq!(
        pending_count(&mut conn, HIGH, G),
        0,
        "the deleted entry was acknowledged too"
    );
    let members = zmembers(&mut conn, DELAYED);
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
        .key(DEAD_RETENTION)
        .key(STATS)
        .arg(G)
        .arg("intruder")
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(3)
        .arg(&eid)
        .arg(&eid)
        .arg("nope")
        .arg(0)
        .arg(1)
        .arg(0)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(stale), vec![0]);
    assert_eq!(xlen(&mut conn, DEAD), 0, "a stale finish writes nothing");
    let reply: Value = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(DEAD_RETENTION)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(3)
        .arg(&eid)
        .arg(&eid)
        .arg("unregistered task")
        .arg(0)
        .arg(1)
        .arg(0)
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
    assert_eq!(xlen(&mut conn, LOW), 0);
    assert_eq!(pending_count(&mut conn, LOW, G), 0);
}

#[test]
fn finishing_scripts_release_the_locks_of_the_jobs_they_finished_only() {
    let (_redis, mut conn) = setup();
    let other_lock = "streamworker:{g}:unique:other";
    let mine = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    let theirs = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "me", 1);
    deliver(&mut conn, DEFAULT, "other", 1);
    set(&mut conn, LOCK, "J1");
    set(&mut conn, other_lock, "J2");
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
    set(&mut conn, LOCK, "newer");
    let eid = xadd(&mut conn, LOW, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, LOW, "me", 1);
    let reply: Value = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(DEAD_RETENTION)
        .key(LOCK)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(3)
        .arg(&eid)
        .arg("J1")
        .arg("failed")
        .arg(0)
        .arg(1)
        .arg(0)
        .arg(1)
        .arg(1)
        .arg(6)
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

/// The current 10 s slot of the stats hash, by Redis's clock.
fn slot(conn: &mut Connection) -> u64 {
    redis_now_ms(conn) / 10_000
}

#[test]
fn finishing_scripts_count_their_outcomes_per_slot_and_drop_old_slots() {
    let (_redis, mut conn) = setup();
    // A slot more than an hour old, and one within the hour: the first count of a new slot
    // drops the first and keeps the second.
    let now = slot(&mut conn);
    hset(
        &mut conn,
        STATS,
        &[
            (&format!("ok:{}", now - 400), "99"),
            (&format!("dead:{}", now - 100), "5"),
        ],
    );
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
        .key(DEAD_RETENTION)
        .key(STATS)
        .arg(G)
        .arg("other")
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(2)
        .arg(&ids[3])
        .arg(&ids[3])
        .arg("nope")
        .arg(0)
        .arg(1)
        .arg(0)
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
