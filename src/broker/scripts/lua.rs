//! One embedded script: its assembled source and its SHA1, the name EVALSHA calls it by.

use super::ScriptCall;
use deadpool_redis::redis::Script;

/// One script of `lua/`, as assembled by `build.rs`.
#[derive(Debug)]
pub(crate) struct Lua {
    source: &'static str,
    script: Script,
}

impl Lua {
    /// The script with this assembled source.
    pub(super) fn new(source: &'static str) -> Lua {
        Lua {
            source,
            script: Script::new(source),
        }
    }

    /// A call of this script, with no KEYS or ARGV yet.
    pub(crate) fn call(&self) -> ScriptCall<'_> {
        ScriptCall::new(self)
    }

    /// The body, as EVAL and SCRIPT LOAD send it.
    pub(super) fn source(&self) -> &'static str {
        self.source
    }

    /// The hashed script: its SHA1 for EVALSHA, and SCRIPT LOAD.
    pub(super) fn script(&self) -> &Script {
        &self.script
    }
}
