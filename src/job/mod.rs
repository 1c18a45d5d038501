//! Jobs on the wire: the producer-side [`Job`] value and the worker-side decoding of a stream
//! entry into an [`Envelope`].
//!
//! A stream entry's fields are `task`, the arguments (`args` for JSON, `args_msgpack` for
//! MessagePack) and optionally `id`, `attempt`, `max_retries`, `timeout_ms`, `keep_result_ms`,
//! `unique_key`. A bare
//! `XADD streamworker:{emails}:default * task send_email args '{"to":"a@b.c"}'` is a valid job:
//! JSON args, default options, and the entry id as job id. Unknown fields are kept and ignored.
//! Entries written by earlier versions (`args` with `enc` = `msgpack`) still decode.

mod unique;

use crate::error::{Error, Result};
use crate::keys::{GroupName, validate_name};
use crate::priority::Priority;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Stream field names, one place for all of them.
pub(crate) mod field {
    pub(crate) const TASK: &str = "task";
    /// JSON arguments (redis-cli, the CLI, `Job::from_json`), or MessagePack ones when `ENC`
    /// says so (entries written by earlier versions).
    pub(crate) const ARGS: &str = "args";
    /// MessagePack arguments (`Job::new`): the encoding is in the name, so a plain job needs
    /// no field for it.
    pub(crate) const ARGS_MSGPACK: &str = "args_msgpack";
    pub(crate) const ID: &str = "id";
    /// The encoding of `ARGS`; no longer written, read for entries of earlier versions.
    pub(crate) const ENC: &str = "enc";
    pub(crate) const ATTEMPT: &str = "attempt";
    pub(crate) const MAX_RETRIES: &str = "max_retries";
    pub(crate) const TIMEOUT_MS: &str = "timeout_ms";
    pub(crate) const KEEP_RESULT_MS: &str = "keep_result_ms";
    pub(crate) const UNIQUE_KEY: &str = "unique_key";
}

/// Retries a job gets when it names none: 4 attempts in all.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// How long one attempt may run when the job names no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest encoded arguments accepted by default (512 KiB); see [`Error::PayloadTooLarge`].
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// A job's id: a ULID allocated by the producer before submission, or, for a job typed into
/// redis-cli without an `id` field, its first stream entry id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// A new, unique, time-ordered id.
    pub fn generate() -> JobId {
        JobId(ulid::Ulid::generate().to_string())
    }

    /// Validates an id given as text (letters, digits, `-`, `_`, `.`).
    pub fn parse(id: impl Into<String>) -> Result<JobId> {
        let id = id.into();
        validate_name("job id", &id)?;
        Ok(JobId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id built by streamworker itself from validated parts (a schedule's tick).
    pub(crate) fn from_parts(id: String) -> JobId {
        debug_assert!(validate_name("job id", &id).is_ok(), "{id}");
        JobId(id)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a job's arguments are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON text, in the field `args`: what redis-cli and the CLI write.
    Json,
    /// MessagePack with named fields, in the field `args_msgpack`: what Rust producers write.
    Msgpack,
}

impl Encoding {
    fn parse(value: &[u8]) -> Option<Encoding> {
        match value {
            b"json" => Some(Encoding::Json),
            b"msgpack" => Some(Encoding::Msgpack),
            _ => None,
        }
    }
}

/// Finds a stream entry's arguments and their encoding; `get` looks a field up by name.
///
/// - `args_msgpack`: MessagePack (what `Job::new` writes);
/// - `args`: JSON (redis-cli, the CLI, `Job::from_json`), or MessagePack when the entry also has
///   `enc` = `msgpack` (what earlier versions of `Job::new` wrote).
///
/// Both fields, neither, an unknown `enc`, or an `enc` other than `msgpack` beside
/// `args_msgpack` is refused with the reason.
pub(crate) fn stored_args<'a>(
    get: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<(Encoding, &'a [u8]), String> {
    let enc = match get(field::ENC) {
        None => None,
        Some(raw) => Some(Encoding::parse(raw).ok_or_else(|| {
            format!(
                "unknown enc {:?}: drop enc and put the args in args (json) or args_msgpack \
                 (msgpack)",
                String::from_utf8_lossy(raw)
            )
        })?),
    };
    match (get(field::ARGS), get(field::ARGS_MSGPACK)) {
        (Some(_), Some(_)) => Err(
            "both args and args_msgpack: keep one (args for JSON, args_msgpack for MessagePack)"
                .into(),
        ),
        (None, None) => Err("missing field args (JSON) or args_msgpack (MessagePack)".into()),
        (Some(args), None) => Ok((enc.unwrap_or(Encoding::Json), args)),
        (None, Some(args)) => match enc {
            None | Some(Encoding::Msgpack) => Ok((Encoding::Msgpack, args)),
            Some(Encoding::Json) => {
                Err("enc json contradicts args_msgpack: put JSON args in args".into())
            }
        },
    }
}

/// A job's encoded arguments, as a handler receives them.
#[derive(Debug, Clone)]
pub struct Payload {
    encoding: Encoding,
    bytes: Vec<u8>,
}

impl Payload {
    /// The encoding of [`Payload::bytes`].
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes the arguments into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        match self.encoding {
            Encoding::Json => serde_json::from_slice(&self.bytes).map_err(|e| e.to_string()),
            Encoding::Msgpack => rmp_serde::from_slice(&self.bytes).map_err(|e| e.to_string()),
        }
    }

    /// The arguments as JSON text, whatever their encoding.
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        match self.encoding {
            Encoding::Json => {
                serde_json::from_slice::<serde::de::IgnoredAny>(&self.bytes)
                    .map_err(|e| e.to_string())?;
                Ok(self.bytes.clone())
            }
            Encoding::Msgpack => {
                let value: serde_json::Value = self.decode()?;
                serde_json::to_vec(&value).map_err(|e| e.to_string())
            }
        }
    }
}

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
    pub(crate) group: GroupName,
    pub(crate) task: String,
    pub(crate) id: JobId,
    pub(crate) payload: Payload,
    pub(crate) priority: Priority,
    pub(crate) due: Option<SystemTime>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) keep_result: Option<Duration>,
    /// Uniqueness lock: its key (explicit, or derived from task and args by `unique_for`).
    pub(crate) unique_key: Option<String>,
    /// How long the uniqueness lock lives at most.
    pub(crate) unique_ttl: Option<Duration>,
    /// The schedule tick this job is for, when a scheduler enqueues it.
    pub(crate) tick: Option<Tick>,
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

    fn with_payload(group: &str, task: &str, encoding: Encoding, bytes: Vec<u8>) -> Result<Job> {
        validate_name("task", task)?;
        Ok(Job {
            group: GroupName::new(group)?,
            task: task.to_string(),
            id: JobId::generate(),
            payload: Payload { encoding, bytes },
            priority: Priority::Default,
            due: None,
            max_retries: None,
            timeout: None,
            keep_result: None,
            unique_key: None,
            unique_ttl: None,
            tick: None,
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

    /// Due time in ms since the Unix epoch; 0 = now.
    pub(crate) fn due_ms(&self) -> u64 {
        self.due.map(system_time_ms).unwrap_or(0)
    }

    /// The stream fields, in a fixed order so entries of plain jobs share their field names
    /// (which a stream stores once per node): `task`, `args_msgpack` or `args`, `id`, then the
    /// options that were set. The encoding is in the args field's name, not a field of its own.
    /// Values borrow from the job where they can, so a bulk enqueue copies each payload once,
    /// into the command.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Cow<'_, [u8]>)> {
        let args = match self.payload.encoding {
            Encoding::Msgpack => field::ARGS_MSGPACK,
            Encoding::Json => field::ARGS,
        };
        let mut fields = vec![
            (field::TASK, Cow::Borrowed(self.task.as_bytes())),
            (args, Cow::Borrowed(self.payload.bytes.as_slice())),
            (field::ID, Cow::Borrowed(self.id.as_str().as_bytes())),
        ];
        let number = |n: u64| Cow::Owned(n.to_string().into_bytes());
        if let Some(n) = self.max_retries {
            fields.push((field::MAX_RETRIES, number(n.into())));
        }
        if let Some(t) = self.timeout {
            fields.push((field::TIMEOUT_MS, number(duration_ms(t))));
        }
        if let Some(t) = self.keep_result {
            fields.push((field::KEEP_RESULT_MS, number(duration_ms(t))));
        }
        if let (Some(key), Some(_)) = (&self.unique_key, self.unique_ttl) {
            fields.push((field::UNIQUE_KEY, Cow::Borrowed(key.as_bytes())));
        }
        fields
    }
}

/// A job as a worker read it from a stream.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) id: JobId,
    pub(crate) task: String,
    pub(crate) payload: Payload,
    pub(crate) attempt: u32,
    /// The job's own retry limit; `None` lets the task's or the worker's default apply.
    pub(crate) max_retries: Option<u32>,
    /// The job's own timeout; `None` lets the task's or the worker's default apply.
    pub(crate) timeout: Option<Duration>,
    pub(crate) keep_result: Option<Duration>,
    /// The uniqueness lock the job holds, released when it finishes.
    pub(crate) unique_key: Option<String>,
}

/// Why an entry could not become an [`Envelope`]; the job goes to the dead stream with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecodable {
    /// The job id, or the entry id when the entry carries none usable.
    pub(crate) id: String,
    /// Whether the entry asked to keep its result, so its status is recorded too.
    pub(crate) keep_result: Option<Duration>,
    pub(crate) reason: String,
}

impl Envelope {
    /// Decodes an entry's fields. `fields` is `None` when the entry was deleted while pending.
    pub(crate) fn decode(
        entry_id: &str,
        fields: Option<&[(Vec<u8>, Vec<u8>)]>,
        max_payload: usize,
    ) -> Result<Envelope, Undecodable> {
        let fail = |id: String, keep_result, reason: String| Undecodable {
            id,
            keep_result,
            reason,
        };
        let Some(fields) = fields else {
            return Err(fail(
                entry_id.to_string(),
                None,
                "payload missing: the entry was deleted while pending".into(),
            ));
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        let id = match get(field::ID) {
            None => entry_id.to_string(),
            Some(raw) => match std::str::from_utf8(raw)
                .ok()
                .filter(|s| validate_name("job id", s).is_ok())
            {
                Some(id) => id.to_string(),
                None => {
                    return Err(fail(
                        entry_id.to_string(),
                        None,
                        "invalid field id: use letters, digits, '-', '_', '.'".into(),
                    ));
                }
            },
        };
        let keep_result = match number(get(field::KEEP_RESULT_MS), field::KEEP_RESULT_MS) {
            Ok(ms) => ms.map(Duration::from_millis),
            Err(reason) => return Err(fail(id, None, reason)),
        };
        let fail = |reason: String| Undecodable {
            id: id.clone(),
            keep_result,
            reason,
        };
        let task = match get(field::TASK).map(std::str::from_utf8) {
            None => return Err(fail("missing field task".into())),
            Some(Ok(t)) if validate_name("task", t).is_ok() => t.to_string(),
            Some(_) => {
                return Err(fail(
                    "invalid field task: use letters, digits, '-', '_', '.'".into(),
                ));
            }
        };
        let (encoding, args) = stored_args(get).map_err(&fail)?;
        if args.len() > max_payload {
            return Err(fail(format!(
                "too large: args are {} bytes, over the limit of {max_payload}",
                args.len()
            )));
        }
        let attempt = number(get(field::ATTEMPT), field::ATTEMPT).map_err(&fail)?;
        let max_retries = number(get(field::MAX_RETRIES), field::MAX_RETRIES).map_err(&fail)?;
        let timeout_ms = number(get(field::TIMEOUT_MS), field::TIMEOUT_MS).map_err(&fail)?;
        if timeout_ms == Some(0) {
            return Err(fail("invalid field timeout_ms: must be more than 0".into()));
        }
        Ok(Envelope {
            id: JobId(id.clone()),
            task,
            payload: Payload {
                encoding,
                bytes: args.to_vec(),
            },
            attempt: attempt.map_or(1, |a| a.clamp(1, u32::MAX as u64) as u32),
            max_retries: max_retries.map(|n| n.min(u32::MAX as u64) as u32),
            timeout: timeout_ms.map(Duration::from_millis),
            keep_result,
            // A key that cannot be part of a Redis key is ignored: the lock, if any, expires.
            unique_key: get(field::UNIQUE_KEY)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .filter(|k| validate_name("unique key", k).is_ok())
                .map(str::to_string),
        })
    }
}

fn number(raw: Option<&[u8]>, name: &str) -> Result<Option<u64>, String> {
    raw.map(|v| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "invalid field {name}: {:?} is not a whole number",
                    String::from_utf8_lossy(v)
                )
            })
    })
    .transpose()
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

pub(crate) fn system_time_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(duration_ms).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn a_bare_redis_cli_entry_is_a_job_with_defaults() {
        let fields = f(&[("task", b"send_email"), ("args", br#"{"to":"a@b.c"}"#)]);
        let env = Envelope::decode("1-0", Some(&fields), 1024).unwrap();
        assert_eq!(env.id.as_str(), "1-0");
        assert_eq!(env.task, "send_email");
        assert_eq!(env.attempt, 1);
        assert_eq!(env.max_retries, None);
        assert_eq!(env.timeout, None);
        assert_eq!(env.payload.to_json().unwrap(), br#"{"to":"a@b.c"}"#);
    }

    #[test]
    fn a_rust_job_round_trips_through_its_fields() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct A {
            to: String,
        }
        let job = Job::new("g", "t", &A { to: "x".into() })
            .unwrap()
            .max_retries(7)
            .timeout(Duration::from_secs(2))
            .keep_result(Duration::from_secs(60));
        let fields: Vec<_> = job
            .fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_owned()))
            .collect();
        let env = Envelope::decode("9-9", Some(&fields), 1024).unwrap();
        assert_eq!(&env.id, job.id());
        assert_eq!(env.payload.decode::<A>().unwrap(), A { to: "x".into() });
        assert_eq!(env.payload.to_json().unwrap(), br#"{"to":"x"}"#);
        assert_eq!(env.max_retries, Some(7));
        assert_eq!(env.timeout, Some(Duration::from_secs(2)));
        assert_eq!(env.keep_result, Some(Duration::from_secs(60)));
        assert_eq!(env.unique_key, None);
    }

    #[test]
    fn a_unique_job_carries_its_key_to_the_worker() {
        let job = Job::from_json("g", "t", "{}")
            .unwrap()
            .unique_key("welcome-42")
            .unique_for(Duration::from_secs(60));
        let fields: Vec<_> = job
            .fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_owned()))
            .collect();
        let env = Envelope::decode("9-9", Some(&fields), 1024).unwrap();
        assert_eq!(env.unique_key.as_deref(), Some("welcome-42"));
        // Without a TTL there is no lock, so no key goes on the wire.
        let keyless = Job::from_json("g", "t", "{}").unwrap().unique_key("k");
        assert!(
            keyless
                .fields()
                .iter()
                .all(|(k, _)| *k != field::UNIQUE_KEY)
        );
    }

    fn names(job: &Job) -> Vec<&'static str> {
        job.fields().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn the_encoding_is_in_the_args_field_name() {
        let plain = Job::new("g", "t", &serde_json::json!({"to": "x"})).unwrap();
        assert_eq!(names(&plain), ["task", "args_msgpack", "id"]);
        let json = Job::from_json("g", "t", r#"{"to":"x"}"#).unwrap();
        assert_eq!(names(&json), ["task", "args", "id"]);
        let with_options = plain.max_retries(1).timeout(Duration::from_secs(1));
        assert_eq!(
            names(&with_options),
            ["task", "args_msgpack", "id", "max_retries", "timeout_ms"]
        );
    }

    #[test]
    fn the_three_stored_forms_of_args_decode() {
        let packed = rmp_serde::to_vec_named(&serde_json::json!({"to": "x"})).unwrap();
        let forms = [
            (
                "args_msgpack",
                f(&[("task", b"t"), ("args_msgpack", &packed)]),
            ),
            (
                "args (JSON)",
                f(&[("task", b"t"), ("args", br#"{"to":"x"}"#)]),
            ),
            (
                "args + enc msgpack (earlier versions)",
                f(&[("task", b"t"), ("args", &packed), ("enc", b"msgpack")]),
            ),
        ];
        for (form, fields) in forms {
            let env = Envelope::decode("1-0", Some(&fields), 1024)
                .unwrap_or_else(|e| panic!("{form}: {}", e.reason));
            assert_eq!(env.payload.to_json().unwrap(), br#"{"to":"x"}"#, "{form}");
        }
        // Consistent, if redundant: `enc` naming what the field name says.
        let redundant = f(&[
            ("task", b"t"),
            ("args_msgpack", &packed),
            ("enc", b"msgpack"),
        ]);
        let env = Envelope::decode("1-0", Some(&redundant), 1024).unwrap();
        assert_eq!(env.payload.encoding(), Encoding::Msgpack);
        // `enc json` beside `args`, as earlier versions allowed.
        let json = f(&[("task", b"t"), ("args", b"{}"), ("enc", b"json")]);
        let env = Envelope::decode("1-0", Some(&json), 1024).unwrap();
        assert_eq!(env.payload.encoding(), Encoding::Json);
    }

    #[test]
    fn the_size_limit_applies_to_either_args_field() {
        for name in ["args", "args_msgpack"] {
            let big = f(&[("task", b"t"), (name, &[0xc0; 2000])]);
            let err = Envelope::decode("1-0", Some(&big), 1024).unwrap_err();
            assert!(
                err.reason.starts_with("too large"),
                "{name}: {}",
                err.reason
            );
        }
    }

    #[test]
    fn malformed_entries_say_why() {
        type Fields<'a> = &'a [(&'a str, &'a [u8])];
        let cases: [(Fields, &str); 11] = [
            (&[("args", b"{}")], "missing field task"),
            (&[("task", b"t")], "missing field args"),
            (&[("task", b"t"), ("enc", b"msgpack")], "missing field args"),
            (
                &[("task", b"t"), ("args", b"{}"), ("enc", b"pickle")],
                "unknown enc \"pickle\"",
            ),
            (
                &[
                    ("task", b"t"),
                    ("args_msgpack", b"\x80"),
                    ("enc", b"pickle"),
                ],
                "unknown enc \"pickle\"",
            ),
            (
                &[("task", b"t"), ("args", b"{}"), ("args_msgpack", b"\x80")],
                "both args and args_msgpack",
            ),
            (
                &[("task", b"t"), ("args_msgpack", b"\x80"), ("enc", b"json")],
                "enc json contradicts args_msgpack",
            ),
            (&[("task", b"a b"), ("args", b"{}")], "invalid field task"),
            (
                &[("task", b"t"), ("args", b"{}"), ("attempt", b"x")],
                "invalid field attempt",
            ),
            (&[("task", b"t"), ("args", &[b'x'; 2000])], "too large"),
            (
                &[("task", b"t"), ("args", b"{}"), ("timeout_ms", b"0")],
                "must be more than 0",
            ),
        ];
        for (pairs, want) in cases {
            let err = Envelope::decode("1-0", Some(&f(pairs)), 1024).unwrap_err();
            assert!(
                err.reason.contains(want),
                "{} does not contain {want}",
                err.reason
            );
        }
        let gone = Envelope::decode("1-0", None, 1024).unwrap_err();
        assert!(gone.reason.contains("deleted while pending"));
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
