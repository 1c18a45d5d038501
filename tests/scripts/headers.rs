//! Headers (`h.<name>` fields) go wherever the job goes: every script that writes an entry
//! again copies its fields without naming them. One entry is moved through each of them in
//! turn: retry (to delayed), run-now and promote (back to a stream), hand-back, dead, and
//! re-drive from dead.

use crate::codes;
use crate::support::inspect::stream_entries;
use crate::support::keys::{
    DEAD, DEAD_RETENTION, DEFAULT, DELAYED, DELAYED_JOBS, G, STATS, STREAMS, WAKE,
};
use crate::support::lua::script;
use crate::support::seed::{deliver, setup, xadd};
use redis::{Connection, Value};
use std::collections::HashMap;

/// The header fields of an entry.
fn headers(entry: &HashMap<String, String>) -> Vec<(&str, &str)> {
    let mut h: Vec<_> = entry
        .iter()
        .filter(|(k, _)| k.starts_with("h."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    h.sort();
    h
}

const HEADERS: [(&str, &str); 2] = [("h.locale", "de-CH"), ("h.origin", "https://a.example/app")];

/// The only entry of the default stream, delivered to `me`; its entry id.
fn the_entry_delivered(conn: &mut Connection) -> String {
    let entries: Vec<String> = crate::support::inspect::entry_ids(conn, DEFAULT);
    assert_eq!(entries.len(), 1, "one entry in the default stream");
    deliver(conn, DEFAULT, "me", 1);
    entries[0].clone()
}

fn finish_retry(conn: &mut Connection, eid: &str) {
    let retry = script("finish_retry");
    let mut inv = retry.prepare_invoke();
    for k in [
        STREAMS[0],
        STREAMS[1],
        STREAMS[2],
        DELAYED,
        DELAYED_JOBS,
        STATS,
    ] {
        inv.key(k);
    }
    inv.arg(G).arg("me").arg(WAKE).arg(1);
    inv.arg(2)
        .arg(eid)
        .arg("J")
        .arg(2)
        .arg(0)
        .arg("boom")
        .arg(0)
        .arg(1);
    let reply: Value = inv.invoke(conn).unwrap();
    assert_eq!(codes(reply), vec![1]);
}

fn delayed_fields(conn: &mut Connection) -> HashMap<String, String> {
    let packed: Vec<u8> = redis::cmd("HGET")
        .arg(DELAYED_JOBS)
        .arg("J")
        .query(conn)
        .unwrap();
    let items: Vec<String> = rmp_serde::from_slice(&packed).unwrap();
    items[1..]
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

#[test]
fn headers_survive_every_move_of_a_job() {
    let (_redis, mut conn) = setup();
    xadd(
        &mut conn,
        DEFAULT,
        &[("task", "t"), ("args", "{}"), HEADERS[1], HEADERS[0]],
    );

    // Retry → delayed, then run-now back to the stream.
    let eid = the_entry_delivered(&mut conn);
    finish_retry(&mut conn, &eid);
    assert_eq!(headers(&delayed_fields(&mut conn)), HEADERS, "retry");
    let moved: Value = script("run_now")
        .key(&STREAMS)
        .key(DELAYED)
        .key(DELAYED_JOBS)
        .key("streamworker:{g}:job:J")
        .arg("J")
        .invoke(&mut conn)
        .unwrap();
    assert!(matches!(moved, Value::BulkString(_)), "{moved:?}");
    assert_eq!(
        headers(&stream_entries(&mut conn, DEFAULT)[0]),
        HEADERS,
        "run now"
    );

    // Retry again, then the promoter (backoff 0: due at once).
    let eid = the_entry_delivered(&mut conn);
    finish_retry(&mut conn, &eid);
    let promoted: Vec<i64> = script("promote")
        .key(&STREAMS)
        .key(DELAYED)
        .key(DELAYED_JOBS)
        .arg(10)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(promoted[0], 1);
    assert_eq!(
        headers(&stream_entries(&mut conn, DEFAULT)[0]),
        HEADERS,
        "promote"
    );

    // Hand-back at the end of a stop's grace period.
    let eid = the_entry_delivered(&mut conn);
    let back: Value = script("hand_back")
        .key(&STREAMS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(2)
        .arg(&eid)
        .arg("J")
        .arg(0)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(back), vec![1]);
    assert_eq!(
        headers(&stream_entries(&mut conn, DEFAULT)[0]),
        HEADERS,
        "hand back"
    );

    // Dead, then re-driven from dead.
    let eid = the_entry_delivered(&mut conn);
    let dead: Value = script("finish_dead")
        .key(&STREAMS)
        .key(DEAD)
        .key(DEAD_RETENTION)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(2)
        .arg(&eid)
        .arg("J")
        .arg("failed")
        .arg(0)
        .arg(1)
        .arg(0)
        .invoke(&mut conn)
        .unwrap();
    assert_eq!(codes(dead), vec![1]);
    let dead_entries = stream_entries(&mut conn, DEAD);
    assert_eq!(headers(&dead_entries[0]), HEADERS, "dead");
    let dead_id = crate::support::inspect::entry_ids(&mut conn, DEAD)[0].clone();
    let redriven: Vec<Value> = script("dead_retry")
        .key(&STREAMS)
        .key(DEAD)
        .arg(60_000)
        .arg(1)
        .arg(&dead_id)
        .arg(0)
        .invoke(&mut conn)
        .unwrap();
    assert!(matches!(redriven[0], Value::BulkString(_)), "{redriven:?}");
    let entry = &stream_entries(&mut conn, DEFAULT)[0];
    assert_eq!(headers(entry), HEADERS, "re-driven from dead");
    assert_eq!(
        (entry["id"].as_str(), entry["attempt"].as_str()),
        ("J", "1")
    );
}
