//! The persistent mode's line protocol, version 1: one JSON object per line each way, one job
//! at a time per child.
//!
//! To the child (stdin), per job:
//! `{"id":"01J…","task":"send_email","attempt":1,"group":"emails","deadline_ms":1767225600000,"args":{…}}`
//! — `deadline_ms` is the Unix time in ms at which the attempt times out; `args` is the job's
//! JSON (MessagePack args converted), always written on one line. A job with headers also has
//! `"headers":{"origin":"https://example.com",…}` before `args` (absent when it has none).
//!
//! From the child (stdout), per job, before the next is sent:
//! - `{"id":"01J…","ok":true,"result":…}`: success; `result` (any JSON, `null` when absent) is
//!   the job's result;
//! - `{"id":"01J…","ok":false,"error":"…","retry":true}`: failure, retried with backoff unless
//!   `retry` is `false` (default `true`); `retry_after_ms` sets the delay of the retry.
//!
//! Other members are ignored either way. A reply that is not such an object, or names another
//! job, is a protocol error ([`Reply::parse`]).

use crate::context::JobContext;
use crate::task::{JobResult, Output, TaskError};
use serde::Deserialize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The protocol's version, in the child's `STREAMWORKER_PROTOCOL`.
pub(super) const VERSION: u32 = 1;

/// Longest reply line, in bytes without its newline: the result limit of per-job mode.
pub(super) const MAX_REPLY: usize = 1024 * 1024;

/// Longest error a reply's `error` keeps (longer ones are cut, saying so).
const MAX_ERROR: usize = 2048;

/// How much of a line that is not a reply the protocol error quotes.
const QUOTED: usize = 200;

/// The job's line for the child, newline included.
pub(super) fn request(ctx: &JobContext, args: &[u8]) -> Vec<u8> {
    let compact;
    // JSON allows raw newlines only as whitespace between tokens: written again compact, the
    // args hold none. `\r` too, which line readers in universal-newline mode split at.
    let args = if args.iter().any(|&b| b == b'\n' || b == b'\r') {
        compact = serde_json::from_slice::<serde_json::Value>(args)
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_else(|_| b"null".to_vec());
        &compact[..]
    } else {
        args
    };
    let mut line = Vec::with_capacity(args.len() + 192);
    member(&mut line, "id", ctx.job_id());
    member(&mut line, "task", ctx.task());
    member(&mut line, "attempt", ctx.attempt());
    member(&mut line, "group", ctx.group().as_str());
    member(&mut line, "deadline_ms", unix_ms(ctx.deadline()));
    if ctx.headers().next().is_some() {
        let headers: serde_json::Map<String, serde_json::Value> = ctx
            .headers()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        member(&mut line, "headers", headers);
    }
    line.extend_from_slice(b",\"args\":");
    line.extend_from_slice(args);
    line.extend_from_slice(b"}\n");
    line
}

/// Appends `"name":value` to the object begun in `line` (opening it when `line` is empty).
fn member(line: &mut Vec<u8>, name: &str, value: impl serde::Serialize) {
    line.push(if line.is_empty() { b'{' } else { b',' });
    line.push(b'"');
    line.extend_from_slice(name.as_bytes());
    line.extend_from_slice(b"\":");
    // Strings and integers always serialise.
    let _ = serde_json::to_writer(&mut *line, &value);
}

/// `deadline` as Unix time in ms.
fn unix_ms(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    let at = SystemTime::now() + left;
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A reply line as it must look.
#[derive(Debug, Deserialize)]
struct Wire {
    id: String,
    ok: bool,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    retry: Option<bool>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

/// A reply that follows the protocol: the job's outcome.
#[derive(Debug)]
pub(super) struct Reply(JobResult);

impl Reply {
    /// Reads the reply `line` to the job `id`; a line that is no reply, or one to another job,
    /// is a protocol error, said in the returned text.
    pub(super) fn parse(line: &[u8], id: &str) -> Result<Reply, String> {
        let wire: Wire = serde_json::from_slice(line).map_err(|e| {
            format!(
                "protocol error: the --exec child's reply is not a JSON object with \"id\" and \
                 \"ok\" ({e}): {}",
                quote(line)
            )
        })?;
        if wire.id != id {
            return Err(format!(
                "protocol error: the --exec child answered job {} while running job {id}",
                quote(wire.id.as_bytes())
            ));
        }
        Ok(Reply(outcome(wire)))
    }

    /// The job's outcome.
    pub(super) fn into_result(self) -> JobResult {
        self.0
    }
}

/// The outcome a well-formed reply gives.
fn outcome(wire: Wire) -> JobResult {
    if wire.ok {
        return serde_json::to_vec(&wire.result)
            .map(Output)
            .map_err(|e| TaskError::fatal(format!("result does not serialize: {e}")));
    }
    let error = wire
        .error
        .map_or_else(|| "failed (the reply gave no error)".to_string(), cut_error);
    Err(match (wire.retry, wire.retry_after_ms) {
        (Some(false), _) => TaskError::fatal(error),
        (_, Some(ms)) => TaskError::retry_after(error, Duration::from_millis(ms)),
        _ => TaskError::retry(error),
    })
}

/// `error` cut to [`MAX_ERROR`] bytes (at a character boundary), saying how much was cut.
fn cut_error(mut error: String) -> String {
    if error.len() <= MAX_ERROR {
        return error;
    }
    let total = error.len();
    let end = (0..=MAX_ERROR)
        .rev()
        .find(|&i| error.is_char_boundary(i))
        .unwrap_or(0);
    error.truncate(end);
    error.push_str(&format!(" … ({} more bytes cut)", total - end));
    error
}

/// The start of `bytes` as text for an error, with its length when longer.
pub(super) fn quote(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED)]);
    if bytes.len() > QUOTED {
        format!("{shown:?} … ({} bytes)", bytes.len())
    } else {
        format!("{shown:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::GroupName;
    use crate::task::FailureKind;

    fn ctx() -> JobContext {
        let group = GroupName::new("emails").unwrap();
        JobContext::detached(
            group,
            "send",
            "j1",
            Instant::now() + Duration::from_secs(60),
        )
    }

    #[test]
    fn a_request_is_one_line_of_json_holding_the_job() {
        let line = request(&ctx(), b"{\n  \"to\": \"a\\nb\"\r\n}");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(line.ends_with(b"}\n"));
        assert!(!line.contains(&b'\r'));
        let job: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(job["id"], "j1");
        assert_eq!(job["task"], "send");
        assert_eq!(job["attempt"], 1);
        assert_eq!(job["group"], "emails");
        assert_eq!(job["args"]["to"], "a\nb");
        let now = unix_ms(Instant::now());
        let deadline = job["deadline_ms"].as_u64().unwrap();
        assert!(
            (now + 59_000..=now + 61_000).contains(&deadline),
            "{deadline}"
        );
        assert!(job.get("headers").is_none(), "no headers, no member");
        let with = ctx().with_header("origin", "https://a.example");
        let job: serde_json::Value = serde_json::from_slice(&request(&with, b"{}")).unwrap();
        assert_eq!(
            job["headers"],
            serde_json::json!({"origin": "https://a.example"})
        );
        assert_eq!(job["args"], serde_json::json!({}));
    }

    #[test]
    fn replies_give_outcomes() {
        let ok = Reply::parse(br#"{"id":"j1","ok":true,"result":{"n":1},"x":0}"#, "j1");
        assert_eq!(ok.unwrap().into_result().unwrap().0, br#"{"n":1}"#);
        let bare = Reply::parse(br#"{"id":"j1","ok":true}"#, "j1");
        assert_eq!(bare.unwrap().into_result().unwrap().0, b"null");
        let kind = |line: &[u8]| {
            let e = Reply::parse(line, "j1").unwrap().into_result().unwrap_err();
            (e.kind(), e.message().to_string())
        };
        assert_eq!(
            kind(br#"{"id":"j1","ok":false,"error":"smtp down"}"#),
            (FailureKind::Retry, "smtp down".into())
        );
        assert_eq!(
            kind(br#"{"id":"j1","ok":false,"error":"bad","retry":false}"#).0,
            FailureKind::Fatal
        );
        assert_eq!(
            kind(br#"{"id":"j1","ok":false,"error":"later","retry_after_ms":1500}"#).0,
            FailureKind::RetryAfter(Duration::from_millis(1500))
        );
        let long = format!(r#"{{"id":"j1","ok":false,"error":"{}"}}"#, "é".repeat(2000));
        let (_, message) = kind(long.as_bytes());
        assert!(message.ends_with("more bytes cut)"), "{message}");
        assert!(message.len() < MAX_ERROR + 40);
    }

    #[test]
    fn lines_that_are_no_reply_are_protocol_errors() {
        let err = Reply::parse(b"hello from print()", "j1").unwrap_err();
        assert!(err.starts_with("protocol error:"), "{err}");
        assert!(err.contains("\"hello from print()\""), "{err}");
        let err = Reply::parse(br#"{"ok":true}"#, "j1").unwrap_err();
        assert!(err.contains("missing field `id`"), "{err}");
        let err = Reply::parse(br#"{"id":"j0","ok":true}"#, "j1").unwrap_err();
        assert!(
            err.contains("answered job \"j0\" while running job j1"),
            "{err}"
        );
    }
}
