//! Reading lines with a bound on their length: a line longer than the bound is skipped to
//! its end and reported, never held whole in memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line: its 1-based number and its bytes without the line ending (`\n` or `\r\n`),
/// or the fact that it was too long.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes.
    Text(&'a [u8]),
    /// The line had more bytes than allowed; this many were seen.
    TooLong(usize),
}

/// Reads lines one at a time, reusing one buffer.
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    max_bytes: usize,
    number: u64,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Lines longer than `max_bytes` are reported as [`Line::TooLong`].
    pub fn new(reader: R, max_bytes: usize) -> Self {
        LineReader {
            reader,
            buf: Vec::new(),
            max_bytes,
            number: 0,
        }
    }

    /// A reader placed after `lines` lines (the file was positioned at the start of the
    /// next one).
    pub fn after(reader: R, max_bytes: usize, lines: u64) -> Self {
        LineReader {
            number: lines,
            ..LineReader::new(reader, max_bytes)
        }
    }

    /// Consumes the next line through its newline, copying it into `buf` (up to just past
    /// the limit) when `keep`. Returns the bytes it had, or `None` at the end.
    async fn consume_line(&mut self, keep: bool) -> std::io::Result<Option<usize>> {
        let mut seen = 0usize;
        let mut any = false;
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            seen += take;
            if keep && seen <= self.max_bytes + 2 {
                self.buf.extend_from_slice(&chunk[..take]);
            }
            self.reader.consume(take);
            if done {
                break;
            }
        }
        if any {
            self.number += 1;
        }
        Ok(any.then_some(seen))
    }

    /// Passes over the next line without copying it; false at the end of the input.
    pub async fn skip_line(&mut self) -> std::io::Result<bool> {
        Ok(self.consume_line(false).await?.is_some())
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.number
    }

    /// The next line and its number, or `None` at the end. A last line without a newline
    /// is still a line.
    pub async fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let Some(seen) = self.consume_line(true).await? else {
            return Ok(None);
        };
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let length = if seen > self.max_bytes + 2 {
            seen
        } else {
            self.buf.len()
        };
        if length > self.max_bytes {
            return Ok(Some((self.number, Line::TooLong(length))));
        }
        Ok(Some((self.number, Line::Text(&self.buf))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<(u64, Result<Vec<u8>, usize>)> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some((n, line)) = r.next_line().await.unwrap() {
            out.push((
                n,
                match line {
                    Line::Text(t) => Ok(t.to_vec()),
                    Line::TooLong(len) => Err(len),
                },
            ));
        }
        out
    }

    #[tokio::test]
    async fn splits_on_lf_and_crlf_and_keeps_a_last_line_without_newline() {
        let lines = all(b"a\r\nbb\n\nccc", 100).await;
        assert_eq!(
            lines,
            vec![
                (1, Ok(b"a".to_vec())),
                (2, Ok(b"bb".to_vec())),
                (3, Ok(vec![])),
                (4, Ok(b"ccc".to_vec()))
            ]
        );
        assert!(all(b"", 100).await.is_empty());
    }

    #[tokio::test]
    async fn skipping_keeps_the_line_count() {
        let mut r = LineReader::new(&b"a\nbb\nccc"[..], 100);
        assert!(r.skip_line().await.unwrap());
        assert_eq!(r.next_line().await.unwrap(), Some((2, Line::Text(b"bb"))));
        assert!(r.skip_line().await.unwrap());
        assert_eq!(r.lines_read(), 3);
        assert!(!r.skip_line().await.unwrap());
    }

    #[tokio::test]
    async fn reports_long_lines_and_goes_on() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\nok\n");
        let lines = all(&input, 10).await;
        assert_eq!(lines[0], (1, Err(1001)));
        assert_eq!(lines[1], (2, Ok(b"ok".to_vec())));
    }
}
