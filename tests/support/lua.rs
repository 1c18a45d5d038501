//! What the Lua contract tests share: the keys of group `g`, the scripts read from `lua/`, and
//! a Redis with the group's consumer groups created.

use super::RedisServer;
use redis::{Connection, Script, Value};

pub const G: &str = "g";
pub const HIGH: &str = "streamworker:{g}:high";
pub const DEFAULT: &str = "streamworker:{g}:default";
pub const LOW: &str = "streamworker:{g}:low";
pub const DELAYED: &str = "streamworker:{g}:delayed";
pub const DELAYED_JOBS: &str = "streamworker:{g}:delayed:jobs";
pub const DEAD: &str = "streamworker:{g}:dead";
pub const WAKE: &str = "streamworker:{g}:wake";
pub const PAUSED: &str = "streamworker:{g}:paused";
pub const STATS: &str = "streamworker:{g}:stats";
pub const STREAMS: [&str; 3] = [HIGH, DEFAULT, LOW];

/// `lua/NAME.lua`, read from the source tree and assembled as the crate embeds it.
pub fn script(name: &str) -> Script {
    #[path = "../../src/broker/scripts/assemble.rs"]
    mod assemble;
    let lua = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
    Script::new(&assemble::assemble_dir(&lua, &format!("{name}.lua")).unwrap())
}

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

pub fn xadd(conn: &mut Connection, stream: &str, fields: &[(&str, &str)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    cmd.query(conn).unwrap()
}

/// Delivers up to `count` entries of `stream` to `consumer`.
pub fn deliver(conn: &mut Connection, stream: &str, consumer: &str, count: usize) {
    let _: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(G)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query(conn)
        .unwrap();
}

/// XLEN of `stream`.
pub fn len(conn: &mut Connection, stream: &str) -> usize {
    redis::cmd("XLEN").arg(stream).query(conn).unwrap()
}

/// The stream id right after `id` (same milliseconds, sequence + 1), as finish_ok takes it.
pub fn after(id: &str) -> String {
    let (ms, seq) = id.split_once('-').expect("a stream id");
    format!("{ms}-{}", seq.parse::<u64>().expect("a sequence") + 1)
}
