//! Every reader of raw Redis replies, none trusting their shape: the helpers for single
//! values here, stream entries in `entries`, consumer-group facts in `groups`, and the error
//! replies the broker acts on in `errors`.

mod entries;
mod errors;
mod groups;

pub(crate) use entries::{
    Entry, Fields, deliveries, deliveries_of, entries, first_id, streams_replied,
};
pub(crate) use errors::says_group_missing;
pub(crate) use groups::{consumers, group_info, group_state};

use crate::error::{Error, Result};
use redis::Value;

/// A string or integer reply as bytes.
pub(crate) fn bytes(op: &'static str, v: &Value) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(s) => Ok(s.clone().into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(unexpected(op, other)),
    }
}

/// A string or integer reply as UTF-8 text.
pub(crate) fn string(op: &'static str, v: &Value) -> Result<String> {
    String::from_utf8(bytes(op, v)?).map_err(|_| Error::Protocol {
        op,
        detail: "text is not UTF-8".into(),
    })
}

/// An integer reply, or a string that holds one.
pub(crate) fn int(op: &'static str, v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unexpected(op, v)),
        other => Err(unexpected(op, other)),
    }
}

/// An array reply's items; nil counts as an empty array.
pub(crate) fn array(op: &'static str, v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(op, &other)),
    }
}

/// A flat `[k1, v1, k2, v2, ...]` array (or a RESP3 map) as pairs of bytes.
pub(crate) fn pairs(op: &'static str, v: Value) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    match v {
        Value::Map(items) => items
            .iter()
            .map(|(k, v)| Ok((bytes(op, k)?, bytes(op, v)?)))
            .collect(),
        other => {
            let items = array(op, other)?;
            items
                .chunks(2)
                .map(|kv| match kv {
                    [k, v] => Ok((bytes(op, k)?, bytes(op, v)?)),
                    _ => Err(Error::Protocol {
                        op,
                        detail: "odd number of field/value items".into(),
                    }),
                })
                .collect()
        }
    }
}

/// [`Error::Protocol`] for a reply `v` of the wrong shape during `op`.
pub(crate) fn unexpected(op: &'static str, v: &Value) -> Error {
    Error::Protocol {
        op,
        detail: format!("{v:?}"),
    }
}
