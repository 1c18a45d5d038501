//! The producer side of the wire: a [`Job`] as the fields of its stream entry.

use super::Job;
use super::field;
use crate::time::duration_ms;
use std::borrow::Cow;

impl Job {
    /// The stream fields, in a fixed order so entries of plain jobs share their field names
    /// (which a stream stores once per node): `task`, `args_msgpack` or `args`, `id`, then the
    /// options that were set. The encoding is in the args field's name, not a field of its own.
    /// Values borrow from the job where they can, so a bulk enqueue copies each payload once,
    /// into the command.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Cow<'_, [u8]>)> {
        let mut fields = vec![
            (field::TASK, Cow::Borrowed(self.task.as_bytes())),
            (
                self.payload.encoding().field(),
                Cow::Borrowed(self.payload.bytes()),
            ),
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

#[cfg(test)]
mod tests {
    use crate::job::Job;
    use std::time::Duration;

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
}
