//! A job's headers: a small map of text values beside its arguments, set by the producer
//! ([`Job::header`]) and read by the handler
//! ([`JobContext::header`](crate::JobContext::header)), e.g. the origin of the web request that
//! enqueued the job, so the job can build absolute links.
//!
//! On the wire each header is a field of its own, named `h.` + the header's name
//! (`h.origin https://example.com`), after the job's other fields. A job without headers has
//! no such field, so its entry is what it was before headers existed. The scripts in `lua/`
//! copy an entry's fields without naming them, so headers go wherever the job goes (delayed,
//! retried, handed back, reaped, dead, re-driven from dead).
//!
//! Limits, checked when a job is enqueued ([`check`]): a name is 1–64 characters of
//! `[A-Za-z0-9_.-]`, a value at most [`MAX_HEADER_VALUE_BYTES`] bytes without NUL characters,
//! and a job has at most [`MAX_HEADERS`] headers.

use super::Job;
use crate::error::{Error, Result};

/// Prefix of a header's stream field: header `origin` is field `h.origin`.
pub(crate) const FIELD_PREFIX: &str = "h.";
/// Most headers a job may carry.
pub const MAX_HEADERS: usize = 32;
/// Longest header name, in characters (of `[A-Za-z0-9_.-]`).
pub const MAX_HEADER_NAME_LEN: usize = 64;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// A job's headers in the order they were set, each with its stream field name, so that
/// writing them costs no allocation. Empty for most jobs (an empty `Vec` allocates nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Headers(Vec<Header>);

/// One header: its stream field (`h.` + name) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    field: String,
    value: String,
}

impl Header {
    /// The header's name (its field without the prefix).
    pub(crate) fn name(&self) -> &str {
        &self.field[FIELD_PREFIX.len()..]
    }

    /// The stream field it is stored in.
    pub(crate) fn field(&self) -> &str {
        &self.field
    }

    /// Its value.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }
}

impl Headers {
    /// Sets `name` to `value`, replacing the value it had.
    pub(crate) fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|h| h.name() == name) {
            Some(h) => h.value = value,
            None => self.0.push(Header {
                field: format!("{FIELD_PREFIX}{name}"),
                value,
            }),
        }
    }

    /// The value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|h| h.name() == name).map(Header::value)
    }

    /// Every header, in the order they were set.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// The headers among an entry's fields: each field named `h.<name>` with a valid name and
    /// a value a producer could set (UTF-8, within the size limit, no NUL). Others (a
    /// redis-cli producer's typo, bytes that are not text) are ignored, as unknown fields are:
    /// a worker never refuses a job for its headers.
    pub(crate) fn from_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Headers {
        let mut headers = Headers::default();
        for (k, v) in fields {
            let Some(name) = k.strip_prefix(FIELD_PREFIX.as_bytes()) else {
                continue;
            };
            let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(v)) else {
                continue;
            };
            if valid_name(name) && value.len() <= MAX_HEADER_VALUE_BYTES && !value.contains('\0') {
                headers.set(name, value.to_string());
            }
        }
        headers
    }
}

/// Whether `name` is 1–64 characters of `[A-Za-z0-9_.-]`.
fn valid_name(name: &str) -> bool {
    (1..=MAX_HEADER_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Refuses headers over the limits (see the module doc), saying which and what to do.
pub(crate) fn check(job: &Job) -> Result<()> {
    let headers = &job.headers;
    if headers.0.len() > MAX_HEADERS {
        return Err(Error::Config(format!(
            "job {}: {} headers, over the limit of {MAX_HEADERS}: put larger context in the job's arguments",
            job.id,
            headers.0.len()
        )));
    }
    for h in headers.iter() {
        let name = h.name();
        if !valid_name(name) {
            return Err(Error::Config(format!(
                "job {}: invalid header name {name:?}: use 1-{MAX_HEADER_NAME_LEN} characters of letters, digits, '-', '_', '.'",
                job.id
            )));
        }
        if h.value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(Error::Config(format!(
                "job {}: header {name} is {} bytes, over the limit of {MAX_HEADER_VALUE_BYTES}: put larger values in the job's arguments",
                job.id,
                h.value.len()
            )));
        }
        if h.value.contains('\0') {
            return Err(Error::Config(format!(
                "job {}: header {name} holds a NUL character: remove it (header values must be text an environment variable can hold)",
                job.id
            )));
        }
    }
    Ok(())
}

impl Job {
    /// Sets header `name` to `value` (replacing an earlier value): a short text the handler
    /// reads with [`JobContext::header`](crate::JobContext::header), e.g. the origin of the
    /// web request that enqueued the job. Names are 1–64 characters of `[A-Za-z0-9_.-]`
    /// (case-sensitive; lowercase by convention), values at most
    /// [`MAX_HEADER_VALUE_BYTES`] bytes without NUL, at most [`MAX_HEADERS`] per job; a job
    /// over these limits is refused when it is enqueued.
    ///
    /// ```
    /// use streamworker::Job;
    ///
    /// let job = Job::new("push", "notify", &42)?
    ///     .header("origin", "https://example.com")
    ///     .header("locale", "de-CH");
    /// # Ok::<(), streamworker::Error>(())
    /// ```
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Job {
        self.headers.set(name.as_ref(), value.into());
        self
    }

    /// Sets each header of `headers`, as [`Job::header`] does.
    pub fn headers<N, V>(mut self, headers: impl IntoIterator<Item = (N, V)>) -> Job
    where
        N: AsRef<str>,
        V: Into<String>,
    {
        for (name, value) in headers {
            self.headers.set(name.as_ref(), value.into());
        }
        self
    }

    /// The value of header `name`, if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(job: Job) -> String {
        check(&job).unwrap_err().to_string()
    }

    #[test]
    fn headers_within_the_limits_pass_and_others_say_what_to_do() {
        let job = Job::from_json("g", "t", "{}").unwrap();
        check(&job.clone().header("origin", "https://a.example")).unwrap();
        check(
            &job.clone()
                .header("a".repeat(64), "x".repeat(MAX_HEADER_VALUE_BYTES)),
        )
        .unwrap();
        let msg = refusal(job.clone().header("bad name", "x"));
        assert!(msg.contains("invalid header name \"bad name\""), "{msg}");
        assert!(msg.contains("letters, digits"), "{msg}");
        assert!(refusal(job.clone().header("", "x")).contains("invalid header name"));
        assert!(refusal(job.clone().header("a".repeat(65), "x")).contains("invalid header name"));
        let msg = refusal(job.clone().header("big", "x".repeat(4097)));
        assert!(msg.contains("4097 bytes, over the limit of 4096"), "{msg}");
        assert!(refusal(job.clone().header("n", "a\0b")).contains("NUL"));
        let many = job.headers((0..33).map(|i| (format!("h{i}"), "v")));
        assert!(refusal(many).contains("33 headers, over the limit of 32"));
    }

    #[test]
    fn a_header_set_again_replaces_its_value() {
        let job = Job::from_json("g", "t", "{}")
            .unwrap()
            .header("a", "1")
            .header("b", "2")
            .header("a", "3");
        let all: Vec<_> = job.headers.iter().map(|h| (h.name(), h.value())).collect();
        assert_eq!(all, [("a", "3"), ("b", "2")]);
        assert_eq!(job.header_value("a"), Some("3"));
        assert_eq!(job.headers.iter().next().unwrap().field(), "h.a");
    }

    #[test]
    fn only_valid_header_fields_are_read_from_an_entry() {
        let f = |k: &str, v: &[u8]| (k.as_bytes().to_vec(), v.to_vec());
        let fields = [
            f("task", b"t"),
            f("h.origin", b"https://a.example"),
            f("h.", b"no name"),
            f("h.bad name", b"x"),
            f("h.bin", b"\xff"),
            f("h.nul", b"a\0b"),
            f("h.big", &[b'x'; MAX_HEADER_VALUE_BYTES + 1]),
            f("hx", b"not a header"),
        ];
        let headers = Headers::from_fields(&fields);
        let all: Vec<_> = headers.iter().map(|h| (h.name(), h.value())).collect();
        assert_eq!(all, [("origin", "https://a.example")]);
    }
}
