//! The worker side: decoding a stream entry into an [`Envelope`], or into the reason it is
//! [`Undecodable`] (the job then goes to the dead stream with it). On the hot path of every
//! job run: it allocates only the values an [`Envelope`] owns.

use super::field;
use super::headers::Headers;
use super::id::JobId;
use super::payload::{Payload, stored_args};
use crate::keys::validate_name;
use std::time::Duration;

/// A job as a worker read it from a stream.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// The job id (the entry id when the entry has no `id` field).
    pub(crate) id: JobId,
    /// The task to run (validated).
    pub(crate) task: String,
    /// The arguments, as the handler receives them.
    pub(crate) payload: Payload,
    /// The attempt this run is (1-based).
    pub(crate) attempt: u32,
    /// The job's own retry limit; `None` lets the task's or the worker's default apply.
    pub(crate) max_retries: Option<u32>,
    /// The job's own timeout; `None` lets the task's or the worker's default apply.
    pub(crate) timeout: Option<Duration>,
    /// How long the job's status record is kept after it finishes; `None` = not tracked.
    pub(crate) keep_result: Option<Duration>,
    /// The uniqueness lock the job holds, released when it finishes.
    pub(crate) unique_key: Option<String>,
    /// The job's headers (`h.<name>` fields); empty for most jobs.
    pub(crate) headers: Headers,
    /// The batch the job is a child of (`batch` field), counted there when it finishes.
    pub(crate) batch: Option<String>,
    /// Whether the job is a step of a chain: its result is handed to the next step.
    pub(crate) chain_step: bool,
    /// The result of the chain step before this one.
    pub(crate) prev_result: Option<Vec<u8>>,
}

/// Why an entry could not become an [`Envelope`]; the job goes to the dead stream with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecodable {
    /// The job id, or the entry id when the entry carries none usable.
    pub(crate) id: String,
    /// Whether the entry asked to keep its result, so its status is recorded too.
    pub(crate) keep_result: Option<Duration>,
    /// Why the entry is not a job a worker can run.
    pub(crate) reason: String,
    /// Whether the reason is args over the payload limit: the dead stream then keeps only
    /// their first bytes.
    pub(crate) too_large: bool,
    /// The batch the entry is a child of, when its `batch` field is usable: it is counted there
    /// as dead.
    pub(crate) batch: Option<String>,
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
            too_large: false,
            batch: None,
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
        // A batch name that cannot be part of a Redis key is ignored (never written by a
        // producer that checks it).
        let batch = get(field::BATCH)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .filter(|b| validate_name("batch id", b).is_ok())
            .map(str::to_string);
        let fail = |id: String, keep_result, reason: String| Undecodable {
            batch: batch.clone(),
            ..fail(id, keep_result, reason)
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
            too_large: false,
            batch: batch.clone(),
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
            return Err(Undecodable {
                too_large: true,
                ..fail(format!(
                    "too large: args are {} bytes, over the limit of {max_payload}",
                    args.len()
                ))
            });
        }
        let attempt = number(get(field::ATTEMPT), field::ATTEMPT).map_err(&fail)?;
        let max_retries = number(get(field::MAX_RETRIES), field::MAX_RETRIES).map_err(&fail)?;
        let timeout_ms = number(get(field::TIMEOUT_MS), field::TIMEOUT_MS).map_err(&fail)?;
        if timeout_ms == Some(0) {
            return Err(fail("invalid field timeout_ms: must be more than 0".into()));
        }
        Ok(Envelope {
            id: JobId::decoded(id.clone()),
            task,
            payload: Payload::new(encoding, args.to_vec()),
            attempt: attempt.map_or(1, |a| a.clamp(1, u32::MAX as u64) as u32),
            max_retries: max_retries.map(|n| n.min(u32::MAX as u64) as u32),
            timeout: timeout_ms.map(Duration::from_millis),
            keep_result,
            // A key that cannot be part of a Redis key is ignored: the lock, if any, expires.
            unique_key: get(field::UNIQUE_KEY)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .filter(|k| validate_name("unique key", k).is_ok())
                .map(str::to_string),
            headers: Headers::from_fields(fields),
            batch,
            chain_step: get(field::CHAIN_STEP).is_some(),
            prev_result: get(field::PREV_RESULT).map(<[u8]>::to_vec),
        })
    }
}

/// A whole-number field, if present; the reason when it is not a whole number.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Encoding, Job};
    use serde::Serialize;

    /// The fields `job` is stored with, as a worker reads them back.
    fn stored(job: &Job) -> Vec<(Vec<u8>, Vec<u8>)> {
        job.fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_owned()))
            .collect()
    }

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
        let fields = stored(&job);
        let env = Envelope::decode("9-9", Some(&fields), 1024).unwrap();
        assert_eq!(&env.id, job.id());
        assert_eq!(env.payload.decode::<A>().unwrap(), A { to: "x".into() });
        assert_eq!(env.payload.to_json().unwrap(), br#"{"to":"x"}"#);
        assert_eq!(env.max_retries, Some(7));
        assert_eq!(env.timeout, Some(Duration::from_secs(2)));
        assert_eq!(env.keep_result, Some(Duration::from_secs(60)));
        assert_eq!(env.unique_key, None);
        assert_eq!(env.headers.iter().count(), 0);
        let with_headers = stored(&job.header("origin", "https://a.example"));
        let env = Envelope::decode("9-9", Some(&with_headers), 1024).unwrap();
        assert_eq!(env.headers.get("origin"), Some("https://a.example"));
    }

    #[test]
    fn a_unique_job_carries_its_key_to_the_worker() {
        let job = Job::from_json("g", "t", "{}")
            .unwrap()
            .unique_key("welcome-42")
            .unique_for(Duration::from_secs(60));
        let fields = stored(&job);
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
            assert!(err.too_large, "{name}: the dead stream keeps only a prefix");
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
        let other = Envelope::decode("1-0", Some(&f(&[("task", b"t")])), 1024).unwrap_err();
        assert!(!other.too_large, "only oversized args are cut in dead");
        let gone = Envelope::decode("1-0", None, 1024).unwrap_err();
        assert!(gone.reason.contains("deleted while pending"));
    }
}
