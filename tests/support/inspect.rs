//! Reading what Redis holds, for assertions: entries of a stream, pending lists, hashes, TTLs;
//! on any connection, a single server's or a Redis Cluster's.

use redis::ConnectionLike;
use std::collections::HashMap;

/// Fields of every entry of a stream, oldest first, as UTF-8 maps.
pub fn stream_entries(conn: &mut impl ConnectionLike, key: &str) -> Vec<HashMap<String, String>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|id| {
            id.map
                .into_iter()
                .map(|(k, v)| (k, redis::from_redis_value::<String>(v).unwrap_or_default()))
                .collect()
        })
        .collect()
}

/// The ticks (from the job ids `{schedule}.{tick}`) of the jobs in `stream`, in stream order.
pub fn ticks_in(conn: &mut impl ConnectionLike, stream: &str, schedule: &str) -> Vec<u64> {
    stream_entries(conn, stream)
        .into_iter()
        .filter_map(|e| {
            e.get("id")?
                .strip_prefix(&format!("{schedule}."))?
                .parse()
                .ok()
        })
        .collect()
}

/// The entry ids of a stream, oldest first.
pub fn entry_ids(conn: &mut impl ConnectionLike, stream: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    reply.ids.into_iter().map(|e| e.id).collect()
}

/// Number of entries pending (delivered, not acknowledged) in `group` on `stream`.
pub fn pending_count(conn: &mut impl ConnectionLike, stream: &str, group: &str) -> usize {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(conn)
        .unwrap();
    match reply {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n as usize,
            _ => 0,
        },
        _ => 0,
    }
}

/// `(owner, idle ms, times delivered)` of entry `id` in the pending list of `group` on `stream`.
pub fn pending_entry(
    conn: &mut impl ConnectionLike,
    stream: &str,
    group: &str,
    id: &str,
) -> Option<(String, i64, i64)> {
    let rows: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg(id)
        .arg(id)
        .arg(1)
        .query(conn)
        .unwrap();
    rows.into_iter().next().map(|(_, c, idle, n)| (c, idle, n))
}

/// XLEN of a stream.
pub fn xlen(conn: &mut impl ConnectionLike, key: &str) -> usize {
    redis::cmd("XLEN").arg(key).query(conn).unwrap()
}

/// ZCARD of a sorted set.
pub fn zcard(conn: &mut impl ConnectionLike, key: &str) -> usize {
    redis::cmd("ZCARD").arg(key).query(conn).unwrap()
}

/// The members of a sorted set, lowest score first.
pub fn zmembers(conn: &mut impl ConnectionLike, key: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(conn)
        .unwrap()
}

/// The field names of a hash.
pub fn hkeys(conn: &mut impl ConnectionLike, key: &str) -> Vec<String> {
    redis::cmd("HKEYS").arg(key).query(conn).unwrap()
}

/// Every field of a hash (empty when there is no such key).
pub fn hash(conn: &mut impl ConnectionLike, key: &str) -> HashMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(conn).unwrap()
}

/// GET of a string key.
pub fn get(conn: &mut impl ConnectionLike, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(conn).unwrap()
}

/// PTTL of a key: ms left, -1 without a TTL, -2 when there is no such key.
pub fn pttl(conn: &mut impl ConnectionLike, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

pub fn exists(conn: &mut impl ConnectionLike, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(conn).unwrap() == 1
}

/// The keys matching `pattern` (KEYS: fine on a test's own small Redis; a cluster connection asks
/// every master), sorted.
pub fn keys(conn: &mut impl ConnectionLike, pattern: &str) -> Vec<String> {
    let mut found: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn).unwrap();
    found.sort();
    found
}

/// Redis's clock, in ms since the epoch.
pub fn redis_now_ms(conn: &mut impl ConnectionLike) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(conn).unwrap();
    s * 1000 + us / 1000
}
