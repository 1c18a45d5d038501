//! Job priorities: one stream each, served strictly high before default before low.

use std::fmt;
use std::str::FromStr;

/// How urgent a job is. Workers take every `High` job before any `Default` one, and every
/// `Default` before any `Low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// Served first.
    High,
    /// The priority of a job that names none.
    #[default]
    Default,
    /// Served when nothing else waits.
    Low,
}

impl Priority {
    /// Every priority, in the order workers serve them.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Default, Priority::Low];

    /// The name used in stream keys, the CLI and dead-stream records.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Default => "default",
            Priority::Low => "low",
        }
    }

    /// 1-based position in [`Priority::ALL`]; the scripts' KEYS index of its stream.
    pub(crate) fn index(self) -> usize {
        match self {
            Priority::High => 1,
            Priority::Default => 2,
            Priority::Low => 3,
        }
    }

    /// The inverse of [`Priority::index`].
    pub(crate) fn from_index(index: i64) -> Option<Priority> {
        match index {
            1 => Some(Priority::High),
            2 => Some(Priority::Default),
            3 => Some(Priority::Low),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Priority {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The error of parsing a [`Priority`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown priority {0:?}: use high, default or low")]
pub struct ParsePriorityError(String);

impl FromStr for Priority {
    type Err = ParsePriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "high" => Ok(Priority::High),
            "default" => Ok(Priority::Default),
            "low" => Ok(Priority::Low),
            other => Err(ParsePriorityError(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_every_priority() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
            assert_eq!(Priority::from_index(p.index() as i64), Some(p));
        }
        assert!("urgent".parse::<Priority>().is_err());
    }
}
