//! [`JobId`]: a job's id, allocated by the producer before the job is submitted.

use crate::error::Result;
use crate::keys::validate_name;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use ulid::ULID_LEN;

/// A job's id: a ULID allocated by the producer before submission, or, for a job typed into
/// redis-cli without an `id` field, its first stream entry id.
#[derive(Clone)]
pub struct JobId(Repr);

/// How an id is held. Equality, order and hash are those of the text, whichever form holds it.
#[derive(Clone)]
enum Repr {
    /// A ULID allocated here, its 26 characters inline: a new job allocates nothing for its id.
    Ulid([u8; ULID_LEN]),
    /// Any other id (parsed, decoded, or built from parts).
    Text(String),
}

impl JobId {
    /// A new, unique, time-ordered id.
    pub fn generate() -> JobId {
        let mut text = [0; ULID_LEN];
        ulid::Ulid::generate().array_to_str(&mut text);
        JobId(Repr::Ulid(text))
    }

    /// Validates an id given as text (letters, digits, `-`, `_`, `.`).
    pub fn parse(id: impl Into<String>) -> Result<JobId> {
        let id = id.into();
        validate_name("job id", &id)?;
        Ok(JobId(Repr::Text(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Crockford base32: ASCII.
            Repr::Ulid(text) => std::str::from_utf8(text).unwrap_or_default(),
            Repr::Text(text) => text,
        }
    }

    /// An id built by streamworker itself from validated parts (a schedule's tick).
    pub(crate) fn from_parts(id: String) -> JobId {
        debug_assert!(validate_name("job id", &id).is_ok(), "{id}");
        JobId(Repr::Text(id))
    }

    /// An id the worker-side decoder read: a validated `id` field, or the entry id.
    #[inline]
    pub(super) fn decoded(id: String) -> JobId {
        JobId(Repr::Text(id))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JobId").field(&self.as_str()).finish()
    }
}

impl PartialEq for JobId {
    fn eq(&self, other: &JobId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for JobId {}

impl Hash for JobId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &JobId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JobId {
    fn cmp(&self, other: &JobId) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_generated_id_is_a_ulid_equal_to_its_parsed_text() {
        let id = JobId::generate();
        assert_eq!(id.as_str().len(), ULID_LEN);
        assert!(ulid::Ulid::from_string(id.as_str()).is_ok());
        let parsed = JobId::parse(id.to_string()).unwrap();
        assert_eq!(id, parsed);
        assert_eq!(id.cmp(&parsed), Ordering::Equal);
        assert_eq!(HashSet::from([id.clone(), parsed]).len(), 1);
        assert_eq!(format!("{id:?}"), format!("JobId({:?})", id.as_str()));
        assert!(JobId::parse("1-0").unwrap() < JobId::parse("2-0").unwrap());
    }
}
