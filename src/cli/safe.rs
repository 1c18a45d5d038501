//! Text from Redis made safe for a terminal: characters a terminal acts on become visible
//! escapes.
//!
//! Whatever a producer or a worker wrote (task names, job ids, errors, args, consumer names,
//! results) may hold a newline that forges a line of output, or an escape sequence that
//! clears the operator's screen or sets the window title. The human output shows such text
//! only as [`Shown`], built by [`escape`]. `--json` output does not go through here: JSON
//! escapes control characters itself and keeps the exact text.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// `text` with every character a terminal acts on written as a visible escape: `\n`, `\r`,
/// `\t`; the other C0 controls and DEL as `\x00`..`\x1f`, `\x7f`; the C1 controls (U+0080 to
/// U+009F, CSI U+009B among them), the Unicode line and paragraph separators and the
/// bidirectional controls as `\u{9b}`, `\u{2028}`, `\u{202e}`. Every other character is kept,
/// backslashes too, so escaping escaped text changes nothing.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends `c` to `out`, as its escape when [`escape`] would write one.
pub(crate) fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0'..='\x1f' | '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        _ if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        _ => out.push(c),
    }
}

/// Whether a terminal may act on `c` rather than draw it: a control character (C0, DEL, C1),
/// a line or paragraph separator, or a bidirectional control that reorders what follows.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Text ready for a terminal: it can only be built through [`escape`], so it holds no
/// character a terminal acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shown(String);

impl Shown {
    /// The escaped text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Shown {
    fn from(text: &str) -> Shown {
        Shown(escape(text).into_owned())
    }
}

impl From<&String> for Shown {
    fn from(text: &String) -> Shown {
        Shown::from(text.as_str())
    }
}

impl From<String> for Shown {
    fn from(text: String) -> Shown {
        match escape(&text) {
            Cow::Borrowed(_) => Shown(text),
            Cow::Owned(escaped) => Shown(escaped),
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(
            escape("\x1b[2J\x1b]0;title\x07"),
            "\\x1b[2J\\x1b]0;title\\x07"
        );
        assert_eq!(
            escape("\0\x7f\u{9b}31m\u{85}"),
            "\\x00\\x7f\\u{9b}31m\\u{85}"
        );
        assert_eq!(escape("abc\u{202e}cba\u{2028}"), "abc\\u{202e}cba\\u{2028}");
    }

    #[test]
    fn other_text_is_kept_and_escaping_twice_changes_nothing() {
        for text in ["plain", "tâche 任务 🚀", "C:\\path\\n", ""] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
        let once = escape("x\n\x1b\u{9b}").into_owned();
        assert_eq!(escape(&once), once);
        assert_eq!(Shown::from("a\nb".to_string()).to_string(), "a\\nb");
    }
}
