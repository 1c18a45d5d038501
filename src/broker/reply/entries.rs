//! Stream entries as XRANGE, XREVRANGE, XREADGROUP and XREAD list them.

use super::{array, pairs, string, unexpected};
use crate::broker::Delivery;
use crate::error::{Error, Result};
use crate::priority::Priority;
use redis::Value;

/// A stream entry's fields as raw bytes, in stream order.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One stream entry: its id and fields.
pub(crate) type Entry = (String, Fields);

/// A list of entries, each `[id, fields]`, as XRANGE, XREVRANGE and each stream of an
/// XREADGROUP reply give it. The fields are `None` for an entry deleted while pending, which
/// Redis lists without them.
fn listed(op: &'static str, value: Value) -> Result<Vec<(String, Option<Fields>)>> {
    array(op, value)?
        .into_iter()
        .map(|entry| {
            let mut parts = array(op, entry)?.into_iter();
            let id = parts.next().ok_or_else(|| Error::Protocol {
                op,
                detail: "entry without id".into(),
            })?;
            let fields = match parts.next() {
                None | Some(Value::Nil) => None,
                Some(f) => Some(pairs(op, f)?),
            };
            Ok((string(op, &id)?, fields))
        })
        .collect()
}

/// The entries of an XRANGE or XREVRANGE reply; an entry without fields gets an empty list.
pub(crate) fn entries(op: &'static str, value: Value) -> Result<Vec<Entry>> {
    Ok(listed(op, value)?
        .into_iter()
        .map(|(id, fields)| (id, fields.unwrap_or_default()))
        .collect())
}

/// The id of the first entry of an XRANGE or XREVRANGE reply.
pub(crate) fn first_id(op: &'static str, value: Value) -> Result<Option<String>> {
    Ok(listed(op, value)?.into_iter().next().map(|(id, _)| id))
}

/// The entries of an XREADGROUP reply on one stream of `priority` (nil: none), each delivered
/// for the first time.
pub(crate) fn deliveries(priority: Priority, value: Value) -> Result<Vec<Delivery>> {
    const OP: &str = "read";
    let mut out = Vec::new();
    for stream in array(OP, value)? {
        let entries = match stream {
            Value::Array(mut kv) if kv.len() == 2 => kv.pop().expect("two items"),
            Value::Map(mut kv) if kv.len() == 1 => kv.pop().expect("one item").1,
            other => return Err(unexpected(OP, &other)),
        };
        out.extend(
            listed(OP, entries)?
                .into_iter()
                .map(|(entry_id, fields)| Delivery {
                    priority,
                    entry_id,
                    fields,
                    deliveries: 1,
                }),
        );
    }
    Ok(out)
}

/// The names of the streams an XREAD reply lists (in RESP2 arrays; nothing else counts).
pub(crate) fn streams_listed(value: Value) -> Vec<String> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            Value::Array(mut kv) if !kv.is_empty() => string("xread", &kv.swap_remove(0)).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: Value) -> Value {
        Value::Array(vec![bulk(id), fields])
    }

    #[test]
    fn entries_deleted_while_pending_have_no_fields() {
        let range = Value::Array(vec![
            entry("1-0", Value::Array(vec![bulk("task"), bulk("t")])),
            entry("2-0", Value::Nil),
        ]);
        assert_eq!(
            entries("range", range.clone()).unwrap(),
            vec![
                ("1-0".to_string(), vec![(b"task".to_vec(), b"t".to_vec())]),
                ("2-0".to_string(), Vec::new()),
            ]
        );
        assert_eq!(first_id("range", range).unwrap().as_deref(), Some("1-0"));
        let read = Value::Array(vec![Value::Array(vec![
            bulk("stream"),
            Value::Array(vec![entry("2-0", Value::Nil)]),
        ])]);
        let delivered = deliveries(Priority::Low, read).unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].entry_id, "2-0");
        assert_eq!(delivered[0].fields, None);
        assert_eq!(delivered[0].priority, Priority::Low);
        assert!(deliveries(Priority::Low, Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn xread_names_the_streams_with_news() {
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Array(Vec::new())]),
            Value::Array(Vec::new()),
            Value::Array(vec![bulk("b"), Value::Array(Vec::new())]),
        ]);
        assert_eq!(streams_listed(reply), vec!["a", "b"]);
        assert!(streams_listed(Value::Nil).is_empty());
    }
}
