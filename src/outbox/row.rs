//! A job as a row of the outbox table, and a row back as a job.
//!
//! Columns: `job_id`, `queue_group`, `task`, `encoding` (`json` or `msgpack`), `args` (the
//! encoded arguments) and `options`, a JSON object whose members are all optional:
//! `priority` (`high`, `default`, `low`), `due_ms` (ms since the Unix epoch), `max_retries`,
//! `timeout_ms`, `keep_result_ms`, `unique_key`, `unique_ttl_ms` and `headers` (an object of
//! strings). Unknown members are
//! refused, so a misspelt option is an error rather than a job that ignores it.

use crate::job::{Encoding, Job, JobId};
use crate::priority::Priority;
use crate::time::duration_ms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// A job's options as the `options` column holds them.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_result_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_ttl_ms: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    headers: BTreeMap<String, String>,
}

/// The columns of one job's row, as [`enqueue_in_tx`](super::enqueue_in_tx) writes them.
#[derive(Debug)]
pub(super) struct NewRow {
    pub(super) job_id: String,
    pub(super) group: String,
    pub(super) task: String,
    pub(super) encoding: &'static str,
    pub(super) args: Vec<u8>,
    pub(super) options: serde_json::Value,
}

impl NewRow {
    /// The row of `job`.
    pub(super) fn of(job: &Job) -> NewRow {
        let options = Options {
            priority: (job.priority != Priority::Default).then(|| job.priority.as_str().into()),
            due_ms: job.due.map(crate::time::system_time_ms_ceil),
            max_retries: job.max_retries,
            timeout_ms: job.timeout.map(duration_ms),
            keep_result_ms: job.keep_result.map(duration_ms),
            unique_key: job.unique_key.clone(),
            unique_ttl_ms: job.unique_ttl.map(duration_ms),
            headers: job
                .headers
                .iter()
                .map(|h| (h.name().to_string(), h.value().to_string()))
                .collect(),
        };
        NewRow {
            job_id: job.id.as_str().to_string(),
            group: job.group.as_str().to_string(),
            task: job.task.clone(),
            encoding: match job.payload.encoding() {
                Encoding::Json => "json",
                Encoding::Msgpack => "msgpack",
            },
            args: job.payload.bytes().to_vec(),
            options: serde_json::to_value(&options).unwrap_or_default(),
        }
    }
}

/// One row read back by a relay.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct StoredRow {
    pub(super) id: i64,
    pub(super) job_id: String,
    pub(super) queue_group: String,
    pub(super) task: String,
    pub(super) encoding: String,
    pub(super) args: Vec<u8>,
    pub(super) options: serde_json::Value,
}

impl StoredRow {
    /// The job this row describes, or why it describes none.
    pub(super) fn job(self) -> Result<Job, String> {
        let encoding = match self.encoding.as_str() {
            "json" => Encoding::Json,
            "msgpack" => Encoding::Msgpack,
            other => return Err(format!("unknown encoding {other:?}: use json or msgpack")),
        };
        if encoding == Encoding::Json {
            serde_json::from_slice::<serde::de::IgnoredAny>(&self.args)
                .map_err(|e| format!("args are not valid JSON: {e}"))?;
        }
        let options: Options = serde_json::from_value(self.options)
            .map_err(|e| format!("options: {e} (see README, the outbox table)"))?;
        let mut job = Job::with_payload(&self.queue_group, &self.task, encoding, self.args)
            .map_err(|e| e.to_string())?;
        job.id = JobId::parse(self.job_id).map_err(|e| e.to_string())?;
        if let Some(priority) = options.priority {
            job.priority = priority.parse().map_err(|e| format!("options: {e}"))?;
        }
        job.due = options
            .due_ms
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        job.max_retries = options.max_retries;
        job.timeout = options.timeout_ms.map(Duration::from_millis);
        job.keep_result = options.keep_result_ms.map(Duration::from_millis);
        job.unique_key = options.unique_key;
        job.unique_ttl = options.unique_ttl_ms.map(Duration::from_millis);
        Ok(job.headers(options.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(new: NewRow) -> StoredRow {
        StoredRow {
            id: 1,
            job_id: new.job_id,
            queue_group: new.group,
            task: new.task,
            encoding: new.encoding.into(),
            args: new.args,
            options: new.options,
        }
    }

    #[test]
    fn a_job_comes_back_from_its_row_with_every_option() {
        let job = Job::new("emails", "send", &serde_json::json!({"to": "a@b.c"}))
            .unwrap()
            .priority(Priority::High)
            .delay(Duration::from_secs(60))
            .max_retries(7)
            .timeout(Duration::from_secs(9))
            .keep_result(Duration::from_secs(3600))
            .unique_for(Duration::from_secs(30))
            .header("origin", "https://example.com");
        let back = stored(NewRow::of(&job)).job().unwrap();
        assert_eq!(back.id, job.id);
        assert_eq!(back.group, job.group);
        assert_eq!(back.task, job.task);
        assert_eq!(back.payload.bytes(), job.payload.bytes());
        assert_eq!(back.payload.encoding(), Encoding::Msgpack);
        assert_eq!(back.priority, Priority::High);
        assert_eq!(back.due_ms(), job.due_ms());
        assert_eq!(back.max_retries, Some(7));
        assert_eq!(back.timeout, Some(Duration::from_secs(9)));
        assert_eq!(back.keep_result, Some(Duration::from_secs(3600)));
        assert_eq!(back.unique_key, job.unique_key);
        assert_eq!(back.unique_ttl, Some(Duration::from_secs(30)));
        assert_eq!(back.header_value("origin"), Some("https://example.com"));
    }

    #[test]
    fn a_plain_job_writes_empty_options() {
        let job = Job::from_json("g", "t", "{}").unwrap();
        assert_eq!(NewRow::of(&job).options, serde_json::json!({}));
    }

    #[test]
    fn a_bad_row_says_what_is_wrong() {
        let mut row = stored(NewRow::of(&Job::from_json("g", "t", "{}").unwrap()));
        row.options = serde_json::json!({"priorty": "high"});
        let err = row.job().unwrap_err();
        assert!(err.contains("unknown field `priorty`"), "{err}");
        let mut row = stored(NewRow::of(&Job::from_json("g", "t", "{}").unwrap()));
        row.encoding = "yaml".into();
        assert!(row.job().unwrap_err().contains("unknown encoding"));
        let mut row = stored(NewRow::of(&Job::from_json("g", "t", "{}").unwrap()));
        row.args = b"{nope".to_vec();
        assert!(row.job().unwrap_err().contains("not valid JSON"));
        let mut row = stored(NewRow::of(&Job::from_json("g", "t", "{}").unwrap()));
        row.queue_group = "bad group".into();
        assert!(row.job().unwrap_err().contains("invalid group name"));
    }
}
