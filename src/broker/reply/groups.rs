//! Consumer-group facts as XINFO GROUPS and XINFO CONSUMERS report them: one record per group
//! or consumer, a RESP2 flat `[name, value, ...]` array or a RESP3 map.

use super::{array, int, string};
use crate::broker::GroupState;
use crate::broker::queues::RawGroupInfo;
use crate::error::Result;
use redis::Value;

/// The fields of one record, by name.
type Record = Vec<(String, Value)>;

/// A record as (name, value) pairs.
fn record(op: &'static str, v: Value) -> Result<Record> {
    let pairs = match v {
        Value::Map(items) => items,
        other => {
            let items = array(op, other)?;
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
    };
    pairs
        .into_iter()
        .map(|(k, v)| Ok((string(op, &k)?, v)))
        .collect()
}

/// A text field of a record; `None` when it is missing or not text.
fn text_field(fields: &Record, name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| string("xinfo", v).ok())
}

/// A count field of a record; `None` when it is missing, nil or negative.
fn count_field(fields: &Record, name: &str) -> Option<u64> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| int("xinfo", v).ok())
        .and_then(|n| u64::try_from(n).ok())
}

/// The record of consumer group `group` in an XINFO GROUPS reply; `None` when it is not listed.
fn group_record(op: &'static str, info: Value, group: &str) -> Result<Option<Record>> {
    for g in array(op, info)? {
        let fields = record(op, g)?;
        if text_field(&fields, "name").as_deref() == Some(group) {
            return Ok(Some(fields));
        }
    }
    Ok(None)
}

/// What a fetch needs of consumer group `group` in an XINFO GROUPS reply; `None` when the
/// reply does not list it (or does not parse).
pub(crate) fn group_state(info: Value, group: &str) -> Option<GroupState> {
    let fields = group_record("xinfo groups", info, group).ok()??;
    Some(GroupState {
        last_delivered: text_field(&fields, "last-delivered-id")?,
        lag: count_field(&fields, "lag"),
    })
}

/// Consumer group `group` in an XINFO GROUPS reply, without its consumers; `None` when the
/// reply does not list it.
pub(crate) fn group_info(
    op: &'static str,
    info: Value,
    group: &str,
) -> Result<Option<RawGroupInfo>> {
    let Some(fields) = group_record(op, info, group)? else {
        return Ok(None);
    };
    Ok(Some(RawGroupInfo {
        pending: count_field(&fields, "pending").unwrap_or(0),
        lag: count_field(&fields, "lag"),
        last_delivered: text_field(&fields, "last-delivered-id").unwrap_or_else(|| "0-0".into()),
        consumers: Vec::new(),
    }))
}

/// (name, pending, idle ms) of each consumer in an XINFO CONSUMERS reply.
pub(crate) fn consumers(op: &'static str, value: Value) -> Result<Vec<(String, u64, u64)>> {
    array(op, value)?
        .into_iter()
        .map(|c| {
            let fields = record(op, c)?;
            Ok((
                text_field(&fields, "name").unwrap_or_default(),
                count_field(&fields, "pending").unwrap_or(0),
                count_field(&fields, "idle").unwrap_or(0),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// An XINFO GROUPS reply listing `g1` and `g2`, in RESP2 (flat arrays) or RESP3 (maps).
    fn groups(resp3: bool) -> Value {
        let group = |name: &str, lag: Value| {
            let fields = vec![
                (bulk("name"), bulk(name)),
                (bulk("pending"), Value::Int(2)),
                (bulk("last-delivered-id"), bulk("5-1")),
                (bulk("lag"), lag),
            ];
            if resp3 {
                Value::Map(fields)
            } else {
                Value::Array(fields.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
        };
        Value::Array(vec![group("g1", Value::Int(7)), group("g2", Value::Nil)])
    }

    #[test]
    fn groups_are_found_by_name_in_resp2_and_resp3() {
        for resp3 in [false, true] {
            assert_eq!(
                group_state(groups(resp3), "g1"),
                Some(GroupState {
                    last_delivered: "5-1".into(),
                    lag: Some(7)
                })
            );
            assert_eq!(group_state(groups(resp3), "g2").unwrap().lag, None);
            assert_eq!(group_state(groups(resp3), "g3"), None);
            let info = group_info("xinfo groups", groups(resp3), "g1")
                .unwrap()
                .unwrap();
            assert_eq!((info.pending, info.lag), (2, Some(7)));
            assert_eq!(info.last_delivered, "5-1");
        }
    }

    #[test]
    fn consumers_read_name_pending_and_idle() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("w1"),
            bulk("pending"),
            Value::Int(3),
            bulk("idle"),
            Value::Int(40),
        ])]);
        assert_eq!(
            consumers("xinfo consumers", reply).unwrap(),
            vec![("w1".to_string(), 3, 40)]
        );
    }
}
