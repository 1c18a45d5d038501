//! [`ScriptCall`]: the one way the broker calls a script, with typed replies.

use super::Lua;
use crate::error::{Error, Result};
use crate::keys::Keys;
use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{self, ErrorKind, FromRedisValue, ServerErrorKind, ToRedisArgs};

/// One call of a script under construction: its KEYS and ARGV in order. Sent on its own with
/// [`ScriptCall::invoke`] (EVALSHA; on NOSCRIPT, from a restarted or failed-over Redis, the
/// script is loaded and the call sent once more), or inside a pipeline or transaction as the
/// EVAL of [`ScriptCall::eval`], which carries the body: a NOSCRIPT error inside a pipeline
/// could not be retried on its own.
pub(crate) struct ScriptCall<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

/// An ARGV position reserved for a count known only once later values are written; filled
/// with [`ScriptCall::fill_count`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountSlot(usize);

impl<'a> ScriptCall<'a> {
    /// A call of `lua` with no KEYS or ARGV yet.
    pub(super) fn new(lua: &'a Lua) -> ScriptCall<'a> {
        ScriptCall {
            lua,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Appends a key (a slice appends each of its items).
    pub(crate) fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    /// Appends each key of `keys`.
    pub(crate) fn keys<K: ToRedisArgs>(&mut self, keys: impl IntoIterator<Item = K>) -> &mut Self {
        for key in keys {
            key.write_redis_args(&mut self.keys);
        }
        self
    }

    /// Appends one key and returns its 1-based index in KEYS, as the scripts' ARGV name it.
    pub(crate) fn key_index(&mut self, key: impl ToRedisArgs) -> usize {
        key.write_redis_args(&mut self.keys);
        self.keys.len()
    }

    /// Appends job `job_id`'s status hash to KEYS when `tracked`, and returns its 1-based
    /// index there, or 0 for an untracked job: how every script's ARGV names it.
    pub(crate) fn status_index(&mut self, keys: &Keys, job_id: &str, tracked: bool) -> usize {
        if tracked {
            self.key_index(keys.job(job_id))
        } else {
            0
        }
    }

    /// Appends an argument (a slice appends each of its items; bytes are one argument).
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    /// Reserves the next argument for a count, written later with [`ScriptCall::fill_count`].
    pub(crate) fn count_slot(&mut self) -> CountSlot {
        self.args.push(Vec::new());
        CountSlot(self.args.len() - 1)
    }

    /// Writes `count` into `slot`.
    pub(crate) fn fill_count(&mut self, slot: CountSlot, count: usize) {
        self.args[slot.0] = count.to_string().into_bytes();
    }

    /// Runs the script on `conn` (EVALSHA, loading the script on NOSCRIPT) and reads its
    /// reply as `T`; errors carry `op`.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
        op: &'static str,
    ) -> Result<T> {
        let cmd = self.command("EVALSHA", self.lua.script().get_hash().as_bytes());
        let reply = match cmd.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.lua
                    .script()
                    .load_async(conn)
                    .await
                    .map_err(Error::redis(op))?;
                cmd.query_async(conn).await
            }
            reply => reply,
        };
        reply.map_err(Error::redis(op))
    }

    /// The call as an EVAL command carrying the body, for pipelines and transactions.
    pub(crate) fn eval(&self) -> redis::Cmd {
        self.command("EVAL", self.lua.source().as_bytes())
    }

    /// `NAME script numkeys key... arg...`, in one buffer sized up front.
    fn command(&self, name: &str, script: &[u8]) -> redis::Cmd {
        let data: usize = self.keys.iter().chain(&self.args).map(Vec::len).sum();
        let mut cmd = redis::Cmd::with_capacity(
            3 + self.keys.len() + self.args.len(),
            name.len() + script.len() + 20 + data,
        );
        cmd.arg(name)
            .arg(script)
            .arg(self.keys.len())
            .arg(&self.keys[..])
            .arg(&self.args[..]);
        cmd
    }

    /// KEYS as written so far.
    #[cfg(test)]
    pub(crate) fn written_keys(&self) -> &[Vec<u8>] {
        &self.keys
    }

    /// ARGV as written so far.
    #[cfg(test)]
    pub(crate) fn written_args(&self) -> &[Vec<u8>] {
        &self.args
    }
}
