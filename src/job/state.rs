//! [`JobState`]: where a tracked job is in its life, and the one Rust spelling of each state
//! as a status record's `state` field holds it. The Lua scripts spell the same strings as
//! literals; change both together.

/// In its priority stream, waiting for a worker.
pub(crate) const QUEUED: &str = "queued";
/// Waiting in the delayed set for its due time.
pub(crate) const SCHEDULED: &str = "scheduled";
/// Being run by a worker.
pub(crate) const RUNNING: &str = "running";
/// Failed, waiting in the delayed set for its next attempt.
pub(crate) const RETRY_SCHEDULED: &str = "retry_scheduled";
/// Finished successfully.
pub(crate) const SUCCEEDED: &str = "succeeded";
/// In the dead stream.
pub(crate) const DEAD: &str = "dead";
/// Cancelled before or while it ran.
pub(crate) const CANCELLED: &str = "cancelled";

/// Where a tracked job is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// In its priority stream, waiting for a worker.
    Queued,
    /// Waiting for its due time.
    Scheduled {
        /// Due time in ms since the Unix epoch.
        due_ms: u64,
    },
    /// Being run by a worker.
    Running {
        /// The worker's consumer name.
        consumer: String,
    },
    /// Failed; waiting for its next attempt.
    RetryScheduled {
        /// Due time of the next attempt, in ms since the Unix epoch.
        due_ms: u64,
    },
    /// Finished successfully.
    Succeeded,
    /// In the dead stream: it will not be tried again.
    Dead,
    /// Cancelled with [`Client::cancel`](crate::Client::cancel) before or while it ran.
    Cancelled,
}

impl JobState {
    /// Whether the job will not change state again.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled
        )
    }

    /// A one-word name: queued, scheduled, running, retry_scheduled, succeeded, dead,
    /// cancelled.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Queued => QUEUED,
            JobState::Scheduled { .. } => SCHEDULED,
            JobState::Running { .. } => RUNNING,
            JobState::RetryScheduled { .. } => RETRY_SCHEDULED,
            JobState::Succeeded => SUCCEEDED,
            JobState::Dead => DEAD,
            JobState::Cancelled => CANCELLED,
        }
    }

    /// The finished state named `name`: succeeded, dead, and anything else cancelled (the
    /// only other way a job ends).
    pub(crate) fn finished(name: &str) -> JobState {
        match name {
            SUCCEEDED => JobState::Succeeded,
            DEAD => JobState::Dead,
            _ => JobState::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_read_back_from_their_names() {
        for state in [JobState::Succeeded, JobState::Dead, JobState::Cancelled] {
            assert!(state.is_finished());
            assert_eq!(JobState::finished(state.as_str()), state);
        }
        assert!(!JobState::Queued.is_finished());
    }
}
