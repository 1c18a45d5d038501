//! A tracked job's status record (the `job:{id}` hash of a job enqueued with
//! [`Job::keep_result`](crate::Job::keep_result)): its field names and [`JobStatus`], what
//! [`Client::status`](crate::Client::status) reads from it.

use super::state::{self, JobState};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// The fields of a status record that Rust reads or writes: the one Rust spelling of each.
/// The Lua scripts spell the same strings as literals (and also write `enqueued_ms` and
/// `due_ms`); change both together.
pub(crate) mod field {
    use crate::job::{dead, field};

    /// Where the job is: one of the [`state`](crate::job::state) names.
    pub(crate) const STATE: &str = "state";
    /// The consumer running the job, while it runs.
    pub(crate) const CONSUMER: &str = "consumer";
    /// The attempt running or last run (1-based).
    pub(crate) const ATTEMPT: &str = field::ATTEMPT;
    /// The task's name.
    pub(crate) const TASK: &str = field::TASK;
    /// The error of the last failed attempt, or why the job is dead.
    pub(crate) const LAST_ERROR: &str = field::LAST_ERROR;
    /// The stream entry id the job waits or runs as, so cancel finds it without a scan.
    pub(crate) const ENTRY: &str = "entry";
    /// The index of the priority stream of `ENTRY` (1 high, 2 default, 3 low).
    pub(crate) const PRIORITY: &str = dead::PRIORITY;
    /// The result of a succeeded job.
    pub(crate) const RESULT: &str = "result";
    /// When the job finished (Redis's clock), in ms since the Unix epoch.
    pub(crate) const FINISHED_MS: &str = "finished_ms";
}

/// The status record of a job enqueued with [`Job::keep_result`](crate::Job::keep_result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// Where the job is.
    pub state: JobState,
    /// The attempt running or last run (1-based).
    pub attempt: u32,
    /// The error of the last failed attempt, or the reason it is dead.
    pub last_error: Option<String>,
    /// The result bytes (JSON from Rust handlers, stdout from `--exec`), once succeeded.
    pub result: Option<Vec<u8>>,
    /// The last progress its handler reported ([`JobContext::progress`]), kept a day after
    /// the last report.
    ///
    /// [`JobContext::progress`]: crate::JobContext::progress
    pub progress: Option<super::Progress>,
}

impl JobStatus {
    /// Decodes the result as JSON into `T`; `None` when there is no result yet.
    pub fn result_json<T: DeserializeOwned>(&self) -> Option<Result<T, serde_json::Error>> {
        self.result.as_deref().map(serde_json::from_slice)
    }

    /// Reads a status record's `fields`; `delayed_until_ms` is the job's score in the delayed
    /// set, if it is there. A scheduled job no longer in the delayed set was promoted: it is
    /// queued.
    pub(crate) fn from_record(
        fields: &HashMap<String, Vec<u8>>,
        delayed_until_ms: Option<u64>,
    ) -> JobStatus {
        let text = |name: &str| {
            fields
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let num = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let due_ms = delayed_until_ms;
        let state = match text(field::STATE).as_deref() {
            Some(state::SUCCEEDED) => JobState::Succeeded,
            Some(state::DEAD) => JobState::Dead,
            Some(state::CANCELLED) => JobState::Cancelled,
            Some(state::RUNNING) => JobState::Running {
                consumer: text(field::CONSUMER).unwrap_or_default(),
            },
            Some(state::SCHEDULED) => {
                due_ms.map_or(JobState::Queued, |due_ms| JobState::Scheduled { due_ms })
            }
            Some(state::RETRY_SCHEDULED) => due_ms.map_or(JobState::Queued, |due_ms| {
                JobState::RetryScheduled { due_ms }
            }),
            _ => JobState::Queued,
        };
        JobStatus {
            result: matches!(state, JobState::Succeeded)
                .then(|| fields.get(field::RESULT).cloned())
                .flatten(),
            state,
            attempt: num(field::ATTEMPT).unwrap_or(1) as u32,
            last_error: text(field::LAST_ERROR),
            progress: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, &str)]) -> HashMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_record_reads_as_its_state_attempt_error_and_result() {
        let ok = JobStatus::from_record(
            &record(&[("state", "succeeded"), ("attempt", "2"), ("result", "7")]),
            None,
        );
        assert_eq!(ok.state, JobState::Succeeded);
        assert_eq!(ok.attempt, 2);
        assert_eq!(ok.result_json::<u32>().unwrap().unwrap(), 7);
        let running = JobStatus::from_record(
            &record(&[("state", "running"), ("consumer", "w-1"), ("result", "x")]),
            None,
        );
        assert_eq!(
            running.state,
            JobState::Running {
                consumer: "w-1".into()
            }
        );
        assert_eq!((running.attempt, running.result), (1, None));
        let retry = JobStatus::from_record(
            &record(&[("state", "retry_scheduled"), ("last_error", "boom")]),
            Some(5),
        );
        assert_eq!(retry.state, JobState::RetryScheduled { due_ms: 5 });
        assert_eq!(retry.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_scheduled_job_out_of_the_delayed_set_is_queued() {
        let promoted = JobStatus::from_record(&record(&[("state", "scheduled")]), None);
        assert_eq!(promoted.state, JobState::Queued);
        let waiting = JobStatus::from_record(&record(&[("state", "scheduled")]), Some(9));
        assert_eq!(waiting.state, JobState::Scheduled { due_ms: 9 });
    }
}
