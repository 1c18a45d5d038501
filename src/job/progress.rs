//! A running job's progress as its handler reports it ([`JobContext::progress`]), and the
//! fields of the hash that keeps it.
//!
//! [`JobContext::progress`]: crate::JobContext::progress

use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// Field: how far, 0 to 100.
pub(crate) const PERCENT: &str = "percent";
/// Field: what the handler said.
pub(crate) const MESSAGE: &str = "message";
/// Field: when it was said, by Redis's clock, in ms since the epoch.
pub(crate) const UPDATED_MS: &str = "updated_ms";

/// How long a progress report is kept after the last one.
pub(crate) const PROGRESS_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest progress message kept, in bytes; a longer one is cut at a character boundary.
pub const MAX_PROGRESS_MESSAGE_BYTES: usize = 1024;

/// The last progress a job's handler reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// How far, 0 to 100.
    pub percent: u8,
    /// What the handler said with it (may be empty).
    pub message: String,
    /// When, in ms since the Unix epoch (Redis's clock).
    pub updated_ms: u64,
}

impl Progress {
    /// The progress stored in `fields`, if they hold one.
    pub(crate) fn from_fields(fields: &HashMap<String, Vec<u8>>) -> Option<Progress> {
        let text = |name: &str| {
            fields
                .get(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        Some(Progress {
            percent: text(PERCENT)?.parse().ok()?,
            message: text(MESSAGE).unwrap_or_default(),
            updated_ms: text(UPDATED_MS).and_then(|t| t.parse().ok()).unwrap_or(0),
        })
    }
}

/// `message` cut to [`MAX_PROGRESS_MESSAGE_BYTES`] at a character boundary.
pub(crate) fn bounded(message: &str) -> &str {
    if message.len() <= MAX_PROGRESS_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_PROGRESS_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_at_a_character() {
        let long = "é".repeat(MAX_PROGRESS_MESSAGE_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_PROGRESS_MESSAGE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded("half"), "half");
    }

    #[test]
    fn reads_back_what_was_stored() {
        let fields: HashMap<String, Vec<u8>> = [
            (PERCENT.to_string(), b"40".to_vec()),
            (MESSAGE.to_string(), b"resized".to_vec()),
            (UPDATED_MS.to_string(), b"1700000000000".to_vec()),
        ]
        .into();
        assert_eq!(
            Progress::from_fields(&fields),
            Some(Progress {
                percent: 40,
                message: "resized".into(),
                updated_ms: 1_700_000_000_000
            })
        );
        assert_eq!(Progress::from_fields(&HashMap::new()), None);
    }
}
