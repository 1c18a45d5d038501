//! A job's arguments: their [`Encoding`], the encoded bytes a handler receives ([`Payload`]),
//! and where a stream entry keeps them ([`stored_args`]).

use super::field;
use serde::de::DeserializeOwned;

/// How a job's arguments are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON text, in the field `args`: what redis-cli and the CLI write.
    Json,
    /// MessagePack with named fields, in the field `args_msgpack`: what Rust producers write.
    Msgpack,
}

impl Encoding {
    /// The encoding a value of the legacy `enc` field names.
    fn parse(value: &[u8]) -> Option<Encoding> {
        match value {
            b"json" => Some(Encoding::Json),
            b"msgpack" => Some(Encoding::Msgpack),
            _ => None,
        }
    }

    /// The stream field holding arguments of this encoding.
    #[inline]
    pub(crate) fn field(self) -> &'static str {
        match self {
            Encoding::Msgpack => field::ARGS_MSGPACK,
            Encoding::Json => field::ARGS,
        }
    }
}

/// Finds a stream entry's arguments and their encoding; `get` looks a field up by name.
///
/// - `args_msgpack`: MessagePack (what `Job::new` writes);
/// - `args`: JSON (redis-cli, the CLI, `Job::from_json`), or MessagePack when the entry also has
///   `enc` = `msgpack` (what earlier versions of `Job::new` wrote).
///
/// Both fields, neither, an unknown `enc`, or an `enc` other than `msgpack` beside
/// `args_msgpack` is refused with the reason.
pub(crate) fn stored_args<'a>(
    get: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<(Encoding, &'a [u8]), String> {
    let enc = match get(field::ENC) {
        None => None,
        Some(raw) => Some(Encoding::parse(raw).ok_or_else(|| {
            format!(
                "unknown enc {:?}: drop enc and put the args in args (json) or args_msgpack \
                 (msgpack)",
                String::from_utf8_lossy(raw)
            )
        })?),
    };
    match (get(field::ARGS), get(field::ARGS_MSGPACK)) {
        (Some(_), Some(_)) => Err(
            "both args and args_msgpack: keep one (args for JSON, args_msgpack for MessagePack)"
                .into(),
        ),
        (None, None) => Err("missing field args (JSON) or args_msgpack (MessagePack)".into()),
        (Some(args), None) => Ok((enc.unwrap_or(Encoding::Json), args)),
        (None, Some(args)) => match enc {
            None | Some(Encoding::Msgpack) => Ok((Encoding::Msgpack, args)),
            Some(Encoding::Json) => {
                Err("enc json contradicts args_msgpack: put JSON args in args".into())
            }
        },
    }
}

/// A job's encoded arguments, as a handler receives them.
#[derive(Debug, Clone)]
pub struct Payload {
    encoding: Encoding,
    bytes: Vec<u8>,
}

impl Payload {
    /// Arguments already encoded as `encoding`.
    #[inline]
    pub(crate) fn new(encoding: Encoding, bytes: Vec<u8>) -> Payload {
        Payload { encoding, bytes }
    }

    /// The encoding of [`Payload::bytes`].
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes the arguments into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        match self.encoding {
            Encoding::Json => serde_json::from_slice(&self.bytes).map_err(|e| e.to_string()),
            Encoding::Msgpack => rmp_serde::from_slice(&self.bytes).map_err(|e| e.to_string()),
        }
    }

    /// The arguments as JSON text, whatever their encoding.
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        match self.encoding {
            Encoding::Json => {
                serde_json::from_slice::<serde::de::IgnoredAny>(&self.bytes)
                    .map_err(|e| e.to_string())?;
                Ok(self.bytes.clone())
            }
            Encoding::Msgpack => {
                let value: serde_json::Value = self.decode()?;
                serde_json::to_vec(&value).map_err(|e| e.to_string())
            }
        }
    }
}
