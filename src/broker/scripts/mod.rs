//! The Lua scripts of `lua/`, one per atomic move, and how the broker calls them.
//!
//! `build.rs` assembles each script (its `--#include lib/...` lines replaced by the shared
//! fragments of `lua/lib/`, see `assemble.rs`) into `OUT_DIR/lua/`, and [`Scripts`] embeds the
//! results. Every call goes through a [`ScriptCall`], built from a script with its KEYS and
//! ARGV; the finishing scripts share the record pieces of [`Finishing`].

#[cfg(test)]
mod assemble;
mod call;
mod finishing;
mod lua;
#[cfg(test)]
mod tests;

pub(crate) use call::{CountSlot, ScriptCall};
pub(crate) use finishing::Finishing;
pub(crate) use lua::Lua;

/// The assembled text of `lua/NAME.lua`, as `build.rs` wrote it.
macro_rules! assembled {
    ($name:literal) => {
        Lua::new(include_str!(concat!(
            env!("OUT_DIR"),
            "/lua/",
            $name,
            ".lua"
        )))
    };
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
    /// `lua/progress.lua`
    pub(crate) progress: Lua,
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
    /// The embedded scripts, each hashed once.
    pub(crate) fn new() -> Scripts {
        Scripts {
            enqueue: assembled!("enqueue"),
            finish_ok: assembled!("finish_ok"),
            finish_retry: assembled!("finish_retry"),
            finish_dead: assembled!("finish_dead"),
            promote: assembled!("promote"),
            hand_back: assembled!("hand_back"),
            reap: assembled!("reap"),
            heartbeat: assembled!("heartbeat"),
            progress: assembled!("progress"),
            prune_consumers: assembled!("prune_consumers"),
            dead_retry: assembled!("dead_retry"),
            run_now: assembled!("run_now"),
            finish_cancelled: assembled!("finish_cancelled"),
            cancel: assembled!("cancel"),
        }
    }

    /// Each script with its name, for checks over all of them.
    #[cfg(test)]
    fn all(&self) -> [(&'static str, &Lua); 14] {
        [
            ("enqueue", &self.enqueue),
            ("finish_ok", &self.finish_ok),
            ("finish_retry", &self.finish_retry),
            ("finish_dead", &self.finish_dead),
            ("promote", &self.promote),
            ("hand_back", &self.hand_back),
            ("reap", &self.reap),
            ("heartbeat", &self.heartbeat),
            ("progress", &self.progress),
            ("prune_consumers", &self.prune_consumers),
            ("dead_retry", &self.dead_retry),
            ("run_now", &self.run_now),
            ("finish_cancelled", &self.finish_cancelled),
            ("cancel", &self.cancel),
        ]
    }
}
