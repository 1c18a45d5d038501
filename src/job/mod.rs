//! Jobs as streamworker stores them in Redis, one file per concern:
//!
//! - this file: the producer-side [`Job`] builder, its options and their defaults;
//! - [`id`]: [`JobId`]; [`payload`]: [`Encoding`], [`Payload`] and where an entry keeps its
//!   arguments; [`unique`]: the derived key of a unique job;
//! - [`field`]: the field names of a job's stream entry; [`wire`]: a [`Job`] as those fields;
//!   [`envelope`]: an entry decoded back, on the worker side;
//! - [`state`]: [`JobState`] and its names; [`status`]: the status record of a tracked job
//!   ([`JobStatus`]); [`dead`]: the fields a dead entry adds; [`delayed`]: a delayed job's
//!   stored payload.
//!
//! Every field name and state name is spelled once here in Rust; the Lua scripts in `lua/`
//! spell the same strings as literals.

pub(crate) mod dead;
pub(crate) mod delayed;
mod envelope;
pub(crate) mod field;
pub(crate) mod headers;
mod id;
mod payload;
pub(crate) mod progress;
pub(crate) mod state;
pub(crate) mod status;
mod unique;
mod wire;

pub use headers::{MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_BYTES, MAX_HEADERS};
pub use id::JobId;
pub use payload::{Encoding, Payload};
pub use progress::{MAX_PROGRESS_MESSAGE_BYTES, Progress};
pub use state::JobState;
pub use status::JobStatus;

pub(crate) use envelope::Envelope;
pub(crate) use payload::stored_args;

use crate::error::{Error, Result};
use crate::keys::{GroupName, validate_name};
use crate::priority::Priority;
use crate::time::system_time_ms_ceil;
use serde::Serialize;
use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// Retries a job gets when it names none: 4 attempts in all.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// How long one attempt may run when the job names no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest encoded arguments accepted by default (512 KiB); see [`Error::PayloadTooLarge`].
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// One job to enqueue: group, task, arguments and options, with its id already allocated.
///
/// ```
/// use std::time::Duration;
/// use streamworker::{Job, Priority};
///
/// #[derive(serde::Serialize)]
/// struct Email { to: String }
///
/// let job = Job::new("emails", "send_email", &Email { to: "a@b.c".into() })?
///     .priority(Priority::High)
///     .delay(Duration::from_secs(30))
///     .max_retries(5)
///     .keep_result(Duration::from_secs(3600));
/// println!("will be {}", job.id()); // known before it is submitted
/// # Ok::<(), streamworker::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Job {
    /// The group it is enqueued into.
    pub(crate) group: GroupName,
    /// The task's name (validated).
    pub(crate) task: String,
    /// Its id, allocated when the job is built.
    pub(crate) id: JobId,
    /// Its encoded arguments.
    pub(crate) payload: Payload,
    /// The priority stream it goes to.
    pub(crate) priority: Priority,
    /// When it is due; `None` = now.
    pub(crate) due: Option<SystemTime>,
    /// Its own retry limit, if set.
    pub(crate) max_retries: Option<u32>,
    /// Its own timeout per attempt, if set.
    pub(crate) timeout: Option<Duration>,
    /// How long its status record is kept after it finishes; `None` = not tracked.
    pub(crate) keep_result: Option<Duration>,
    /// Uniqueness lock: its key (explicit, or derived from task and args by `unique_for`).
    pub(crate) unique_key: Option<String>,
    /// How long the uniqueness lock lives at most.
    pub(crate) unique_ttl: Option<Duration>,
    /// The schedule tick this job is for, when a scheduler enqueues it.
    pub(crate) tick: Option<Tick>,
    /// How long an enqueue-once mark for its id lives; `None` = not enqueued once.
    pub(crate) once_ttl: Option<Duration>,
    /// Its headers (see [`headers`]); empty for most jobs.
    pub(crate) headers: headers::Headers,
    /// The batch it is a child of, set by [`Batch`](crate::Batch) (validated).
    pub(crate) batch: Option<String>,
    /// Its step number in its chain, set by [`Chain`](crate::Chain).
    pub(crate) chain_step: Option<u32>,
}

/// A schedule's tick that a job is enqueued for: taken at most once, in the enqueue script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tick {
    /// The schedule's name (validated).
    pub(crate) schedule: String,
    /// The tick's time in ms since the Unix epoch.
    pub(crate) at_ms: u64,
    /// false: a missed tick that is only recorded as handled; the job is not added.
    pub(crate) run: bool,
}

impl Job {
    /// A job calling `task` in `group` with `args`, encoded as MessagePack.
    pub fn new<A: Serialize + ?Sized>(group: &str, task: &str, args: &A) -> Result<Job> {
        let bytes = rmp_serde::to_vec_named(args).map_err(|e| Error::Serialize(e.to_string()))?;
        Job::with_payload(group, task, Encoding::Msgpack, bytes)
    }

    /// A job whose arguments are JSON text, stored as given (what the CLI enqueues).
    pub fn from_json(group: &str, task: &str, json: &str) -> Result<Job> {
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| Error::InvalidJson(e.to_string()))?;
        Job::with_payload(group, task, Encoding::Json, json.as_bytes().to_vec())
    }

    /// A job with default options and a new id, after checking the task's name.
    pub(crate) fn with_payload(
        group: &str,
        task: &str,
        encoding: Encoding,
        bytes: Vec<u8>,
    ) -> Result<Job> {
        validate_name("task", task)?;
        Ok(Job {
            group: group_name(group)?,
            task: task.to_string(),
            id: JobId::generate(),
            payload: Payload::new(encoding, bytes),
            priority: Priority::Default,
            due: None,
            max_retries: None,
            timeout: None,
            keep_result: None,
            unique_key: None,
            unique_ttl: None,
            tick: None,
            once_ttl: None,
            headers: headers::Headers::default(),
            batch: None,
            chain_step: None,
        })
    }

    /// The id the job will have in Redis.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The group the job is for.
    pub fn group(&self) -> &GroupName {
        &self.group
    }

    /// Sets the priority (default: [`Priority::Default`]).
    pub fn priority(mut self, priority: Priority) -> Job {
        self.priority = priority;
        self
    }

    /// Runs the job no earlier than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Job {
        self.due = Some(SystemTime::now() + delay);
        self
    }

    /// Runs the job no earlier than `at`.
    pub fn at(mut self, at: SystemTime) -> Job {
        self.due = Some(at);
        self
    }

    /// How many times a failed attempt is retried (default: the task's own limit, see
    /// [`TaskOptions`](crate::TaskOptions), else [`DEFAULT_MAX_RETRIES`]).
    pub fn max_retries(mut self, retries: u32) -> Job {
        self.max_retries = Some(retries);
        self
    }

    /// How long one attempt may run before it is cancelled and counted as failed
    /// (default [`DEFAULT_TIMEOUT`]; zero is refused at enqueue).
    pub fn timeout(mut self, timeout: Duration) -> Job {
        self.timeout = Some(timeout);
        self
    }

    /// Keeps the job's status and result for `ttl` after it finishes, so
    /// [`Client::status`](crate::Client::status) and
    /// [`Client::wait_for_result`](crate::Client::wait_for_result) can read them.
    pub fn keep_result(mut self, ttl: Duration) -> Job {
        self.keep_result = Some(ttl);
        self
    }

    /// Makes the job unique for at most `ttl`: while a job with the same task and arguments
    /// (in this group) is waiting, scheduled, running or retrying, enqueueing this one adds
    /// nothing and returns the id of the job already there. The lock is taken atomically with
    /// the enqueue and released when that job succeeds, goes to the dead stream or is
    /// cancelled, or after `ttl` (the bound if its worker died).
    ///
    /// The key is a digest of the task name and the arguments as canonical JSON, so a Rust
    /// producer and `streamworker enqueue --unique-for` lock the same call; set your own with
    /// [`Job::unique_key`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamworker::Job;
    ///
    /// let job = Job::new("reports", "build_report", &serde_json::json!({"user": 7}))?
    ///     .unique_for(Duration::from_secs(3600));
    /// # Ok::<(), streamworker::Error>(())
    /// ```
    pub fn unique_for(mut self, ttl: Duration) -> Job {
        self.unique_ttl = Some(ttl);
        if self.unique_key.is_none() {
            self.unique_key = Some(unique::derived_key(&self.task, &self.payload));
        }
        self
    }

    /// Uses `key` (1–64 characters of `[A-Za-z0-9_.-]`, checked at enqueue) as the
    /// uniqueness key instead of the digest of task and arguments, e.g. `welcome-user-42`.
    /// Needs [`Job::unique_for`] too, which sets the lock's longest life.
    pub fn unique_key(mut self, key: impl Into<String>) -> Job {
        self.unique_key = Some(key.into());
        self
    }

    /// Makes the enqueue idempotent by job id for `ttl`: an enqueue of this same job (a clone
    /// sent again after a timeout, or by a relay that died before it could record the send)
    /// within `ttl` of the first stores nothing and reports the job's own id. Costs one small
    /// key per job in Redis for `ttl` (about 100 bytes). The outbox relay sets it on every job.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamworker::Job;
    ///
    /// let job = Job::new("emails", "send_email", &serde_json::json!({"to": "a@b.c"}))?
    ///     .enqueue_once(Duration::from_secs(600));
    /// # Ok::<(), streamworker::Error>(())
    /// ```
    pub fn enqueue_once(mut self, ttl: Duration) -> Job {
        self.once_ttl = Some(ttl);
        self
    }

    /// Due time in ms since the Unix epoch, rounded up (never before the time asked for); 0 =
    /// now.
    pub(crate) fn due_ms(&self) -> u64 {
        self.due.map(system_time_ms_ceil).unwrap_or(0)
    }

    /// Checks what the builder cannot: a unique key that is a valid name and has its TTL, a
    /// timeout above zero, headers within their limits ([`headers::check`]), and arguments of
    /// at most `max_payload_bytes`. Run before a job is
    /// sent, so a bad job fails where it is enqueued.
    pub(crate) fn check(&self, max_payload_bytes: usize) -> Result<()> {
        if let Some(key) = &self.unique_key {
            validate_name("unique key", key)?;
            match self.unique_ttl {
                None => {
                    return Err(Error::Config(format!(
                        "job {}: unique_key needs unique_for(ttl) too, which bounds how long the lock lives",
                        self.id
                    )));
                }
                Some(ttl) if ttl.is_zero() => {
                    return Err(Error::Config(format!(
                        "job {}: unique_for must be more than 0",
                        self.id
                    )));
                }
                Some(_) => {}
            }
        }
        if self.once_ttl.is_some_and(|t| t.as_millis() == 0) {
            return Err(Error::Config(format!(
                "job {}: enqueue_once needs a TTL of at least 1 ms",
                self.id
            )));
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Config(format!(
                "job {}: timeout must be more than 0",
                self.id
            )));
        }
        headers::check(self)?;
        let size = self.payload.bytes().len();
        if size > max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                size,
                limit: max_payload_bytes,
            });
        }
        Ok(())
    }
}

/// `name` as a [`GroupName`]: the one this thread validated last when it is the same, so that
/// building many jobs of one group validates and allocates its name once.
fn group_name(name: &str) -> Result<GroupName> {
    thread_local! {
        static LAST: RefCell<Option<GroupName>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(group) if group.as_str() == name => Ok(group.clone()),
            _ => Ok(last.insert(GroupName::new(name)?).clone()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_of_one_group_share_its_validated_name() {
        let a = Job::from_json("g1", "t", "{}").unwrap();
        let b = Job::from_json("g1", "t", "{}").unwrap();
        assert_eq!(a.group.as_str(), "g1");
        assert_eq!(a.group, b.group);
        assert!(matches!(
            Job::from_json("bad group", "t", "{}"),
            Err(Error::InvalidName { .. })
        ));
        // A refused name leaves the last good one in place.
        assert_eq!(
            Job::from_json("g1", "t", "{}").unwrap().group.as_str(),
            "g1"
        );
        assert_eq!(
            Job::from_json("g2", "t", "{}").unwrap().group.as_str(),
            "g2"
        );
    }

    #[test]
    fn args_that_do_not_serialize_say_so() {
        struct Unserializable;
        impl Serialize for Unserializable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("a socket is not data"))
            }
        }
        let err = Job::new("g", "t", &Unserializable).unwrap_err();
        assert!(matches!(err, Error::Serialize(_)));
        assert!(err.to_string().contains("a socket is not data"), "{err}");
    }

    #[test]
    fn json_args_must_parse() {
        assert!(matches!(
            Job::from_json("g", "t", "{nope"),
            Err(Error::InvalidJson(_))
        ));
        assert!(Job::from_json("g", "t", r#"{"a":1}"#).is_ok());
        assert!(matches!(
            Job::from_json("g", "bad task", "{}"),
            Err(Error::InvalidName { .. })
        ));
    }
}
