//! Contract tests of the Lua scripts in `lua/`: seed a state, run one script, compare the whole
//! after-state. These pin down each atomic move, including the ownership check (fencing). One
//! test binary, a module per family of scripts.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod batch;
mod cancel;
mod dead_retention;
mod enqueue;
mod finish;
mod headers;
mod lease;

use redis::Value;

/// A script's reply as numbers: one code per job (1 done, 0 stale, -1 payload missing).
fn codes(v: Value) -> Vec<i64> {
    redis::from_redis_value(v).unwrap()
}

/// A script's reply as text.
fn texts(v: Value) -> Vec<String> {
    redis::from_redis_value(v).unwrap()
}
