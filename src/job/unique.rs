//! The derived key of a unique job: a digest of its task and its arguments, independent of how
//! the arguments were encoded, so a Rust producer (MessagePack) and the CLI (JSON) that enqueue
//! the same call take the same lock.

use super::payload::Payload;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex characters of the digest kept in the key (128 bits).
const DIGEST_HEX: usize = 32;

/// The unique key of a call of `task` with `payload`: 32 hex characters.
///
/// Arguments are hashed as canonical JSON (object keys sorted, no spaces), so `{"a":1,"b":2}`
/// and `{"b":2,"a":1}`, in JSON or MessagePack, give one key. Arguments that have no JSON form
/// (MessagePack binary, say) are hashed as their encoded bytes.
pub(crate) fn derived_key(task: &str, payload: &Payload) -> String {
    let mut hasher = Sha256::new();
    hasher.update(task.as_bytes());
    hasher.update([0u8]);
    match payload
        .to_json()
        .ok()
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
    {
        Some(value) => {
            let mut canonical = Vec::new();
            write_canonical(&value, &mut canonical);
            hasher.update(b"json\0");
            hasher.update(&canonical);
        }
        None => {
            hasher.update(b"raw\0");
            hasher.update(payload.bytes());
        }
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(DIGEST_HEX);
    for byte in digest.iter().take(DIGEST_HEX / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Writes `value` as JSON with object keys in byte order, whatever order the map keeps.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Encoding;

    fn json(task: &str, args: &str) -> String {
        derived_key(
            task,
            &Payload::new(Encoding::Json, args.as_bytes().to_vec()),
        )
    }

    #[test]
    fn the_same_call_gives_the_same_key_whatever_the_encoding_and_key_order() {
        let from_json = json("report", r#"{"user": 7, "period": "may"}"#);
        let reordered = json("report", r#"{"period":"may","user":7}"#);
        let packed =
            rmp_serde::to_vec_named(&serde_json::json!({"user": 7, "period": "may"})).unwrap();
        let from_rust = derived_key("report", &Payload::new(Encoding::Msgpack, packed));
        assert_eq!(from_json, reordered);
        assert_eq!(from_json, from_rust);
        assert_eq!(from_json.len(), 32);
        assert!(from_json.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn another_task_or_other_args_give_another_key() {
        let a = json("report", r#"{"user":7}"#);
        assert_ne!(a, json("report", r#"{"user":8}"#));
        assert_ne!(a, json("invoice", r#"{"user":7}"#));
    }
}
