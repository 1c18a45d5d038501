//! The Lua scripts of `lua/`, one per atomic move, embedded at build time.
//!
//! Plain calls go through [`redis::Script::invoke_async`], which sends EVALSHA and, on
//! NOSCRIPT (a restarted or failed-over Redis), loads the script and retries once. Calls
//! inside a pipeline or transaction use [`Scripts::eval`], which sends the body with EVAL:
//! a NOSCRIPT error inside a pipeline could not be retried on its own.

use deadpool_redis::redis::{self, Script};

/// One embedded script: its source and its hashed [`Script`].
#[derive(Debug)]
pub(crate) struct Lua {
    source: &'static str,
    script: Script,
}

impl Lua {
    fn new(source: &'static str) -> Lua {
        Lua {
            source,
            script: Script::new(source),
        }
    }

    /// The script, for `invoke_async` (EVALSHA with NOSCRIPT fallback).
    pub(crate) fn script(&self) -> &Script {
        &self.script
    }

    /// An EVAL command carrying the body, for pipelines and transactions.
    pub(crate) fn eval<K, A>(&self, keys: &[K], args: A) -> redis::Cmd
    where
        K: redis::ToRedisArgs,
        A: redis::ToRedisArgs,
    {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(self.source).arg(keys.len()).arg(keys).arg(args);
        cmd
    }
}

/// Every script of `lua/`.
#[derive(Debug)]
pub(crate) struct Scripts {
    /// `lua/enqueue.lua`
    pub(crate) enqueue: Lua,
    /// `lua/finish_ok.lua`
    pub(crate) finish_ok: Lua,
    /// `lua/finish_retry.lua`
    pub(crate) finish_retry: Lua,
    /// `lua/finish_dead.lua`
    pub(crate) finish_dead: Lua,
    /// `lua/promote.lua`
    pub(crate) promote: Lua,
    /// `lua/hand_back.lua`
    pub(crate) hand_back: Lua,
    /// `lua/reap.lua`
    pub(crate) reap: Lua,
    /// `lua/heartbeat.lua`
    pub(crate) heartbeat: Lua,
    /// `lua/prune_consumers.lua`
    pub(crate) prune_consumers: Lua,
    /// `lua/dead_retry.lua`
    pub(crate) dead_retry: Lua,
    /// `lua/run_now.lua`
    pub(crate) run_now: Lua,
    /// `lua/finish_cancelled.lua`
    pub(crate) finish_cancelled: Lua,
    /// `lua/cancel.lua`
    pub(crate) cancel: Lua,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            enqueue: Lua::new(include_str!("../lua/enqueue.lua")),
            finish_ok: Lua::new(include_str!("../lua/finish_ok.lua")),
            finish_retry: Lua::new(include_str!("../lua/finish_retry.lua")),
            finish_dead: Lua::new(include_str!("../lua/finish_dead.lua")),
            promote: Lua::new(include_str!("../lua/promote.lua")),
            hand_back: Lua::new(include_str!("../lua/hand_back.lua")),
            reap: Lua::new(include_str!("../lua/reap.lua")),
            heartbeat: Lua::new(include_str!("../lua/heartbeat.lua")),
            prune_consumers: Lua::new(include_str!("../lua/prune_consumers.lua")),
            dead_retry: Lua::new(include_str!("../lua/dead_retry.lua")),
            run_now: Lua::new(include_str!("../lua/run_now.lua")),
            finish_cancelled: Lua::new(include_str!("../lua/finish_cancelled.lua")),
            cancel: Lua::new(include_str!("../lua/cancel.lua")),
        }
    }
}
