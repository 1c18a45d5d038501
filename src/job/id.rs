//! [`JobId`]: a job's id, allocated by the producer before the job is submitted.

use crate::error::Result;
use crate::keys::validate_name;
use std::fmt;

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

    /// An id the worker-side decoder read: a validated `id` field, or the entry id.
    #[inline]
    pub(super) fn decoded(id: String) -> JobId {
        JobId(id)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
