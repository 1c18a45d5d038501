//! A dead entry: the job's stream entry as it was (see [`field`](super::field)), moved to the
//! group's dead stream by `lua/finish_dead.lua` with `id` always set and the fields below
//! added. The Lua scripts spell the same strings as literals; change both together.

/// The name of the priority stream the job came from and goes back to on re-drive (`high`,
/// `default`, `low`).
pub(crate) const PRIORITY: &str = "priority";
/// Why the job will not be tried again.
pub(crate) const REASON: &str = "reason";
/// When it died (Redis's clock), in ms since the Unix epoch.
pub(crate) const DEAD_MS: &str = "dead_ms";
/// Present when the job's args (`args` or `args_msgpack`) were too large to keep whole: the
/// size they had, in bytes; the field holds only their first bytes. Such a job is not
/// re-driven.
pub(crate) const ARGS_TRUNCATED_FROM: &str = "args_truncated_from";
