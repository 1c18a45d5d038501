//! The library's error type: every variant a caller can act on, each message saying what to do.

use std::time::Duration;

/// What can go wrong when enqueueing, inspecting or running jobs.
///
/// Failures of a job's own handler are not errors of this kind: they are outcomes (retry or
/// dead) recorded in Redis. This type covers what the caller or the operator can fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A group, task or job id that cannot be used in a Redis key.
    #[error(
        "invalid {kind} name {name:?}: use 1 to {max} characters from letters, digits, '-', '_' and '.'"
    )]
    InvalidName {
        /// `group`, `task` or `job id`.
        kind: &'static str,
        /// The rejected name, as given.
        name: String,
        /// The longest name accepted.
        max: usize,
    },

    /// Redis could not be reached or refused the connection.
    #[error(
        "cannot connect to Redis at {url}: {source} ({})",
        connect_hint(source)
    )]
    Connect {
        /// The URL tried, with any password replaced by `***`.
        url: String,
        /// The underlying error.
        #[source]
        source: redis::RedisError,
    },

    /// A Redis command failed; `op` names what streamworker was doing.
    #[error("redis error during {op}: {source}")]
    Redis {
        /// The operation, such as `enqueue` or `finish_ok`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: redis::RedisError,
    },

    /// The consumer group of `group` is gone from one of its streams: Redis lost its data (a
    /// restart without persistence, a flush, a fail-over) or someone deleted the stream. A
    /// running worker recreates its consumer groups when it meets this.
    #[error(
        "consumer group {group} is missing from Redis (Redis lost its data, or its streams were deleted); a running worker recreates it"
    )]
    MissingGroup {
        /// The group (also the consumer group's name).
        group: String,
    },

    /// The Redis server would lose jobs silently (it evicts keys) or is too old; the message
    /// says how to fix it.
    #[error("{0}")]
    UnsafeRedis(String),

    /// A PostgreSQL call of the outbox failed (the `postgres` feature); `op` names what
    /// streamworker was doing.
    #[error("database error during {op}: {message}{}", database_hint(message))]
    Database {
        /// The operation, such as `outbox enqueue` or `outbox relay`.
        op: &'static str,
        /// The database's error.
        message: String,
    },

    /// No connection could be taken from the pool.
    #[error("no Redis connection available: {0}")]
    Pool(String),

    /// Job arguments could not be serialized.
    #[error(
        "job arguments do not serialize: {0} (arguments must be serde values: structs, maps, numbers, strings)"
    )]
    Serialize(String),

    /// Arguments given as JSON text do not parse.
    #[error("job arguments are not valid JSON: {0}")]
    InvalidJson(String),

    /// The encoded arguments exceed the payload limit.
    #[error(
        "job arguments are {size} bytes, over the limit of {limit} bytes: store large data elsewhere and pass a reference"
    )]
    PayloadTooLarge {
        /// Size of the encoded arguments.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// A worker or client setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Two handlers were registered under one task name.
    #[error(
        "task {task:?} is registered twice: first to {first}, then to {second}; give each handler its own name"
    )]
    DuplicateTask {
        /// The task name.
        task: String,
        /// The first handler's type name.
        first: String,
        /// The second handler's type name.
        second: String,
    },

    /// `wait_for_result` gave up before the job finished.
    #[error("job {id} did not finish within {}", humantime::format_duration(*.waited))]
    WaitTimeout {
        /// The job id.
        id: String,
        /// How long the call waited.
        waited: Duration,
    },

    /// The job has no status record: it never asked to keep its result, or the record expired.
    #[error(
        "job {id} in group {group} has no status record: enqueue it with keep_result to track it, or it expired"
    )]
    NotTracked {
        /// The group.
        group: String,
        /// The job id.
        id: String,
    },

    /// No key of the group exists in Redis: a typo, or the wrong Redis.
    #[error("unknown group {group:?}: {known}")]
    UnknownGroup {
        /// The group asked for.
        group: String,
        /// The groups that do exist, or a hint when there are none.
        known: String,
    },

    /// A listing over every master of a Redis Cluster could not ask one of them, so it would
    /// be incomplete; nothing partial is returned.
    #[error(
        "cannot list every group: the cluster's master {node} did not answer ({source}), so the groups it holds would be missing; wait for the cluster to recover or fail over, or name the group (--group)"
    )]
    IncompleteListing {
        /// The master's address, `host:port`.
        node: String,
        /// Why it did not answer.
        source: redis::RedisError,
    },

    /// Something a single Redis can do and a Redis Cluster cannot; refused before anything was
    /// sent.
    #[error("{what} cannot run on a Redis Cluster: {instead}")]
    NotOnCluster {
        /// What was asked.
        what: String,
        /// Why not, and what to do instead.
        instead: String,
    },

    /// A job id found in none of the places searched.
    #[error("job {id} not found in group {group}: {searched}")]
    UnknownJob {
        /// The group.
        group: String,
        /// The job id (or entry id) asked for.
        id: String,
        /// Where it was looked for, and what that means.
        searched: String,
    },

    /// A job could not be cancelled: it already ended, is nowhere to be found, or no worker
    /// listens for the request.
    #[error("cannot cancel job {id}: {reason}")]
    CannotCancel {
        /// The job id.
        id: String,
        /// Why, and what to do.
        reason: String,
    },

    /// A dead job that cannot be sent back to its stream: its args were cut when it died.
    #[error("cannot retry dead job {id} of group {group}: {reason}")]
    CannotRetry {
        /// The group.
        group: String,
        /// The job id (or dead entry id) asked for.
        id: String,
        /// Why, and what to do.
        reason: String,
    },

    /// A batch that cannot be enqueued as built, or added to: the message says why and what
    /// to do.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),

    /// Redis replied with something streamworker did not expect.
    #[error("unexpected reply from Redis during {op}: {detail}")]
    Protocol {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to check after a failed connection, by the kind of failure.
fn connect_hint(source: &redis::RedisError) -> &'static str {
    let text = source.to_string();
    let code = source.code().unwrap_or_default();
    if code == "NOAUTH" || text.contains("NOAUTH") {
        "this Redis needs a password and the URL has none: use redis://:PASSWORD@HOST:PORT, or redis://USER:PASSWORD@HOST:PORT for an ACL user"
    } else if source.kind() == redis::ErrorKind::AuthenticationFailed
        || ["WRONGPASS", "NOPERM"].contains(&code)
        || text.contains("WRONGPASS")
    {
        "check the user name and password in the URL, redis://USER:PASSWORD@HOST:PORT, and that user's ACL rules"
    } else if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
        "the TLS handshake failed: check the server certificate and the CA certificates trusted here (SSL_CERT_FILE)"
    } else {
        "is redis-server running there? set --redis or REDIS_URL"
    }
}

impl Error {
    /// Wraps a Redis error with the operation it interrupted.
    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
        move |source| Error::Redis { op, source }
    }
}

/// What to do about a database error, where streamworker knows.
fn database_hint(message: &str) -> &'static str {
    if message.contains("streamworker_outbox") && message.contains("does not exist") {
        " (the outbox table is missing: run `streamworker outbox init --database-url URL`, or call streamworker::outbox::init)"
    } else {
        ""
    }
}
