//! Groups one file's lines into records. A plain file has one assembler and one stream. A
//! container runtime (CRI) file interleaves the container's stdout and stderr: each pipe gets
//! its own stream (`<path>#stdout`, `<path>#stderr`) and assembler, so a traceback on stderr
//! never joins a print on stdout.
//!
//! The rule a reader must not miss: a record's `end_offset` (its checkpoint once acked) never
//! passes the start of a record still open on the other pipe, or a restart would skip it.

use std::sync::Arc;

use jiff::Timestamp;

use crate::fingerprint::derived_stream_id;
use crate::format::{CriError, CriJoiner, CriStream};
use crate::lines::Line;
use crate::multiline::{AssembledRecord, RecordAssembler};
use crate::record::StreamInfo;

/// A record ready to send, the stream it belongs to, and where reading resumes after it.
pub(super) struct Closed {
    pub(super) stream: Arc<StreamInfo>,
    pub(super) record: AssembledRecord,
    pub(super) end_offset: u64,
}

/// What one line did.
pub(super) enum Pushed {
    Nothing,
    Closed(Closed),
    /// The line is not in the container runtime format: counted and skipped.
    Malformed(CriError),
}

pub(super) enum FileRecords {
    Plain {
        stream: Arc<StreamInfo>,
        assembler: RecordAssembler,
    },
    Cri {
        joiner: CriJoiner,
        /// stdout, stderr.
        pipes: Box<[(Arc<StreamInfo>, RecordAssembler); 2]>,
    },
}

impl FileRecords {
    /// A plain file's records, all in `stream`.
    pub(super) fn plain(stream: Arc<StreamInfo>, assembler: RecordAssembler) -> FileRecords {
        FileRecords::Plain { stream, assembler }
    }

    /// A container runtime file's records: `file_stream` names the file (its checkpoint); each
    /// pipe's stream is derived from it. `new_assembler` makes one assembler per pipe.
    pub(super) fn cri(
        file_stream: &Arc<StreamInfo>,
        max_line_bytes: usize,
        mut new_assembler: impl FnMut() -> RecordAssembler,
    ) -> FileRecords {
        let pipe = |index: u64, name: &str| {
            Arc::new(StreamInfo {
                id: derived_stream_id(file_stream.id, "cri pipe", index),
                checkpoint_id: file_stream.id,
                source: format!("{}#{name}", file_stream.source),
                ..StreamInfo::clone(file_stream)
            })
        };
        FileRecords::Cri {
            joiner: CriJoiner::new(max_line_bytes),
            pipes: Box::new([
                (pipe(1, "stdout"), new_assembler()),
                (pipe(2, "stderr"), new_assembler()),
            ]),
        }
    }

    /// Takes the next line of the file, read at `read_at`.
    pub(super) fn push(&mut self, line: &Line<'_>, read_at: Timestamp) -> Pushed {
        match self {
            FileRecords::Plain { stream, assembler } => {
                match assembler.push_line(&line.text, line.offset, read_at, line.truncated) {
                    Some(record) => Pushed::Closed(Closed {
                        stream: Arc::clone(stream),
                        record,
                        end_offset: line.offset,
                    }),
                    None => Pushed::Nothing,
                }
            }
            FileRecords::Cri { joiner, pipes } => {
                let joined = match joiner.push(&line.text) {
                    Ok(Some(joined)) => joined,
                    Ok(None) => return Pushed::Nothing,
                    Err(error) => return Pushed::Malformed(error),
                };
                let this = pipe_index(joined.stream);
                let other = 1 - this;
                // Content without a Dask header takes the runtime's timestamp; the line's seq
                // is the offset of the part that completes it.
                let closed = pipes[this].1.push_line(
                    &joined.content,
                    line.offset,
                    joined.ts,
                    joined.truncated,
                );
                match closed {
                    Some(record) => {
                        let other_open = pipes[other].1.open_record_offset();
                        Pushed::Closed(Closed {
                            stream: Arc::clone(&pipes[this].0),
                            record,
                            end_offset: other_open
                                .map_or(line.offset, |start| start.min(line.offset)),
                        })
                    }
                    None => Pushed::Nothing,
                }
            }
        }
    }

    /// Closes every open record (the file went quiet, or is let go); reading would resume at
    /// `complete_lines_end`. When the file is let go for good (`last`), container lines still
    /// waiting for their final part are closed too, rather than lost.
    pub(super) fn flush(&mut self, complete_lines_end: u64, last: bool) -> Vec<Closed> {
        let closed = |stream: &Arc<StreamInfo>, record| Closed {
            stream: Arc::clone(stream),
            record,
            end_offset: complete_lines_end,
        };
        let mut flushed = Vec::new();
        match self {
            FileRecords::Plain { stream, assembler } => {
                flushed.extend(assembler.flush().map(|record| closed(stream, record)));
            }
            FileRecords::Cri { joiner, pipes } => {
                if last {
                    for part in joiner.flush() {
                        let (stream, assembler) = &mut pipes[pipe_index(part.stream)];
                        // The parts are whole lines of the file: their seq is past them all.
                        let record = assembler.push_line(
                            &part.content,
                            complete_lines_end,
                            part.ts,
                            part.truncated,
                        );
                        flushed.extend(record.map(|record| closed(stream, record)));
                    }
                }
                for (stream, assembler) in pipes.iter_mut() {
                    flushed.extend(assembler.flush().map(|record| closed(stream, record)));
                }
            }
        }
        flushed
    }

    /// Tells whether a record waits for continuation lines.
    pub(super) fn has_open_record(&self) -> bool {
        match self {
            FileRecords::Plain { assembler, .. } => assembler.has_open_record(),
            FileRecords::Cri { pipes, .. } => pipes
                .iter()
                .any(|(_, assembler)| assembler.has_open_record()),
        }
    }
}

fn pipe_index(stream: CriStream) -> usize {
    match stream {
        CriStream::Stdout => 0,
        CriStream::Stderr => 1,
    }
}
