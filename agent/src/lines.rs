//! Splits a byte stream (a file or a pipe) into lines. A line is handed out only once its
//! newline has arrived; a line longer than the limit is cut there, flagged, and the rest of it
//! skipped, so one long line never stalls a stream. Offsets count bytes from the start.

use std::borrow::Cow;

/// A buffer for a line split across reads keeps its memory up to this size.
const PARTIAL_LINE_KEPT_BYTES: usize = 64 * 1024;

/// One complete line.
pub struct Line<'a> {
    /// The line without its line ending; invalid UTF-8 replaced by U+FFFD.
    pub text: Cow<'a, str>,
    /// Offset of the line's first byte.
    pub offset: u64,
    /// The line was longer than the limit and was cut.
    pub truncated: bool,
    /// The line held bytes that are not UTF-8.
    pub invalid_utf8: bool,
}

impl Line<'_> {
    fn from_bytes(bytes: &[u8], offset: u64, truncated: bool) -> Line<'_> {
        let content = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        // `from_utf8` checks ASCII a word at a time; the lossy path only runs for bad bytes.
        let text = match std::str::from_utf8(content) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(content),
        };
        let invalid_utf8 = matches!(text, Cow::Owned(_));
        Line {
            text,
            offset,
            truncated,
            invalid_utf8,
        }
    }
}

/// The state of a stream between two reads: the line whose newline has not arrived yet.
#[derive(Debug)]
pub struct LineSplitter {
    read_offset: u64,
    partial_line: Vec<u8>,
    partial_line_offset: u64,
    partial_line_truncated: bool,
    max_line_bytes: usize,
}

impl LineSplitter {
    /// Starts at `offset`, which must be the start of a line.
    pub fn new(offset: u64, max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            read_offset: offset,
            partial_line: Vec::new(),
            partial_line_offset: offset,
            partial_line_truncated: false,
            max_line_bytes,
        }
    }

    /// Offset of the next byte to push.
    pub fn read_offset(&self) -> u64 {
        self.read_offset
    }

    /// Offset just after the last complete line: where a new reader would resume.
    pub fn complete_lines_end(&self) -> u64 {
        self.partial_line_offset
    }

    /// Takes the next bytes of the stream and calls `on_line` with every line they complete,
    /// until `on_line` returns false. Returns how many lines were handed out and whether it
    /// stopped early (then the rest of `bytes` is dropped: the caller is shutting down).
    pub fn push(&mut self, bytes: &[u8], mut on_line: impl FnMut(Line<'_>) -> bool) -> (u64, bool) {
        let mut line_start = 0;
        let mut lines = 0;
        for newline in memchr::memchr_iter(b'\n', bytes) {
            let piece = &bytes[line_start..newline];
            let offset = self.partial_line_offset;
            line_start = newline + 1;
            self.partial_line_offset = self.read_offset + line_start as u64;
            lines += 1;
            let go_on = if self.partial_line.is_empty() && !self.partial_line_truncated {
                // The whole line is in this read: handed out where it lies, not copied.
                let truncated = piece.len() > self.max_line_bytes;
                let piece = &piece[..piece.len().min(self.max_line_bytes)];
                on_line(Line::from_bytes(piece, offset, truncated))
            } else {
                self.append_partial(piece);
                let truncated = std::mem::take(&mut self.partial_line_truncated);
                let go_on = on_line(Line::from_bytes(&self.partial_line, offset, truncated));
                self.partial_line.clear();
                if self.partial_line.capacity() > PARTIAL_LINE_KEPT_BYTES {
                    self.partial_line = Vec::new();
                }
                go_on
            };
            if !go_on {
                self.read_offset += bytes.len() as u64;
                return (lines, true);
            }
        }
        self.append_partial(&bytes[line_start..]);
        self.read_offset += bytes.len() as u64;
        (lines, false)
    }

    /// The stream has ended: hands out its last line even without a newline.
    pub fn finish(&mut self, on_line: impl FnOnce(Line<'_>)) {
        if self.partial_line.is_empty() && !self.partial_line_truncated {
            return;
        }
        let line_bytes = std::mem::take(&mut self.partial_line);
        let truncated = std::mem::take(&mut self.partial_line_truncated);
        let offset = self.partial_line_offset;
        self.partial_line_offset = self.read_offset;
        on_line(Line::from_bytes(&line_bytes, offset, truncated));
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.partial_line.len());
        if bytes.len() > room {
            self.partial_line_truncated = true;
        }
        self.partial_line
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(splitter: &mut LineSplitter, bytes: &[u8]) -> Vec<(u64, String, bool, bool)> {
        let mut lines = Vec::new();
        splitter.push(bytes, |line| {
            lines.push((
                line.offset,
                line.text.into_owned(),
                line.truncated,
                line.invalid_utf8,
            ));
            true
        });
        lines
    }

    #[test]
    fn lines_complete_across_pushes_with_their_offsets() {
        let mut splitter = LineSplitter::new(0, 1000);
        assert_eq!(
            split(&mut splitter, b"one\r\ntw"),
            vec![(0, "one".to_owned(), false, false)]
        );
        assert_eq!(
            (splitter.complete_lines_end(), splitter.read_offset()),
            (5, 7)
        );
        let lines = split(&mut splitter, b"o\nthree\n");
        assert_eq!(
            lines,
            vec![
                (5, "two".to_owned(), false, false),
                (9, "three".to_owned(), false, false)
            ]
        );
        assert_eq!(splitter.complete_lines_end(), 15);
    }

    #[test]
    fn a_long_line_is_cut_and_flagged_and_invalid_utf8_replaced() {
        let mut splitter = LineSplitter::new(0, 4);
        let lines = split(&mut splitter, b"abcdefgh\nok\nbad \xff\n");
        assert_eq!(lines[0], (0, "abcd".to_owned(), true, false));
        assert_eq!(lines[1], (9, "ok".to_owned(), false, false));
        assert_eq!(lines[2], (12, "bad ".to_owned(), true, false));
        let mut splitter = LineSplitter::new(0, 100);
        let lines = split(&mut splitter, b"bad \xff\xfe bytes\n");
        assert_eq!(
            (lines[0].1.as_str(), lines[0].3),
            ("bad \u{fffd}\u{fffd} bytes", true)
        );
    }

    #[test]
    fn finish_hands_out_a_last_line_without_newline() {
        let mut splitter = LineSplitter::new(10, 100);
        split(&mut splitter, b"a\npartial");
        let mut last = None;
        splitter.finish(|line| last = Some((line.offset, line.text.into_owned())));
        assert_eq!(last, Some((12, "partial".to_owned())));
        assert_eq!(splitter.complete_lines_end(), 19);
    }
}
