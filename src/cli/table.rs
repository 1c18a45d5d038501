//! Plain-text tables and short durations for the operations commands' output.

use serde::Serialize;
use std::fmt::Write;

/// Columns of text, each as wide as its widest cell; numbers are right-aligned.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    indent: usize,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// Indents every line by `n` spaces.
    pub(crate) fn indent(mut self, n: usize) -> Table {
        self.indent = n;
        self
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending in a newline, without trailing spaces.
    pub(crate) fn render(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        // A column is numeric when every cell is a number or `-`, and one at least a number.
        let mut numeric = vec![true; cols];
        let mut any_number = vec![false; cols];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
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
            for (i, cell) in row.iter().enumerate().take(cols) {
                let pad = widths[i] - cell.chars().count();
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

/// `text` cut to `max` characters, with `…` when cut; newlines become spaces.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
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
}
