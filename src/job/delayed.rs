//! A delayed job as stored beside the delayed set (`delayed:jobs`, job id → payload): a
//! MessagePack array of strings, its priority index, then its stream fields as field, value,
//! field, value... The scripts pack and unpack it with `lua/lib/delayed.lua`.

use crate::priority::Priority;

/// A job's stream fields, as raw bytes in stream order.
pub(crate) type RawFields = Vec<(Vec<u8>, Vec<u8>)>;

/// Decodes a delayed job's payload into its priority and its stream fields; `None` when it
/// is not a payload as the scripts pack it.
pub(crate) fn unpack(packed: &[u8]) -> Option<(Priority, RawFields)> {
    let mut rd = packed;
    let n = rmp::decode::read_array_len(&mut rd).ok()? as usize;
    let mut items = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let len = rmp::decode::read_str_len(&mut rd).ok()? as usize;
        if len > rd.len() {
            return None;
        }
        let (item, rest) = rd.split_at(len);
        items.push(item.to_vec());
        rd = rest;
    }
    let mut items = items.into_iter();
    let priority = std::str::from_utf8(&items.next()?)
        .ok()?
        .parse::<i64>()
        .ok()
        .and_then(Priority::from_index)?;
    let mut fields = Vec::with_capacity(n / 2);
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        fields.push((k, v));
    }
    Some((priority, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delayed_payload_unpacks_into_priority_and_fields() {
        let packed = rmp_serde::to_vec(&["3", "task", "t", "args", "{}", "attempt", "2"]).unwrap();
        let (p, f) = unpack(&packed).unwrap();
        assert_eq!(p, Priority::Low);
        assert_eq!(
            f,
            [
                (b"task".to_vec(), b"t".to_vec()),
                (b"args".to_vec(), b"{}".to_vec()),
                (b"attempt".to_vec(), b"2".to_vec())
            ]
        );
        assert!(unpack(b"junk").is_none());
        assert!(unpack(&rmp_serde::to_vec(&["9", "task", "t"]).unwrap()).is_none());
    }
}
