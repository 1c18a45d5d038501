//! A job's fields as stored in a stream entry, the dead stream or the delayed set, read for
//! display: nothing read here is trusted or required to be well formed.

use crate::broker::Fields;
use crate::job::headers::FIELD_PREFIX;
use crate::job::{Encoding, dead, delayed, field, stored_args};
use crate::priority::Priority;
use std::collections::BTreeMap;

/// Fields that are shown on their own, not among the "other fields".
const SHOWN: [&str; 10] = [
    field::TASK,
    field::ARGS,
    field::ARGS_MSGPACK,
    field::ID,
    field::ENC,
    field::ATTEMPT,
    field::LAST_ERROR,
    dead::REASON,
    dead::DEAD_MS,
    dead::ARGS_TRUNCATED_FROM,
];

/// One job's stored fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobFields(Fields);

impl JobFields {
    pub(crate) fn new(fields: Fields) -> JobFields {
        JobFields(fields)
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// A field as text (invalid UTF-8 replaced).
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The job id: the `id` field, else the entry id it was first added as.
    pub(crate) fn job_id(&self, entry_id: &str) -> String {
        self.text(field::ID).unwrap_or_else(|| entry_id.to_string())
    }

    pub(crate) fn task(&self) -> Option<String> {
        self.text(field::TASK)
    }

    /// The attempt the job is on (1 when the field is absent or not a number).
    pub(crate) fn attempt(&self) -> u32 {
        self.text(field::ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1)
    }

    pub(crate) fn number(&self, name: &str) -> Option<u64> {
        self.text(name).and_then(|v| v.parse().ok())
    }

    /// The arguments as JSON text, converted from MessagePack when the job is encoded so
    /// (`args_msgpack`, or `args` with `enc` = `msgpack`); JSON args are shown as stored, even
    /// when they do not parse. `None` when the entry has no args a worker would accept (see
    /// [`stored_args`]) or MessagePack args do not decode. Args cut by the dead stream are shown
    /// as far as they were kept: JSON as text (a character cut in two replaced), MessagePack
    /// not at all.
    pub(crate) fn args_json(&self) -> Option<String> {
        let (encoding, args) = stored_args(|name| self.get(name)).ok()?;
        match encoding {
            Encoding::Json if self.args_truncated_from().is_some() => {
                Some(String::from_utf8_lossy(args).into_owned())
            }
            Encoding::Msgpack => rmp_serde::from_slice::<serde_json::Value>(args)
                .ok()
                .map(|v| v.to_string()),
            Encoding::Json => std::str::from_utf8(args).ok().map(str::to_string),
        }
    }

    /// The size the args had before the dead stream cut them, in bytes; `None` when they are
    /// stored whole.
    pub(crate) fn args_truncated_from(&self) -> Option<u64> {
        self.number(dead::ARGS_TRUNCATED_FROM)
    }

    /// The job's headers (fields `h.<name>`), name → value, as text.
    pub(crate) fn headers(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(FIELD_PREFIX.as_bytes())?;
                Some((
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            })
            .collect()
    }

    /// Every field not shown on its own, as text.
    pub(crate) fn others(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .filter(|(k, _)| !SHOWN.contains(&k.as_str()) && k != dead::PRIORITY)
            .collect()
    }
}

/// Decodes a delayed job's payload (see [`delayed::unpack`]) for display.
pub(crate) fn unpack_delayed(packed: &[u8]) -> Option<(Priority, JobFields)> {
    delayed::unpack(packed).map(|(priority, fields)| (priority, JobFields(fields)))
}

/// A stream entry id as `(ms, seq)`, for ordering; ids that do not parse sort first.
pub(crate) fn entry_order(entry_id: &str) -> (u64, u64) {
    entry_id
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .unwrap_or((0, 0))
}

/// Whether `s` has the shape of a stream entry id (`<ms>-<seq>`).
pub(crate) fn is_entry_id(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delayed_payload_unpacks_into_priority_and_fields() {
        let packed = rmp_serde::to_vec(&["3", "task", "t", "args", "{}", "attempt", "2"]).unwrap();
        let (p, f) = unpack_delayed(&packed).unwrap();
        assert_eq!(p, Priority::Low);
        assert_eq!(f.task().as_deref(), Some("t"));
        assert_eq!(f.attempt(), 2);
        assert!(unpack_delayed(b"junk").is_none());
    }

    fn fields(pairs: &[(&str, &[u8])]) -> JobFields {
        JobFields::new(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
                .collect(),
        )
    }

    #[test]
    fn msgpack_args_show_as_json() {
        let args = rmp_serde::to_vec_named(&serde_json::json!({"to": "a@b.c"})).unwrap();
        let f = fields(&[("args_msgpack", &args), ("custom", b"x")]);
        assert_eq!(f.args_json().as_deref(), Some(r#"{"to":"a@b.c"}"#));
        assert_eq!(
            f.others().into_iter().collect::<Vec<_>>(),
            vec![("custom".to_string(), "x".to_string())]
        );
        assert_eq!(f.job_id("5-1"), "5-1");
        let h = fields(&[("task", b"t"), ("h.origin", b"https://a.example")]);
        assert_eq!(
            h.headers().into_iter().collect::<Vec<_>>(),
            [("origin".to_string(), "https://a.example".to_string())]
        );
        // As earlier versions wrote it.
        let legacy = fields(&[("args", &args), ("enc", b"msgpack")]);
        assert_eq!(legacy.args_json().as_deref(), Some(r#"{"to":"a@b.c"}"#));
        assert!(legacy.others().is_empty());
    }

    #[test]
    fn json_args_show_as_stored() {
        let f = fields(&[("task", b"t"), ("args", br#"{"a": 1}"#)]);
        assert_eq!(f.args_json().as_deref(), Some(r#"{"a": 1}"#));
        let garbage = fields(&[("args", b"{not json")]);
        assert_eq!(garbage.args_json().as_deref(), Some("{not json"));
    }

    #[test]
    fn args_a_worker_refuses_show_as_none() {
        let packed = rmp_serde::to_vec_named(&serde_json::json!({"a": 1})).unwrap();
        for refused in [
            fields(&[("task", b"t")]),
            fields(&[("args", b"{}"), ("args_msgpack", &packed)]),
            fields(&[("args", b"{}"), ("enc", b"pickle")]),
            fields(&[("args_msgpack", &packed), ("enc", b"json")]),
        ] {
            assert_eq!(refused.args_json(), None, "{:?}", refused.0);
        }
    }

    #[test]
    fn truncated_args_show_what_was_kept_and_their_size() {
        let cut = fields(&[
            ("args", "{\"to\":\"é".as_bytes().split_last().unwrap().1),
            ("args_truncated_from", b"8388608"),
        ]);
        assert_eq!(cut.args_truncated_from(), Some(8_388_608));
        assert_eq!(cut.args_json().as_deref(), Some("{\"to\":\"\u{fffd}"));
        assert!(cut.others().is_empty(), "the size is shown on its own");
        let packed = rmp_serde::to_vec_named(&serde_json::json!({"a": "long"})).unwrap();
        let cut = fields(&[
            ("args_msgpack", &packed[..4]),
            ("args_truncated_from", b"99"),
        ]);
        assert_eq!(cut.args_json(), None);
        assert_eq!(fields(&[("args", b"{}")]).args_truncated_from(), None);
    }

    #[test]
    fn entry_ids_are_recognised() {
        assert!(is_entry_id("1700000000000-0"));
        assert!(!is_entry_id("01JABCDEF"));
        assert!(!is_entry_id("1-"));
    }
}
