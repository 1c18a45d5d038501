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
    let mut out = Vec::new();
    for (_, entries) in streams_replied(value)? {
        out.extend(deliveries_of(priority, entries)?);
    }
    Ok(out)
}

/// Each stream of an XREAD or XREADGROUP reply (nil: none), as its name and its list of
/// entries, in RESP2 (`[[name, entries], ...]`) or RESP3 (a map).
pub(crate) fn streams_replied(value: Value) -> Result<Vec<(String, Value)>> {
    const OP: &str = "read";
    match value {
        Value::Map(kv) => kv
            .into_iter()
            .map(|(name, entries)| Ok((string(OP, &name)?, entries)))
            .collect(),
        value => array(OP, value)?
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop().expect("two items");
                    Ok((string(OP, &kv[0])?, entries))
                }
                Value::Map(mut kv) if kv.len() == 1 => {
                    let (name, entries) = kv.pop().expect("one item");
                    Ok((string(OP, &name)?, entries))
                }
                other => Err(unexpected(OP, &other)),
            })
            .collect(),
    }
}

/// One stream's list of entries from an XREADGROUP reply, as first deliveries of `priority`.
pub(crate) fn deliveries_of(priority: Priority, entries: Value) -> Result<Vec<Delivery>> {
    Ok(listed("read", entries)?
        .into_iter()
        .map(|(entry_id, fields)| Delivery {
            priority,
            entry_id,
            fields,
            deliveries: 1,
        })
        .collect())
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
}
