//! Plain-text tables and short durations for the operations commands' output.

use super::safe::{Shown, push_escaped};
use super::width::{fit, width};
use serde::Serialize;
use std::fmt::Write;

/// Columns of text, each as wide as its widest cell in display columns; numbers are
/// right-aligned. Every cell is [`Shown`]: escaped for the terminal when it enters the table.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<Shown>,
    rows: Vec<Vec<Shown>>,
    indent: usize,
    text_only: bool,
}

impl Table {
    /// A table with these column titles and no rows.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| Shown::from(*h)).collect(),
            rows: Vec::new(),
            indent: 0,
            text_only: false,
        }
    }

    /// Indents every line by `n` spaces.
    pub(crate) fn indent(mut self, n: usize) -> Table {
        self.indent = n;
        self
    }

    /// Aligns every column left, numbers too.
    pub(crate) fn text_only(mut self) -> Table {
        self.text_only = true;
        self
    }

    /// Adds a row; each cell is escaped as it enters (see `safe`).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(Shown::from).collect());
    }

    /// Whether the table has no rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending in a newline, without trailing spaces.
    pub(crate) fn render(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h.as_str())).collect();
        // A column is numeric when every cell is a number or `-`, and one at least a number.
        let mut numeric = vec![!self.text_only; cols];
        let mut any_number = vec![false; cols];
        for row in &self.rows {
            for (i, cell) in row.iter().map(Shown::as_str).enumerate().take(cols) {
                widths[i] = widths[i].max(width(cell));
                let number = cell.parse::<f64>().is_ok();
                numeric[i] &= number || cell == "-";
                any_number[i] |= number;
            }
        }
        for (n, any) in numeric.iter_mut().zip(any_number) {
            *n &= any;
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = " ".repeat(self.indent);
            for (i, cell) in row.iter().map(Shown::as_str).enumerate().take(cols) {
                let pad = widths[i] - width(cell);
                if i > 0 {
                    line.push_str("  ");
                }
                if numeric[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// A duration in ms, short: `850ms`, `12s`, `5m02s`, `3h05m`, `2d03h`.
pub(crate) fn short_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms}ms"),
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `short_ms` of an optional duration, `-` when there is none.
pub(crate) fn opt_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_string(), short_ms)
}

/// `text` on one line of at most `max` display columns, with `…` when cut: newlines, carriage
/// returns and tabs become spaces, other control characters their escapes (see `safe`). The
/// cut falls between characters and never inside an escape.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut flat = String::with_capacity(text.len());
    // Where each character of `text` ends in `flat`: the places a cut may fall.
    let mut ends = Vec::new();
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => flat.push(' '),
            _ => push_escaped(&mut flat, c),
        }
        ends.push(flat.len());
    }
    if width(&flat) <= max {
        return flat;
    }
    let room = fit(&flat, max.saturating_sub(1)).len();
    let end = ends
        .iter()
        .copied()
        .take_while(|&e| e <= room)
        .last()
        .unwrap_or(0);
    flat.truncate(end);
    flat.push('…');
    flat
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> crate::Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| crate::Error::Serialize(e.to_string()))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut t = Table::new(&["NAME", "COUNT"]);
        t.row(vec!["a".into(), "5".into()]);
        t.row(vec!["longer".into(), "120".into()]);
        assert_eq!(t.render(), "NAME    COUNT\na           5\nlonger    120\n");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_ms(850), "850ms");
        assert_eq!(short_ms(12_400), "12s");
        assert_eq!(short_ms(302_000), "5m02s");
        assert_eq!(short_ms(3 * 3_600_000 + 5 * 60_000), "3h05m");
        assert_eq!(short_ms(2 * 86_400_000 + 3 * 3_600_000), "2d03h");
        assert_eq!(clip("a\nbcdef", 4), "a b…");
    }

    #[test]
    fn cells_are_escaped_and_aligned_by_display_width() {
        let mut t = Table::new(&["TASK", "N"]);
        t.row(vec!["任务".into(), "1".into()]);
        t.row(vec!["a\x1b[2Jb".into(), "22".into()]);
        assert_eq!(t.render(), "TASK        N\n任务        1\na\\x1b[2Jb  22\n");
    }

    #[test]
    fn text_only_tables_align_numbers_left() {
        let mut t = Table::new(&["JOB", "X"]).text_only();
        t.row(vec!["7".into(), "y".into()]);
        t.row(vec!["123".into(), "z".into()]);
        assert_eq!(t.render(), "JOB  X\n7    y\n123  z\n");
    }

    #[test]
    fn clips_fit_display_columns_and_keep_escapes_whole() {
        assert_eq!(clip("任务任务", 5), "任务…");
        assert_eq!(clip("ab\x1bcdef", 5), "ab…");
        assert_eq!(clip("ab\x1bcdef", 7), "ab\\x1b…");
        assert_eq!(clip("a\u{9b}b", 20), "a\\u{9b}b");
        assert_eq!(clip("🚀🚀🚀", 4), "🚀…");
    }
}
