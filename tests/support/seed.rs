//! Seeding a state by hand, as another program or a crashed worker would leave it: entries
//! added, delivered, abandoned, delayed jobs with their payloads, and group `g` of the Lua
//! contract tests.

use super::keys::{DELAYED, DELAYED_JOBS, G, STREAMS};
use super::server::RedisServer;
use redis::{Connection, ConnectionLike};

/// A fresh Redis with consumer group `g` on the three priority streams.
pub fn setup() -> (RedisServer, Connection) {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    for s in STREAMS {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(s)
            .arg(G)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut conn)
            .unwrap();
    }
    (redis, conn)
}

/// XADD of `fields` to `stream` under a new id; returns the entry id.
pub fn xadd(conn: &mut impl ConnectionLike, stream: &str, fields: &[(&str, &str)]) -> String {
    xadd_id(conn, stream, "*", fields)
}

/// XADD of `fields` to `stream` under entry id `id` (`*` for a new one).
pub fn xadd_id(
    conn: &mut impl ConnectionLike,
    stream: &str,
    id: &str,
    fields: &[(&str, &str)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg(id);
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    cmd.query(conn).unwrap()
}

/// Delivers up to `count` entries of `stream` to `consumer` of group `g`.
pub fn deliver(conn: &mut impl ConnectionLike, stream: &str, consumer: &str, count: usize) {
    deliver_to(conn, stream, G, consumer, count);
}

/// Delivers up to `count` entries of `stream` to `consumer` of `group`; returns their ids.
pub fn deliver_to(
    conn: &mut impl ConnectionLike,
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
) -> Vec<String> {
    let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query(conn)
        .unwrap();
    reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|e| e.id)
        .collect()
}

/// Makes entry `id`, pending in `group`, owned by `consumer` and idle for `ms` (XCLAIM: the
/// delivery count stays as it was).
pub fn age(
    conn: &mut impl ConnectionLike,
    stream: &str,
    group: &str,
    consumer: &str,
    id: &str,
    ms: u64,
) {
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(0)
        .arg(id)
        .arg("IDLE")
        .arg(ms)
        .arg("JUSTID")
        .query(conn)
        .unwrap();
}

/// Delivers one entry of `stream` to `consumer` in `group` and makes it look idle for
/// `idle_ms`: a worker that took a job and died. Returns the entry id.
pub fn abandon_one(
    conn: &mut impl ConnectionLike,
    stream: &str,
    group: &str,
    consumer: &str,
    idle_ms: u64,
) -> String {
    let entry = deliver_to(conn, stream, group, consumer, 1)
        .pop()
        .expect("an entry to deliver");
    age(conn, stream, group, consumer, &entry, idle_ms);
    entry
}

/// Delays job `id` of group `g` until `due_ms` with `payload`, in the format enqueue.lua
/// writes: a msgpack array `[priority index, field, value, field, value, ...]`.
pub fn delayed(conn: &mut impl ConnectionLike, id: &str, due_ms: u64, payload: &[&str]) {
    let _: () = redis::cmd("ZADD")
        .arg(DELAYED)
        .arg(due_ms)
        .arg(id)
        .query(conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(DELAYED_JOBS)
        .arg(id)
        .arg(rmp_serde::to_vec(payload).unwrap())
        .query(conn)
        .unwrap();
}

/// The stream id right after `id` (same milliseconds, sequence + 1), as finish_ok takes it.
pub fn after(id: &str) -> String {
    let (ms, seq) = id.split_once('-').expect("a stream id");
    format!("{ms}-{}", seq.parse::<u64>().expect("a sequence") + 1)
}

/// HSET of `fields` in hash `key`.
pub fn hset(conn: &mut impl ConnectionLike, key: &str, fields: &[(&str, &str)]) {
    let _: () = redis::cmd("HSET").arg(key).arg(fields).query(conn).unwrap();
}

/// SET of string `key` to `value`.
pub fn set(conn: &mut impl ConnectionLike, key: &str, value: &str) {
    let _: () = redis::cmd("SET").arg(key).arg(value).query(conn).unwrap();
}
