//! Display width of text as a terminal draws it: CJK characters and most emoji take two
//! columns, combining marks none. Each character counts its own width, as terminals that go
//! by `wcwidth` draw it.

use unicode_width::UnicodeWidthChar;

/// Columns one character takes; a control character (never drawn: see `safe`) takes none.
fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Columns `text` takes.
pub(crate) fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// The longest start of `text` that takes at most `max` columns, cut between characters.
pub(crate) fn fit(text: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        used += char_width(c);
        if used > max {
            return &text[..i];
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("任务"), 4);
        assert_eq!(width("🚀x"), 3);
        assert_eq!(width("e\u{301}"), 1);
    }

    #[test]
    fn a_cut_never_splits_a_character_nor_overflows() {
        assert_eq!(fit("任务ab", 3), "任");
        assert_eq!(fit("任务ab", 4), "任务");
        assert_eq!(fit("a🚀", 2), "a");
        assert_eq!(fit("abc", 10), "abc");
        assert_eq!(fit("任", 1), "");
    }
}
