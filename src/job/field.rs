//! The fields of a job's stream entry: the one Rust spelling of each name. The Lua scripts in
//! `lua/` spell the same strings as literals; change both together.
//!
//! A producer writes `task`, the arguments (`args` for JSON, `args_msgpack` for MessagePack)
//! and optionally `id`, `max_retries`, `timeout_ms`, `keep_result_ms`, `unique_key`. A bare
//! `XADD streamworker:{emails}:default * task send_email args '{"to":"a@b.c"}'` is a valid
//! job: JSON args, default options, and the entry id as job id. A retry writes the entry again
//! with `attempt` and `last_error`; a dead entry adds the fields of [`dead`](super::dead).
//! Headers are fields of their own, `h.<name>` ([`headers`](super::headers)), after the
//! others. Unknown fields are kept and ignored.

/// The task's name.
pub(crate) const TASK: &str = "task";
/// JSON arguments (redis-cli, the CLI, `Job::from_json`), or MessagePack ones when `ENC`
/// says so (entries written by earlier versions).
pub(crate) const ARGS: &str = "args";
/// MessagePack arguments (`Job::new`): the encoding is in the name, so a plain job needs
/// no field for it.
pub(crate) const ARGS_MSGPACK: &str = "args_msgpack";
/// The job id; absent, the entry id the job was first added as is its id.
pub(crate) const ID: &str = "id";
/// The encoding of `ARGS`; no longer written, read for entries of earlier versions.
pub(crate) const ENC: &str = "enc";
/// The attempt the entry is for (1-based; absent = 1), raised by each retry.
pub(crate) const ATTEMPT: &str = "attempt";
/// The error of the last failed attempt, written by a retry.
pub(crate) const LAST_ERROR: &str = "last_error";
/// The job's own retry limit.
pub(crate) const MAX_RETRIES: &str = "max_retries";
/// The job's own timeout per attempt, in ms.
pub(crate) const TIMEOUT_MS: &str = "timeout_ms";
/// How long the job's status record is kept after it finishes, in ms.
pub(crate) const KEEP_RESULT_MS: &str = "keep_result_ms";
/// The uniqueness lock the job holds, released when it finishes.
pub(crate) const UNIQUE_KEY: &str = "unique_key";
/// The batch the job is a child of: the script finishing it counts it there.
pub(crate) const BATCH: &str = "batch";
/// The job's step number in its chain (a batch whose steps run one after another).
pub(crate) const CHAIN_STEP: &str = "chain_step";
/// The result of the chain step before this one, added by the script that enqueues it.
pub(crate) const PREV_RESULT: &str = "prev_result";
