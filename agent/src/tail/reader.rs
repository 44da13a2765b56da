//! Reads one open file from an offset and splits what it reads into lines (`LineSplitter`).
//! Keeps the last bytes read, so that a copy or a rewrite of the file can be recognised.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use crate::lines::{Line, LineSplitter};

/// Bytes read per `read` call.
const CHUNK_BYTES: usize = 64 * 1024;
/// How many of the last bytes read are kept to recognise a copy of this file.
pub(crate) const RECENT_BYTES: usize = 64;

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
    splitter: LineSplitter,
    recent: Vec<u8>,
    /// The read buffer; empty while the file is closed: 10,000 idle files each holding 64 KiB
    /// would hold 640 MiB.
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
            splitter: LineSplitter::new(offset, max_line_bytes),
            recent: Vec::with_capacity(RECENT_BYTES),
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
        self.chunk = Vec::new();
    }

    /// Continues reading in `file` (the same file, opened again) at the read offset.
    pub(crate) fn reopen(&mut self, mut file: File) -> io::Result<()> {
        file.seek(SeekFrom::Start(self.read_offset()))?;
        self.file = Some(file);
        Ok(())
    }

    /// Offset of the next byte to read.
    pub(crate) fn read_offset(&self) -> u64 {
        self.splitter.read_offset()
    }

    /// Offset just after the last complete line: where a new reader would resume.
    pub(crate) fn complete_lines_end(&self) -> u64 {
        self.splitter.complete_lines_end()
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
        mut on_line: impl FnMut(Line<'_>) -> bool,
    ) -> io::Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        let Some(file) = self.file.as_mut() else {
            return Ok(outcome);
        };
        if self.chunk.is_empty() {
            self.chunk = vec![0; CHUNK_BYTES];
        }
        while (outcome.bytes as usize) < budget {
            let read = file.read(&mut self.chunk)?;
            if read == 0 {
                break;
            }
            outcome.bytes += read as u64;
            let (lines, stopped) = self.splitter.push(&self.chunk[..read], &mut on_line);
            outcome.lines += lines;
            remember_recent(&mut self.recent, &self.chunk[..read]);
            if stopped {
                outcome.stopped = true;
                break;
            }
        }
        Ok(outcome)
    }
}

fn remember_recent(recent: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() >= RECENT_BYTES {
        recent.clear();
        recent.extend_from_slice(&bytes[bytes.len() - RECENT_BYTES..]);
    } else {
        recent.extend_from_slice(bytes);
        let excess = recent.len().saturating_sub(RECENT_BYTES);
        recent.drain(..excess);
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

    #[test]
    fn a_closed_reader_holds_no_read_buffer_and_reads_on_after_reopening() -> io::Result<()> {
        let mut file = tempfile::NamedTempFile::new()?;
        file.write_all(b"one\n")?;
        let mut reader = LineReader::new(File::open(file.path())?, 0, 1000)?;
        assert_eq!(lines_of(&mut reader)?.len(), 1);
        reader.close();
        assert_eq!(
            reader.chunk.capacity(),
            0,
            "an idle file keeps no 64 KiB buffer"
        );
        file.write_all(b"two\n")?;
        reader.reopen(File::open(file.path())?)?;
        assert_eq!(
            lines_of(&mut reader)?,
            vec![(4, "two".to_owned(), false, false)]
        );
        Ok(())
    }
}
