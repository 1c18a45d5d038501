//! Lines read from a pipe with a bound on their length, so a child that never writes a newline
//! cannot grow the worker's memory.

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The pipe's buffer: a reply of a few hundred bytes is read in one system call.
const BUFFER: usize = 64 * 1024;

/// One line as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// A whole line, without its `\n`.
    Whole(Vec<u8>),
    /// A line longer than the bound: its first `max` bytes, and how many bytes were cut (those
    /// read before the read stopped; see [`Overflow`]).
    Over(Vec<u8>, usize),
    /// The end of the pipe, with the bytes of an unfinished last line.
    End(Vec<u8>),
}

/// What to do with the rest of a line over the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overflow {
    /// Stop reading at once (the writer is not trusted to ever end the line).
    Stop,
    /// Read and drop the rest, up to the newline, so the next line starts clean.
    Skip,
}

/// A pipe read line by line.
#[derive(Debug)]
pub(super) struct Lines<R> {
    reader: BufReader<R>,
    /// The line read so far: kept across a read that was dropped, so none of it is lost.
    line: Vec<u8>,
    /// Bytes cut from the current line so far.
    cut: usize,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    /// Reads `pipe` by lines.
    pub(super) fn new(pipe: R) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(BUFFER, pipe),
            line: Vec::new(),
            cut: 0,
        }
    }

    /// The next line, of at most `max` bytes (the newline not counted). Cancel-safe: a read
    /// dropped half-way keeps what it read for the next call.
    pub(super) async fn next(&mut self, max: usize, overflow: Overflow) -> io::Result<Line> {
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                self.cut = 0;
                return Ok(Line::End(std::mem::take(&mut self.line)));
            }
            let newline = buf.iter().position(|&b| b == b'\n');
            let part = &buf[..newline.unwrap_or(buf.len())];
            let room = max - self.line.len();
            let kept = part.len().min(room);
            self.line.extend_from_slice(&part[..kept]);
            self.cut += part.len() - kept;
            let consumed = newline.map_or(part.len(), |n| n + 1);
            self.reader.consume(consumed);
            let over = self.cut > 0;
            if newline.is_some() || (over && overflow == Overflow::Stop) {
                let line = std::mem::take(&mut self.line);
                let cut = std::mem::take(&mut self.cut);
                return Ok(if over {
                    Line::Over(line, cut)
                } else {
                    Line::Whole(line)
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize, overflow: Overflow) -> Vec<Line> {
        let mut lines = Lines::new(input);
        let mut out = Vec::new();
        loop {
            let line = lines.next(max, overflow).await.unwrap();
            let end = matches!(line, Line::End(_));
            out.push(line);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_at_newlines_and_bounds_each_line() {
        let got = lines(b"ab\n\nabcdef\nxy", 4, Overflow::Skip).await;
        assert_eq!(
            got,
            vec![
                Line::Whole(b"ab".to_vec()),
                Line::Whole(Vec::new()),
                Line::Over(b"abcd".to_vec(), 2),
                Line::End(b"xy".to_vec()),
            ]
        );
        let got = lines(b"abcdefgh\nxy\n", 4, Overflow::Stop).await;
        assert_eq!(got[0], Line::Over(b"abcd".to_vec(), 4));
        let got = lines(b"abcd\n", 4, Overflow::Stop).await;
        assert_eq!(got[0], Line::Whole(b"abcd".to_vec()));
    }
}
