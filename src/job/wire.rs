//! The producer side of the wire: a [`Job`] as the fields of its stream entry.

use super::Job;
use super::field;
use crate::time::duration_ms;

impl Job {
    /// Hands each stream field to `put`, name then value, in a fixed order so entries of plain
    /// jobs share their field names (which a stream stores once per node): `task`,
    /// `args_msgpack` or `args`, `id`, then the options that were set, then the headers
    /// (`h.<name>`, none for most jobs). The encoding is in the args field's name, not a field
    /// of its own. Values are borrowed from the job, and numbers are formatted on the stack, so
    /// the caller writes them straight into its command.
    pub(crate) fn write_fields(&self, mut put: impl FnMut(&str, &[u8])) {
        put(field::TASK, self.task.as_bytes());
        put(self.payload.encoding().field(), self.payload.bytes());
        put(field::ID, self.id.as_str().as_bytes());
        let mut digits = Decimal::default();
        if let Some(n) = self.max_retries {
            put(field::MAX_RETRIES, digits.format(n.into()));
        }
        if let Some(t) = self.timeout {
            put(field::TIMEOUT_MS, digits.format(duration_ms(t)));
        }
        if let Some(t) = self.keep_result {
            put(field::KEEP_RESULT_MS, digits.format(duration_ms(t)));
        }
        if let (Some(key), Some(_)) = (&self.unique_key, self.unique_ttl) {
            put(field::UNIQUE_KEY, key.as_bytes());
        }
        if let Some(batch) = &self.batch {
            put(field::BATCH, batch.as_bytes());
        }
        if let Some(step) = self.chain_step {
            put(field::CHAIN_STEP, digits.format(step.into()));
        }
        for header in self.headers.iter() {
            put(header.field(), header.value().as_bytes());
        }
    }

    /// How many fields [`Job::write_fields`] writes, and their names' and values' bytes: what
    /// a command needs to hold them, so it can be allocated once.
    pub(crate) fn wire_size(&self) -> (usize, usize) {
        let (mut count, mut bytes) = (0, 0);
        self.write_fields(|name, value| {
            count += 1;
            bytes += name.len() + value.len();
        });
        (count, bytes)
    }

    /// The stream fields as owned pairs, for tests.
    #[cfg(test)]
    pub(crate) fn fields(&self) -> Vec<(String, std::borrow::Cow<'static, [u8]>)> {
        let mut fields = Vec::new();
        self.write_fields(|name, value| fields.push((name.to_string(), value.to_vec().into())));
        fields
    }
}

/// A number's decimal digits, formatted without allocating.
#[derive(Default)]
struct Decimal([u8; 20]);

impl Decimal {
    fn format(&mut self, mut n: u64) -> &[u8] {
        let mut at = self.0.len();
        loop {
            at -= 1;
            self.0[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return &self.0[at..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::job::Job;
    use std::time::Duration;

    fn names(job: &Job) -> Vec<String> {
        job.fields().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn numbers_are_written_in_decimal_and_sizes_add_up() {
        let mut d = super::Decimal::default();
        assert_eq!(d.format(0), b"0");
        assert_eq!(d.format(1_500), b"1500");
        assert_eq!(d.format(u64::MAX), u64::MAX.to_string().as_bytes());
        let job = Job::new("g", "t", &1u8)
            .unwrap()
            .max_retries(12)
            .keep_result(Duration::from_millis(2_500));
        let (count, bytes) = job.wire_size();
        let fields = job.fields();
        assert_eq!(count, fields.len());
        let sum: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(bytes, sum);
        assert_eq!(&*fields[3].1, b"12");
        assert_eq!(&*fields[4].1, b"2500");
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

    #[test]
    fn headers_come_last_one_field_each_and_cost_nothing_when_absent() {
        let plain = Job::from_json("g", "t", "{}").unwrap();
        assert_eq!(names(&plain), ["task", "args", "id"]);
        let job = plain
            .max_retries(2)
            .header("origin", "https://a.example")
            .header("locale", "fr");
        assert_eq!(
            names(&job),
            ["task", "args", "id", "max_retries", "h.origin", "h.locale"]
        );
        let (count, bytes) = job.wire_size();
        let fields = job.fields();
        assert_eq!(count, fields.len());
        assert_eq!(
            bytes,
            fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        );
        assert_eq!(&*fields[4].1, b"https://a.example");
    }
}
