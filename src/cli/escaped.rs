//! The values the human renderers take: read from Redis, with every string they hold escaped
//! for the terminal (see `safe`) before any renderer sees them.

use super::safe::escape;
use crate::admin::{
    ConsumerStatus, DeadJob, DelayedJob, GroupStatus, JobPlace, JobReport, PendingEntry, Redriven,
};
use crate::batch::{BatchCallback, BatchStatus};
use crate::schedule::ScheduleInfo;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Deref;

/// A value whose strings are all escaped: built only by [`Escaped::new`], so a renderer that
/// takes one cannot show a string raw.
#[derive(Debug)]
pub(crate) struct Escaped<T>(T);

impl<T: EscapeStrings> Escaped<T> {
    /// `value` with each of its strings escaped.
    pub(crate) fn new(mut value: T) -> Escaped<T> {
        value.escape_strings();
        Escaped(value)
    }
}

impl<T> Deref for Escaped<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A value whose strings can be escaped in place. The impls of structs name every field, so
/// a field added to one of them does not compile until it is handled here.
pub(crate) trait EscapeStrings {
    /// Escapes every string of the value.
    fn escape_strings(&mut self);
}

impl EscapeStrings for String {
    fn escape_strings(&mut self) {
        if let Cow::Owned(escaped) = escape(self) {
            *self = escaped;
        }
    }
}

impl<T: EscapeStrings> EscapeStrings for Option<T> {
    fn escape_strings(&mut self) {
        if let Some(v) = self {
            v.escape_strings();
        }
    }
}

impl<T: EscapeStrings> EscapeStrings for Vec<T> {
    fn escape_strings(&mut self) {
        self.iter_mut().for_each(EscapeStrings::escape_strings);
    }
}

impl EscapeStrings for BTreeMap<String, String> {
    fn escape_strings(&mut self) {
        *self = std::mem::take(self)
            .into_iter()
            .map(|(mut k, mut v)| {
                k.escape_strings();
                v.escape_strings();
                (k, v)
            })
            .collect();
    }
}

impl EscapeStrings for GroupStatus {
    fn escape_strings(&mut self) {
        let GroupStatus {
            group,
            consumers,
            paused: _,
            paused_since_ms: _,
            ready: _,
            pending: _,
            delayed: _,
            next_due_ms: _,
            dead: _,
            oldest_ready_age_ms: _,
            queues: _,
            last_minute: _,
            last_hour: _,
            now_ms: _,
            dead_retention: _,
        } = self;
        group.escape_strings();
        consumers.escape_strings();
    }
}

impl EscapeStrings for ConsumerStatus {
    fn escape_strings(&mut self) {
        let ConsumerStatus {
            name,
            pending: _,
            idle_ms: _,
        } = self;
        name.escape_strings();
    }
}

impl EscapeStrings for PendingEntry {
    fn escape_strings(&mut self) {
        let PendingEntry {
            entry_id,
            job_id,
            task,
            consumer,
            priority: _,
            attempt: _,
            idle_ms: _,
            deliveries: _,
            next_to_reap: _,
            payload_missing: _,
        } = self;
        [entry_id, job_id, consumer]
            .into_iter()
            .for_each(EscapeStrings::escape_strings);
        task.escape_strings();
    }
}

impl EscapeStrings for JobReport {
    fn escape_strings(&mut self) {
        let JobReport {
            group,
            id,
            place,
            task,
            last_error,
            result,
            args,
            attempt: _,
            tracked: _,
            args_truncated_from: _,
            headers,
            progress,
        } = self;
        headers.escape_strings();
        if let Some(p) = progress {
            p.message.escape_strings();
        }
        group.escape_strings();
        id.escape_strings();
        place.escape_strings();
        [task, last_error, result, args]
            .into_iter()
            .for_each(EscapeStrings::escape_strings);
    }
}

impl EscapeStrings for JobPlace {
    fn escape_strings(&mut self) {
        match self {
            JobPlace::Waiting { entry_id, .. } => entry_id.escape_strings(),
            JobPlace::Running {
                entry_id, consumer, ..
            } => {
                entry_id.escape_strings();
                consumer.escape_strings();
            }
            JobPlace::Dead {
                entry_id, reason, ..
            } => {
                entry_id.escape_strings();
                reason.escape_strings();
            }
            JobPlace::Delayed { .. } | JobPlace::Succeeded { .. } => {}
        }
    }
}

impl EscapeStrings for DelayedJob {
    fn escape_strings(&mut self) {
        let DelayedJob {
            job_id,
            task,
            last_error,
            due_ms: _,
            due_in_ms: _,
            priority: _,
            attempt: _,
        } = self;
        job_id.escape_strings();
        task.escape_strings();
        last_error.escape_strings();
    }
}

impl EscapeStrings for DeadJob {
    fn escape_strings(&mut self) {
        let DeadJob {
            entry_id,
            job_id,
            task,
            reason,
            args,
            fields,
            priority: _,
            attempt: _,
            dead_ms: _,
            args_truncated_from: _,
        } = self;
        [entry_id, job_id, reason]
            .into_iter()
            .for_each(EscapeStrings::escape_strings);
        [task, args]
            .into_iter()
            .for_each(EscapeStrings::escape_strings);
        fields.escape_strings();
    }
}

impl EscapeStrings for Redriven {
    fn escape_strings(&mut self) {
        let Redriven {
            job_id,
            task,
            dead_entry_id,
            entry_id,
        } = self;
        [job_id, dead_entry_id, entry_id]
            .into_iter()
            .for_each(EscapeStrings::escape_strings);
        task.escape_strings();
    }
}

impl EscapeStrings for ScheduleInfo {
    fn escape_strings(&mut self) {
        let ScheduleInfo {
            name,
            when,
            task,
            missed,
            last_job_id,
            definition,
            next_run_ms: _,
            last_run_ms: _,
            last_run_tick_ms: _,
            last_tick_ms: _,
            seen_ms: _,
        } = self;
        [name, when, task, missed]
            .into_iter()
            .for_each(EscapeStrings::escape_strings);
        last_job_id.escape_strings();
        escape_json(definition);
    }
}

/// Escapes every string and key of a JSON value.
fn escape_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => s.escape_strings(),
        Value::Array(items) => items.iter_mut().for_each(escape_json),
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(mut k, mut v)| {
                    k.escape_strings();
                    escape_json(&mut v);
                    (k, v)
                })
                .collect();
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

impl EscapeStrings for BatchStatus {
    fn escape_strings(&mut self) {
        let BatchStatus {
            id,
            state,
            total: _,
            succeeded: _,
            failed: _,
            ignored: _,
            pending: _,
            pending_ids,
            policy,
            outcome,
            created_ms: _,
            finished_ms: _,
            failed_ids,
            callbacks,
            steps: _,
            not_run,
        } = self;
        id.escape_strings();
        state.escape_strings();
        policy.escape_strings();
        outcome.escape_strings();
        failed_ids.escape_strings();
        callbacks.escape_strings();
        not_run.escape_strings();
        pending_ids.escape_strings();
    }
}

impl EscapeStrings for BatchCallback {
    fn escape_strings(&mut self) {
        let BatchCallback { name, fired_entry } = self;
        name.escape_strings();
        fired_entry.escape_strings();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_of_a_dead_job_is_escaped() {
        let job = DeadJob {
            entry_id: "1-0".into(),
            job_id: "id\n".into(),
            task: Some("t\x1b[2J".into()),
            priority: None,
            attempt: 1,
            reason: "r\r".into(),
            dead_ms: None,
            args: Some("{\"a\":\"\\u001b\"}".into()),
            fields: BTreeMap::from([("k\u{9b}".to_string(), "v\x07".to_string())]),
            args_truncated_from: None,
        };
        let shown = Escaped::new(job);
        assert_eq!(shown.job_id, "id\\n");
        assert_eq!(shown.task.as_deref(), Some("t\\x1b[2J"));
        assert_eq!(shown.reason, "r\\r");
        assert_eq!(shown.args.as_deref(), Some("{\"a\":\"\\u001b\"}"));
        assert_eq!(shown.fields["k\\u{9b}"], "v\\x07");
    }
}
