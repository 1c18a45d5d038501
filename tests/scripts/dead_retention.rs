//! `finish_dead.lua`'s retention of the dead stream (count and age, `lib/dead_retention.lua`)
//! and its cutting of args too large to keep whole.

use crate::codes;
use crate::support::inspect::{entry_ids, hash, redis_now_ms, stream_entries, xlen};
use crate::support::keys::{DEAD, DEAD_RETENTION, DEFAULT, G, STATS, STREAMS};
use crate::support::lua::script;
use crate::support::seed::{deliver, setup, xadd, xadd_id};
use redis::Connection;

/// One job of a `finish_dead` call: its entry id and the bytes of args kept (0 = all).
struct Job<'a> {
    eid: &'a str,
    keep: usize,
}

/// Runs `finish_dead.lua` as consumer `me` for `jobs` (default priority, untracked) with the
/// bounds `max_len` and `max_age_ms`; returns the per-job codes.
fn finish_dead(conn: &mut Connection, max_len: u64, max_age_ms: u64, jobs: &[Job]) -> Vec<i64> {
    let s = script("finish_dead");
    let mut call = s.prepare_invoke();
    call.key(&STREAMS)
        .key(DEAD)
        .key(DEAD_RETENTION)
        .key(STATS)
        .arg(G)
        .arg("me")
        .arg(jobs.len())
        .arg(max_len)
        .arg(max_age_ms);
    for job in jobs {
        call.arg(2)
            .arg(job.eid)
            .arg(job.eid)
            .arg("why")
            .arg(0)
            .arg(1)
            .arg(job.keep);
    }
    codes(call.invoke(conn).unwrap())
}

/// `n` jobs added to the default stream and delivered to `me`.
fn delivered(conn: &mut Connection, n: usize, args: &str) -> Vec<String> {
    let ids = (0..n)
        .map(|_| xadd(conn, DEFAULT, &[("task", "t"), ("args", args)]))
        .collect();
    deliver(conn, DEFAULT, "me", n);
    ids
}

#[test]
fn the_dead_stream_keeps_exactly_the_newest_max_len_entries() {
    let (_redis, mut conn) = setup();
    let ids = delivered(&mut conn, 5, "{}");
    let jobs: Vec<Job> = ids.iter().map(|eid| Job { eid, keep: 0 }).collect();
    assert_eq!(finish_dead(&mut conn, 3, 0, &jobs), vec![1; 5]);
    let kept: Vec<String> = stream_entries(&mut conn, DEAD)
        .into_iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(kept, ids[2..], "the oldest two went, the newest three stay");
    assert_eq!(
        hash(&mut conn, DEAD_RETENTION),
        [("max_len", "3"), ("max_age_ms", "0")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into()
    );
}

#[test]
fn entries_older_than_max_age_go_on_the_next_add_and_zero_keeps_everything() {
    let (_redis, mut conn) = setup();
    let now = redis_now_ms(&mut conn);
    let day = 86_400_000;
    let old = xadd_id(
        &mut conn,
        DEAD,
        &format!("{}-0", now - 200 * day),
        &[("task", "t"), ("reason", "old")],
    );
    let recent = xadd_id(
        &mut conn,
        DEAD,
        &format!("{}-0", now - 100 * day),
        &[("task", "t"), ("reason", "recent")],
    );
    // Both bounds off: nothing is trimmed.
    let ids = delivered(&mut conn, 1, "{}");
    finish_dead(
        &mut conn,
        0,
        0,
        &[Job {
            eid: &ids[0],
            keep: 0,
        }],
    );
    assert_eq!(xlen(&mut conn, DEAD), 3);
    // 180 days: the 200-day-old entry goes, the 100-day-old one stays.
    let ids = delivered(&mut conn, 1, "{}");
    finish_dead(
        &mut conn,
        0,
        180 * day,
        &[Job {
            eid: &ids[0],
            keep: 0,
        }],
    );
    let left = entry_ids(&mut conn, DEAD);
    assert!(!left.contains(&old), "{left:?}");
    assert!(left.contains(&recent), "{left:?}");
    assert_eq!(left.len(), 3);
    assert_eq!(
        hash(&mut conn, DEAD_RETENTION)["max_age_ms"],
        (180 * day).to_string()
    );
}

#[test]
fn a_stale_call_adds_nothing_and_trims_nothing() {
    let (_redis, mut conn) = setup();
    for _ in 0..3 {
        xadd(&mut conn, DEAD, &[("task", "t")]);
    }
    let eid = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args", "{}")]);
    deliver(&mut conn, DEFAULT, "someone-else", 1);
    assert_eq!(
        finish_dead(&mut conn, 1, 0, &[Job { eid: &eid, keep: 0 }]),
        vec![0]
    );
    assert_eq!(xlen(&mut conn, DEAD), 3);
    assert!(hash(&mut conn, DEAD_RETENTION).is_empty());
}

#[test]
fn args_over_the_kept_size_are_cut_and_their_size_noted() {
    let (_redis, mut conn) = setup();
    let big = "x".repeat(5000);
    let small = "{\"a\":1}";
    let ids = [
        delivered(&mut conn, 1, &big),
        delivered(&mut conn, 1, small),
    ]
    .concat();
    finish_dead(
        &mut conn,
        0,
        0,
        &[
            Job {
                eid: &ids[0],
                keep: 1024,
            },
            Job {
                eid: &ids[1],
                keep: 1024,
            },
        ],
    );
    let dead = stream_entries(&mut conn, DEAD);
    assert_eq!(dead[0]["args"], big[..1024]);
    assert_eq!(dead[0]["args_truncated_from"], "5000");
    assert_eq!(dead[0]["task"], "t", "the other fields are kept");
    assert_eq!(dead[1]["args"], small, "args within the size stay whole");
    assert!(!dead[1].contains_key("args_truncated_from"));
    // `args_msgpack` is cut the same way.
    let packed = xadd(&mut conn, DEFAULT, &[("task", "t"), ("args_msgpack", &big)]);
    deliver(&mut conn, DEFAULT, "me", 1);
    finish_dead(
        &mut conn,
        0,
        0,
        &[Job {
            eid: &packed,
            keep: 10,
        }],
    );
    let dead = stream_entries(&mut conn, DEAD);
    assert_eq!(dead[2]["args_msgpack"], big[..10]);
    assert_eq!(dead[2]["args_truncated_from"], "5000");
}
