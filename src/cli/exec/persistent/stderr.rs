//! A child's stderr into the worker's log: one log line per line it writes, each at most
//! [`MAX_LINE`] bytes and escaped for a terminal (`cli::safe`), so a child can neither grow the
//! worker's memory nor forge log lines or send escape sequences to an operator's terminal.

use super::line::{Line, Lines, Overflow};
use crate::cli::safe::escape;
use std::collections::VecDeque;
use tokio::process::ChildStderr;
use tokio::task::JoinHandle;

/// Longest stderr line logged whole, in bytes; the rest of a longer line is cut, saying so.
pub(super) const MAX_LINE: usize = 4096;

/// How much of its last stderr output a child's failure quotes, in bytes.
pub(super) const TAIL: usize = 2048;

/// Logs each line of `stderr` as the child `pid` of `slot` writes it, until the pipe closes
/// (the child's whole group is gone). The task's output is the last lines (about [`TAIL`]
/// bytes), for the error of a job the child failed.
pub(super) fn forward(stderr: ChildStderr, pid: i32, slot: usize) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut lines = Lines::new(stderr);
        let mut tail = Tail::default();
        loop {
            let text = match lines.next(MAX_LINE, Overflow::Skip).await {
                Ok(Line::Whole(text)) => shown(&text, 0),
                Ok(Line::Over(text, cut)) => shown(&text, cut),
                Ok(Line::End(text)) if text.is_empty() => break,
                Ok(Line::End(text)) => {
                    let text = shown(&text, 0);
                    tracing::info!("--exec child {pid} (slot {slot}) stderr: {text}");
                    tail.push(text);
                    break;
                }
                Err(_) => break,
            };
            tracing::info!("--exec child {pid} (slot {slot}) stderr: {text}");
            tail.push(text);
        }
        tail.text()
    })
}

/// `bytes` as escaped text, noting `cut` bytes left out.
fn shown(bytes: &[u8], cut: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut text = escape(text.trim_end_matches('\r')).into_owned();
    if cut > 0 {
        text.push_str(&format!(" … ({cut} bytes cut)"));
    }
    text
}

/// Between two lines of the tail.
const SEPARATOR: &str = " | ";

/// The last lines, about [`TAIL`] bytes of them.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Tail {
    /// Adds a line, dropping the oldest while more than [`TAIL`] bytes are kept (the newest
    /// line is always kept).
    fn push(&mut self, line: String) {
        self.bytes += line.len() + SEPARATOR.len();
        self.lines.push_back(line);
        while self.bytes > TAIL && self.lines.len() > 1 {
            let old = self.lines.pop_front().expect("more than one line");
            self.bytes -= old.len() + SEPARATOR.len();
        }
    }

    /// The lines kept, joined by [`SEPARATOR`] (an error is one line).
    fn text(self) -> String {
        Vec::from(self.lines).join(SEPARATOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_and_the_tail_is_bounded() {
        assert_eq!(shown(b"\x1b[2Jhi\r", 3), "\\x1b[2Jhi … (3 bytes cut)");
        let mut tail = Tail::default();
        for i in 0..1000 {
            tail.push(format!("line {i}"));
        }
        let text = tail.text();
        assert!(text.ends_with("line 999"), "{text}");
        assert!(text.len() <= TAIL, "{}", text.len());
    }
}
