//! Reads one open file from an offset and splits what it reads into lines. A line is handed
//! out only once its newline has arrived; a line longer than the limit is cut there, flagged,
//! and the rest of it skipped, so one long line never stalls the file.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read per `read` call.
const CHUNK_BYTES: usize = 64 * 1024;
/// How many of the last bytes read are kept to recognise a copy of this file.
pub(crate) const RECENT_BYTES: usize = 64;

/// One complete line.
pub(crate) struct Line<'a> {
    /// The line without its line ending; invalid UTF-8 replaced by U+FFFD.
    pub(crate) text: Cow<'a, str>,
    /// Offset of the line's first byte.
    pub(crate) offset: u64,
    /// The line was longer than the limit and was cut.
    pub(crate) truncated: bool,
    /// The line held bytes that are not UTF-8.
    pub(crate) invalid_utf8: bool,
}

/// What one call to `read_lines` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadOutcome {
    pub(crate) bytes: u64,
    pub(crate) lines: u64,
    /// The line callback asked to stop.
    pub(crate) stopped: bool,
}

/// A file being read line by line.
pub(crate) struct LineReader {
    /// `None` while the file is closed for being idle; offsets and buffers are kept.
    file: Option<File>,
    read_offset: u64,
    partial_line: Vec<u8>,
    partial_line_offset: u64,
    partial_line_truncated: bool,
    recent: Vec<u8>,
    max_line_bytes: usize,
    chunk: Vec<u8>,
}

impl LineReader {
    /// Starts reading `file` at `offset`, which must be the start of a line.
    pub(crate) fn new(
        mut file: File,
        offset: u64,
        max_line_bytes: usize,
    ) -> io::Result<LineReader> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(LineReader {
            file: Some(file),
            read_offset: offset,
            partial_line: Vec::new(),
            partial_line_offset: offset,
            partial_line_truncated: false,
            recent: Vec::with_capacity(RECENT_BYTES),
            max_line_bytes,
            chunk: vec![0; CHUNK_BYTES],
        })
    }

    /// The open file, unless it is closed for being idle.
    pub(crate) fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Closes the file descriptor; `reopen` continues where reading stopped.
    pub(crate) fn close(&mut self) {
        self.file = None;
    }

    /// Continues reading in `file` (the same file, opened again) at the read offset.
    pub(crate) fn reopen(&mut self, mut file: File) -> io::Result<()> {
        file.seek(SeekFrom::Start(self.read_offset))?;
        self.file = Some(file);
        Ok(())
    }

    /// Offset of the next byte to read.
    pub(crate) fn read_offset(&self) -> u64 {
        self.read_offset
    }

    /// Offset just after the last complete line: where a new reader would resume.
    pub(crate) fn complete_lines_end(&self) -> u64 {
        self.partial_line_offset
    }

    /// The last bytes read (at most `RECENT_BYTES`), ending at `read_offset`.
    pub(crate) fn recent_bytes(&self) -> &[u8] {
        &self.recent
    }

    /// Reads at most `budget` bytes and calls `on_line` with every line they complete, until
    /// the end of the file, the budget, or `on_line` returning false.
    pub(crate) fn read_lines(
        &mut self,
        budget: usize,
        on_line: impl FnMut(Line<'_>) -> bool,
    ) -> io::Result<ReadOutcome> {
        let Some(mut file) = self.file.take() else {
            return Ok(ReadOutcome::default());
        };
        let outcome = self.read_lines_from(&mut file, budget, on_line);
        self.file = Some(file);
        outcome
    }

    fn read_lines_from(
        &mut self,
        file: &mut File,
        budget: usize,
        mut on_line: impl FnMut(Line<'_>) -> bool,
    ) -> io::Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        while (outcome.bytes as usize) < budget {
            let read = file.read(&mut self.chunk)?;
            if read == 0 {
                break;
            }
            outcome.bytes += read as u64;
            let chunk = std::mem::take(&mut self.chunk);
            let mut line_start = 0;
            for newline in chunk[..read]
                .iter()
                .enumerate()
                .filter_map(|(index, &byte)| (byte == b'\n').then_some(index))
            {
                self.append_partial(&chunk[line_start..newline]);
                line_start = newline + 1;
                let bytes = std::mem::take(&mut self.partial_line);
                let offset = self.partial_line_offset;
                let truncated = std::mem::take(&mut self.partial_line_truncated);
                self.partial_line_offset = self.read_offset + line_start as u64;
                outcome.lines += 1;
                let content = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
                let text = String::from_utf8_lossy(content);
                let invalid_utf8 = matches!(text, Cow::Owned(_));
                let keep_going = on_line(Line {
                    text,
                    offset,
                    truncated,
                    invalid_utf8,
                });
                if !keep_going {
                    outcome.stopped = true;
                    break;
                }
            }
            if !outcome.stopped {
                self.append_partial(&chunk[line_start..read]);
            }
            self.remember_recent(&chunk[..read]);
            self.read_offset += read as u64;
            self.chunk = chunk;
            if outcome.stopped {
                break;
            }
        }
        Ok(outcome)
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.partial_line.len());
        if bytes.len() > room {
            self.partial_line_truncated = true;
        }
        self.partial_line
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn remember_recent(&mut self, bytes: &[u8]) {
        if bytes.len() >= RECENT_BYTES {
            self.recent.clear();
            self.recent
                .extend_from_slice(&bytes[bytes.len() - RECENT_BYTES..]);
        } else {
            self.recent.extend_from_slice(bytes);
            let excess = self.recent.len().saturating_sub(RECENT_BYTES);
            self.recent.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn lines_of(reader: &mut LineReader) -> io::Result<Vec<(u64, String, bool, bool)>> {
        let mut lines = Vec::new();
        reader.read_lines(usize::MAX, |line| {
            lines.push((
                line.offset,
                line.text.into_owned(),
                line.truncated,
                line.invalid_utf8,
            ));
            true
        })?;
        Ok(lines)
    }

    #[test]
    fn hands_out_lines_only_when_their_newline_arrives() -> io::Result<()> {
        let mut file = tempfile::NamedTempFile::new()?;
        file.write_all(b"one\r\ntw")?;
        let mut reader = LineReader::new(File::open(file.path())?, 0, 1000)?;
        assert_eq!(
            lines_of(&mut reader)?,
            vec![(0, "one".to_owned(), false, false)]
        );
        assert_eq!((reader.complete_lines_end(), reader.read_offset()), (5, 7));
        file.write_all(b"o\nthree\n")?;
        let lines = lines_of(&mut reader)?;
        assert_eq!(
            lines,
            vec![
                (5, "two".to_owned(), false, false),
                (9, "three".to_owned(), false, false)
            ]
        );
        assert_eq!(reader.complete_lines_end(), 15);
        assert_eq!(reader.recent_bytes(), b"one\r\ntwo\nthree\n");
        Ok(())
    }

    #[test]
    fn a_long_line_is_cut_flagged_and_reading_goes_on() -> io::Result<()> {
        let mut file = tempfile::tempfile()?;
        let long = "x".repeat(200_000);
        file.write_all(format!("{long}\nnext\n").as_bytes())?;
        let mut reader = LineReader::new(file, 0, 1000)?;
        let lines = lines_of(&mut reader)?;
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].1.len(), lines[0].2), (1000, true));
        assert_eq!(lines[1], (200_001, "next".to_owned(), false, false));
        Ok(())
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() -> io::Result<()> {
        let mut file = tempfile::tempfile()?;
        file.write_all(b"ok\nbad \xff\xfe bytes\n")?;
        let mut reader = LineReader::new(file, 0, 1000)?;
        let lines = lines_of(&mut reader)?;
        assert!(!lines[0].3);
        assert_eq!(lines[1].1, "bad \u{fffd}\u{fffd} bytes");
        assert!(lines[1].3);
        Ok(())
    }

    #[test]
    fn resumes_at_an_offset_and_stops_when_asked() -> io::Result<()> {
        let mut file = tempfile::tempfile()?;
        file.write_all(b"a\nb\nc\nd\n")?;
        let mut reader = LineReader::new(file, 4, 1000)?;
        let mut seen = Vec::new();
        let outcome = reader.read_lines(usize::MAX, |line| {
            seen.push(line.text.into_owned());
            false
        })?;
        assert!(outcome.stopped);
        assert_eq!(seen, ["c"]);
        assert_eq!(reader.complete_lines_end(), 6);
        Ok(())
    }
}
