//! Groups one file's lines into records. A plain file has one assembler and one stream. A
//! container runtime (CRI) file interleaves the container's stdout and stderr: each pipe gets
//! its own stream (`<path>#stdout`, `<path>#stderr`) and assembler, so a traceback on stderr
//! never joins a print on stdout.
//!
//! The rule a reader must not miss: a record's `end_offset` (its checkpoint once acked) never
//! passes the start of a record still open on the other pipe, or a restart would skip it.

use std::sync::Arc;

use crate::fingerprint::derived_stream_id;
use crate::format::{CriError, CriJoiner, CriStream};
use crate::lines::Line;
use crate::multiline::{AssembledRecord, LineTime, RecordAssembler};
use crate::record::StreamInfo;

/// A record ready to send, the stream it belongs to, and where reading resumes after it.
pub(super) struct Closed {
    pub(super) stream: Arc<StreamInfo>,
    pub(super) record: AssembledRecord,
    pub(super) end_offset: u64,
}

#[expect(
    clippy::large_enum_variant,
    reason = "most files are plain, and every followed file's records are looked at every tick: a boxed assembler would cost a pointer chase per file per tick"
)]
pub(super) enum FileRecords {
    Plain {
        stream: Arc<StreamInfo>,
        assembler: RecordAssembler,
        /// Reused for the records each line closes.
        closed: Vec<AssembledRecord>,
    },
    Cri {
        joiner: CriJoiner,
        /// stdout, stderr.
        pipes: Box<[(Arc<StreamInfo>, RecordAssembler); 2]>,
        closed: Vec<AssembledRecord>,
    },
}

impl FileRecords {
    /// A plain file's records, all in `stream`.
    pub(super) fn plain(stream: Arc<StreamInfo>, assembler: RecordAssembler) -> FileRecords {
        FileRecords::Plain {
            stream,
            assembler,
            closed: Vec::new(),
        }
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
            closed: Vec::new(),
        }
    }

    /// Takes the next line of the file, read as `time` says, and calls `on_closed` with each
    /// record it closes. A line that is not in the container runtime format is an error (the
    /// caller counts and skips it).
    pub(super) fn push(
        &mut self,
        line: &Line<'_>,
        time: LineTime,
        mut on_closed: impl FnMut(Closed),
    ) -> Result<(), CriError> {
        match self {
            FileRecords::Plain {
                stream,
                assembler,
                closed,
            } => {
                assembler.push_line(&line.text, line.offset, time, line.truncated, closed);
                hand_out(stream, closed, None, &mut on_closed);
            }
            FileRecords::Cri {
                joiner,
                pipes,
                closed,
            } => {
                let Some(joined) = joiner.push(&line.text)? else {
                    return Ok(());
                };
                let this = pipe_index(joined.stream);
                let other_open = pipes[1 - this].1.open_record_offset();
                // Content without a Dask header takes the runtime's timestamp; the line's seq
                // is the offset of the part that completes it.
                let (stream, assembler) = &mut pipes[this];
                assembler.push_line(
                    &joined.content,
                    line.offset,
                    LineTime::Stamped(joined.ts),
                    joined.truncated,
                    closed,
                );
                hand_out(stream, closed, other_open, &mut on_closed);
            }
        }
        Ok(())
    }

    /// The data read so far is used up: hands out the records that waited for a later
    /// record's time (see `RecordAssembler::end_read`).
    pub(super) fn end_read(&mut self, mut on_closed: impl FnMut(Closed)) {
        match self {
            FileRecords::Plain {
                stream,
                assembler,
                closed,
            } => {
                assembler.end_read(closed);
                hand_out(stream, closed, None, &mut on_closed);
            }
            FileRecords::Cri { pipes, closed, .. } => {
                for this in 0..pipes.len() {
                    let other_open = pipes[1 - this].1.open_record_offset();
                    let (stream, assembler) = &mut pipes[this];
                    assembler.end_read(closed);
                    hand_out(stream, closed, other_open, &mut on_closed);
                }
            }
        }
    }

    /// Closes every open record (the file went quiet, or is let go); reading would resume at
    /// `complete_lines_end`. When the file is let go for good (`last`), container lines still
    /// waiting for their final part are closed too, rather than lost.
    pub(super) fn flush(&mut self, complete_lines_end: u64, last: bool) -> Vec<Closed> {
        let mut flushed = Vec::new();
        let mut on_closed = |record| flushed.push(record);
        match self {
            FileRecords::Plain {
                stream,
                assembler,
                closed,
            } => {
                assembler.flush(complete_lines_end, closed);
                hand_out(stream, closed, None, &mut on_closed);
            }
            FileRecords::Cri {
                joiner,
                pipes,
                closed,
            } => {
                if last {
                    for part in joiner.flush() {
                        let (stream, assembler) = &mut pipes[pipe_index(part.stream)];
                        // The parts are whole lines of the file: their seq is past them all.
                        assembler.push_line(
                            &part.content,
                            complete_lines_end,
                            LineTime::Stamped(part.ts),
                            part.truncated,
                            closed,
                        );
                        hand_out(stream, closed, None, &mut on_closed);
                    }
                }
                for (stream, assembler) in pipes.iter_mut() {
                    assembler.flush(complete_lines_end, closed);
                    hand_out(stream, closed, None, &mut on_closed);
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

    /// Tells whether a record waiting for continuation lines looks unfinished, so that it
    /// gets the long wait (`RecordAssembler::open_record_looks_unfinished`).
    pub(super) fn open_record_looks_unfinished(&self) -> bool {
        match self {
            FileRecords::Plain { assembler, .. } => assembler.open_record_looks_unfinished(),
            FileRecords::Cri { joiner, pipes, .. } => {
                joiner.has_pending()
                    || pipes
                        .iter()
                        .any(|(_, assembler)| assembler.open_record_looks_unfinished())
            }
        }
    }
}

/// Hands out the records in `closed` as records of `stream`. A record's end offset never
/// passes `other_open`, the start of a record still open on the file's other pipe.
fn hand_out(
    stream: &Arc<StreamInfo>,
    closed: &mut Vec<AssembledRecord>,
    other_open: Option<u64>,
    on_closed: &mut impl FnMut(Closed),
) {
    for record in closed.drain(..) {
        let end_offset = other_open.map_or(record.end_offset_bytes, |start| {
            start.min(record.end_offset_bytes)
        });
        on_closed(Closed {
            stream: Arc::clone(stream),
            record,
            end_offset,
        });
    }
}

fn pipe_index(stream: CriStream) -> usize {
    match stream {
        CriStream::Stdout => 0,
        CriStream::Stderr => 1,
    }
}
