//! Wrap mode (`afterglow-agent run -- CMD ARGS…`): runs one command as the agent's child,
//! ships what it writes to stdout and stderr (each pipe its own stream, `seq` = byte offset
//! in the pipe), copies every byte through to the agent's own stdout and stderr, forwards
//! SIGINT and SIGTERM to it, and exits with its exit code.
//!
//! The rule a reader must not miss: the agent outlives its child. It returns only once both
//! pipes are read to their end and the collector has acked every record, or after a bounded
//! wait (`DELIVERY_WAIT`, or a signal once the child is gone) with a warning that records
//! may be lost. A collector that cannot be reached never keeps the agent alive for ever.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::Xxh3;

use crate::config::{AgentConfig, Role};
use crate::format::{LineFormat, LineParser};
use crate::lines::LineSplitter;
use crate::metrics::AgentMetrics;
use crate::multiline::{AssembledRecord, LineTime, RecordAssembler};
use crate::record::{LogRecord, RecordChunk, StreamInfo};
use crate::ship::Shipper;
use crate::{Error, Result};

/// Bytes read from a pipe at once.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Longest line kept, as `[[logs]] max_line_bytes` defaults to.
const MAX_LINE_BYTES: usize = 1 << 20;
/// How long after the child exits the agent waits for the collector to ack everything.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);
const PUMP_TIMINGS: PumpTimings = PumpTimings {
    // As `[[logs]] multiline_timeout` defaults to.
    multiline_timeout: Duration::from_secs(1),
    // As the tailer waits for a record that looks complete.
    settled_record_grace: Duration::from_millis(50),
    drain_quiet: Duration::from_secs(1),
};

/// Runs `command` as a child of the agent and ships its stdout and stderr as streams of
/// `role` on the configured cluster and node, until the child exits and what it wrote is
/// delivered (see the module doc for the bound on that wait).
///
/// SIGINT and SIGTERM received while the child runs are forwarded to it; one received
/// after it exited stops the wait for the collector. `shutdown` sends the child SIGTERM and
/// cuts the wait for the collector short. Returns the child's exit code, or 128 + N when a
/// signal N killed it.
pub async fn run_wrapped(
    config: AgentConfig,
    role: Role,
    command: Vec<OsString>,
    shutdown: CancellationToken,
) -> Result<i32> {
    let started_at = Timestamp::now();
    let (program, args) = command.split_first().ok_or(Error::NoCommand)?;
    let token = config.read_token().map_err(|source| Error::ReadTokenFile {
        path: config.token_file.clone().unwrap_or_default(),
        source,
    })?;
    // Wrap mode hands records over one at a time: a pipe is far slower than a file.
    let (records, records_receiver) = mpsc::channel(config.ship.batch_max_records * 2);
    let (scrapes, scrapes_receiver) = mpsc::channel(crate::SCRAPES_QUEUED);
    let metrics = AgentMetrics::new();
    let shipper = Shipper::new(
        &config.collector,
        &config.tls,
        token,
        config.ship.clone(),
        records_receiver,
    )?
    .with_token_file(config.token_file.clone())
    .with_scrapes(scrapes_receiver)
    .with_metrics(Arc::clone(&metrics));
    // Listen before the child starts: a signal meant for it must never kill the agent.
    let mut signals = StopSignals::listen()?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::SpawnChild {
            program: program.clone(),
            source,
        })?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    tracing::info!(collector = %config.collector, cluster = %config.cluster, node = %config.node, pid, program = ?program, "running wrapped command");

    let timezone = config.timezone();
    let stream = |source: &str| {
        let id = stream_id(
            &config.cluster,
            &config.node,
            source,
            pid,
            started_at.as_nanosecond(),
        );
        Arc::new(StreamInfo {
            id,
            checkpoint_id: id,
            cluster: config.cluster.clone(),
            node: config.node.clone(),
            role,
            source: source.to_owned(),
        })
    };
    let child_exited = CancellationToken::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let pumps = [
        tokio::spawn(pump_pipe(
            stdout,
            tokio::io::stdout(),
            PipeRecords::new(stream("stdout"), timezone.clone(), records.clone()),
            child_exited.clone(),
            PUMP_TIMINGS,
        )),
        tokio::spawn(pump_pipe(
            stderr,
            tokio::io::stderr(),
            PipeRecords::new(stream("stderr"), timezone, records),
            child_exited.clone(),
            PUMP_TIMINGS,
        )),
    ];
    // The child's own metrics endpoints (`[[metrics]]`, `[dask]`) are scraped while it runs.
    let scraping = crate::start_scraping(&config, &metrics, scrapes, &child_exited);
    let stop_shipping = CancellationToken::new();
    let mut shipping = tokio::spawn(shipper.run(stop_shipping.clone()));

    let status = wait_forwarding_signals(&mut child, &mut signals, &shutdown).await?;
    child_exited.cancel();
    let code = exit_code(status);
    scraping.join_all().await;
    tracing::info!(
        code,
        "wrapped command exited, shipping the rest of its output"
    );

    // The shipper returns once both pumps have dropped their senders and all is acked.
    let delivered = tokio::select! {
        joined = &mut shipping => {
            joined.expect("the shipper does not panic");
            true
        }
        () = sleep_until(Instant::now() + DELIVERY_WAIT) => {
            tracing::warn!(waited = ?DELIVERY_WAIT, "the collector has not acked everything the command wrote; stopping, records may be lost");
            false
        }
        signal = signals.recv() => {
            tracing::warn!(?signal, "signalled while shipping; stopping, records may be lost");
            false
        }
        () = shutdown.cancelled() => false,
    };
    if !delivered {
        stop_shipping.cancel();
        shipping.await.expect("the shipper does not panic");
    }
    for pump in pumps {
        pump.abort();
    }
    Ok(code)
}

/// Waits for the child to exit, forwarding SIGINT and SIGTERM, and SIGTERM on `shutdown`.
async fn wait_forwarding_signals(
    child: &mut Child,
    signals: &mut StopSignals,
    shutdown: &CancellationToken,
) -> Result<ExitStatus> {
    let mut shutdown_forwarded = false;
    loop {
        let signal = tokio::select! {
            status = child.wait() => return status.map_err(Error::WaitChild),
            signal = signals.recv() => signal,
            () = shutdown.cancelled(), if !shutdown_forwarded => {
                shutdown_forwarded = true;
                StopSignal::Terminate
            }
        };
        // `id` is `None` once the child is reaped, so a reused pid is never signalled.
        let Some(pid) = child
            .id()
            .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
        else {
            continue;
        };
        match rustix::process::kill_process(pid, signal.as_rustix()) {
            Ok(()) => tracing::info!(?signal, "forwarded signal to the wrapped command"),
            Err(error) => {
                tracing::warn!(?signal, %error, "cannot forward signal to the wrapped command")
            }
        }
    }
}

/// The signals that ask the wrapped command to stop.
#[derive(Debug, Clone, Copy)]
enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    fn as_rustix(self) -> Signal {
        match self {
            StopSignal::Interrupt => Signal::INT,
            StopSignal::Terminate => Signal::TERM,
        }
    }
}

/// The agent's SIGINT and SIGTERM handlers: while they exist, neither signal kills it.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).map_err(Error::ListenSignals)?,
            terminate: signal(SignalKind::terminate()).map_err(Error::ListenSignals)?,
        })
    }

    async fn recv(&mut self) -> StopSignal {
        tokio::select! {
            Some(()) = self.interrupt.recv() => StopSignal::Interrupt,
            Some(()) = self.terminate.recv() => StopSignal::Terminate,
            else => std::future::pending().await,
        }
    }
}

/// The shell's convention: the exit code, or 128 + N for a child killed by signal N.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// A pipe's stream id: new for every run of the child (its pid and the agent's start
/// time), so that a later run's offsets never collide with an earlier one's in the
/// collector's per-stream dedup.
fn stream_id(cluster: &str, node: &str, source: &str, pid: u32, started_at_ns: i128) -> u64 {
    let mut hasher = Xxh3::new();
    for part in [cluster, node, source] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    hasher.update(&pid.to_le_bytes());
    hasher.update(&started_at_ns.to_le_bytes());
    hasher.digest()
}

/// How long a pipe's reader waits before acting on silence.
#[derive(Debug, Clone, Copy)]
struct PumpTimings {
    /// A quiet pipe's open record that looks unfinished (a traceback without its exception
    /// line, a line without its newline) is shipped after this long.
    multiline_timeout: Duration,
    /// A quiet pipe's open record that looks complete is shipped after this long.
    settled_record_grace: Duration,
    /// Once the child has exited, reading stops after this long without data: a process
    /// the child started may hold the pipe open for ever.
    drain_quiet: Duration,
}

/// Reads `pipe` to its end, copying every byte to `passthrough` and shipping its records.
async fn pump_pipe<R, W>(
    mut pipe: R,
    passthrough: W,
    mut records: PipeRecords,
    child_exited: CancellationToken,
    timings: PumpTimings,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let source = records.stream.source.clone();
    let mut passthrough = Some(passthrough);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let mut last_data_at = Instant::now();
    let mut draining_since: Option<Instant> = None;
    loop {
        let flush_at = records.flush_wait(&timings).map(|wait| last_data_at + wait);
        let stop_at = draining_since.map(|since| since.max(last_data_at) + timings.drain_quiet);
        tokio::select! {
            read = pipe.read(&mut chunk) => {
                let read = match read {
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        tracing::warn!(%source, %error, "cannot read the wrapped command's output, stopping reading it");
                        break;
                    }
                };
                last_data_at = Instant::now();
                copy_through(&mut passthrough, &chunk[..read], &source).await;
                // What a pipe carries was just written: always live.
                if records.push_bytes(&chunk[..read], Timestamp::now()).await.is_err() {
                    return;
                }
            }
            () = sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                if records.flush_open_record().await.is_err() {
                    return;
                }
            }
            () = child_exited.cancelled(), if draining_since.is_none() => {
                draining_since = Some(Instant::now());
            }
            () = sleep_until(stop_at.unwrap_or_else(Instant::now)), if stop_at.is_some() => {
                tracing::warn!(%source, "the wrapped command exited but a process it started still holds the pipe open; stopping reading it");
                break;
            }
        }
    }
    let _ = records.finish(Timestamp::now()).await;
}

/// Writes `bytes` to the agent's own stdout or stderr; on failure, stops copying (and
/// goes on shipping).
async fn copy_through<W: AsyncWrite + Unpin>(
    passthrough: &mut Option<W>,
    bytes: &[u8],
    source: &str,
) {
    let Some(writer) = passthrough else {
        return;
    };
    let written = match writer.write_all(bytes).await {
        Ok(()) => writer.flush().await,
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        tracing::warn!(%source, %error, "cannot copy the wrapped command's output to the agent's own; shipping goes on");
        *passthrough = None;
    }
}

/// The channel to the shipper is closed: the agent is stopping.
#[derive(Debug)]
struct ShipperGone;

/// Splits one pipe's bytes into lines and groups lines into records.
struct PipeRecords {
    stream: Arc<StreamInfo>,
    assembler: RecordAssembler,
    records: mpsc::Sender<RecordChunk>,
    splitter: LineSplitter,
}

impl PipeRecords {
    fn new(
        stream: Arc<StreamInfo>,
        timezone: TimeZone,
        records: mpsc::Sender<RecordChunk>,
    ) -> PipeRecords {
        PipeRecords {
            stream,
            assembler: RecordAssembler::new(
                LineParser::new(LineFormat::Dask, None, None)
                    .expect("the dask preset needs no regex"),
                timezone,
                MAX_LINE_BYTES,
            ),
            records,
            splitter: LineSplitter::new(0, MAX_LINE_BYTES),
        }
    }

    /// How long the open record waits for more lines once the pipe is quiet, if there is
    /// one: the grace when it looks complete, the whole timeout when it looks unfinished or
    /// a line waits for its newline.
    fn flush_wait(&self, timings: &PumpTimings) -> Option<Duration> {
        if !self.assembler.has_open_record() {
            return None;
        }
        let line_unfinished = self.splitter.read_offset() > self.splitter.complete_lines_end();
        Some(
            if line_unfinished || self.assembler.open_record_looks_unfinished() {
                timings.multiline_timeout
            } else {
                timings.settled_record_grace
            },
        )
    }

    /// Takes the next bytes of the pipe, read (live) at `read_at`, and ships the records they
    /// close.
    async fn push_bytes(&mut self, bytes: &[u8], read_at: Timestamp) -> Result<(), ShipperGone> {
        let mut closed = Vec::new();
        let assembler = &mut self.assembler;
        let time = LineTime::Live { read_at };
        self.splitter.push(bytes, |line| {
            assembler.push_line(&line.text, line.offset, time, line.truncated, &mut closed);
            true
        });
        assembler.end_read(&mut closed);
        for record in closed {
            self.send(record).await?;
        }
        Ok(())
    }

    /// Ships the record that may still get continuation lines.
    async fn flush_open_record(&mut self) -> Result<(), ShipperGone> {
        let mut closed = Vec::new();
        self.assembler
            .flush(self.splitter.complete_lines_end(), &mut closed);
        for record in closed {
            self.send(record).await?;
        }
        Ok(())
    }

    /// The pipe has ended: ships its last line, even without a newline, and the open record.
    async fn finish(mut self, read_at: Timestamp) -> Result<(), ShipperGone> {
        let mut closed = Vec::new();
        let assembler = &mut self.assembler;
        let time = LineTime::Live { read_at };
        self.splitter.finish(|line| {
            assembler.push_line(&line.text, line.offset, time, line.truncated, &mut closed);
        });
        for record in closed {
            self.send(record).await?;
        }
        self.flush_open_record().await
    }

    async fn send(&self, record: AssembledRecord) -> Result<(), ShipperGone> {
        let record = LogRecord {
            stream: Arc::clone(&self.stream),
            seq: record.offset_bytes,
            // Pipes have no checkpoints: nothing resumes a wrapped process's output.
            end_offset: record.offset_bytes,
            ts: record.ts,
            level: record.level,
            logger: record.logger,
            message: record.message,
            truncated: record.truncated,
            ts_inferred: record.ts_inferred,
        };
        self.records
            .send(vec![record])
            .await
            .map_err(|_| ShipperGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: PumpTimings = PumpTimings {
        multiline_timeout: Duration::from_millis(10),
        settled_record_grace: Duration::from_millis(5),
        drain_quiet: Duration::from_millis(10),
    };
    /// Only a guard against a hanging test; every wait below ends on a condition.
    const PATIENCE: Duration = Duration::from_secs(30);

    fn pipe_records(source: &str) -> (PipeRecords, mpsc::Receiver<RecordChunk>) {
        let (sender, receiver) = mpsc::channel(100);
        let stream = Arc::new(StreamInfo {
            id: 7,
            checkpoint_id: 7,
            cluster: "c".to_owned(),
            node: "n".to_owned(),
            role: Role::Worker,
            source: source.to_owned(),
        });
        (PipeRecords::new(stream, TimeZone::UTC, sender), receiver)
    }

    fn drain(receiver: &mut mpsc::Receiver<RecordChunk>) -> Vec<(u64, String, String)> {
        let mut records = Vec::new();
        while let Ok(chunk) = receiver.try_recv() {
            records.extend(
                chunk
                    .into_iter()
                    .map(|record| (record.seq, record.level.to_string(), record.message)),
            );
        }
        records
    }

    #[tokio::test]
    async fn every_byte_is_copied_through_and_lines_become_records_at_their_pipe_offsets() {
        let output = "2026-11-27 13:56:53,599 - distributed.worker - ERROR - failed\r\n\
                      Traceback (most recent call last):\n  \
                      File \"task.py\", line 1, in f\n\
                      ValueError: boom\n\
                      print from task\n\
                      last words without a newline";
        let (records, mut receiver) = pipe_records("stderr");
        let mut copied = Vec::new();
        pump_pipe(
            output.as_bytes(),
            &mut copied,
            records,
            CancellationToken::new(),
            QUICK,
        )
        .await;
        assert_eq!(copied, output.as_bytes());
        let offset = |text: &str| output.find(text).expect("in the output") as u64;
        assert_eq!(
            drain(&mut receiver),
            [
                (
                    0,
                    "ERROR".to_owned(),
                    "failed\nTraceback (most recent call last):\n  File \"task.py\", line 1, in f\nValueError: boom"
                        .to_owned()
                ),
                (offset("print"), String::new(), "print from task".to_owned()),
                (
                    offset("last words"),
                    String::new(),
                    "last words without a newline".to_owned()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_quiet_pipe_ships_its_open_record_without_waiting_for_more_lines() {
        let (records, mut receiver) = pipe_records("stderr");
        let (mut writer, reader) = tokio::io::duplex(1024);
        let pump = tokio::spawn(pump_pipe(
            reader,
            tokio::io::sink(),
            records,
            CancellationToken::new(),
            QUICK,
        ));
        writer
            .write_all(b"2026-11-27 13:56:53,599 - distributed.worker - INFO - alone\n")
            .await
            .expect("the pump reads");
        let chunk = tokio::time::timeout(PATIENCE, receiver.recv())
            .await
            .expect("the record is shipped while the pipe is still open")
            .expect("the pump is alive");
        assert_eq!(chunk[0].message, "alone");
        drop(writer);
        pump.await.expect("the pump does not panic");
    }

    #[tokio::test]
    async fn after_the_child_exits_a_pipe_held_open_elsewhere_is_read_until_quiet() {
        let (records, mut receiver) = pipe_records("stdout");
        let (mut writer, reader) = tokio::io::duplex(1024);
        writer
            .write_all(b"half a line")
            .await
            .expect("the pipe has room");
        let child_exited = CancellationToken::new();
        child_exited.cancel();
        tokio::time::timeout(
            PATIENCE,
            pump_pipe(reader, tokio::io::sink(), records, child_exited, QUICK),
        )
        .await
        .expect("the pump stops although the writer is still open");
        assert_eq!(
            drain(&mut receiver),
            [(0, String::new(), "half a line".to_owned())]
        );
        drop(writer);
    }

    #[test]
    fn a_child_killed_by_a_signal_exits_with_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }

    #[test]
    fn every_run_and_pipe_gets_its_own_stream() {
        let id = stream_id("c", "n", "stdout", 100, 1_000);
        assert_eq!(id, stream_id("c", "n", "stdout", 100, 1_000));
        for other in [
            stream_id("c", "n", "stderr", 100, 1_000),
            stream_id("c", "n", "stdout", 101, 1_000),
            stream_id("c", "n", "stdout", 100, 1_001),
            stream_id("c", "m", "stdout", 100, 1_000),
        ] {
            assert_ne!(id, other);
        }
    }

    fn command(script: &str) -> Vec<OsString> {
        ["sh", "-c", script].map(OsString::from).to_vec()
    }

    /// Nothing is written, so an unreachable collector has nothing to wait for.
    fn config_without_collector() -> AgentConfig {
        let mut config = AgentConfig::embedded_default();
        config.collector = "http://127.0.0.1:1".to_owned();
        config
    }

    #[tokio::test]
    async fn returns_the_exit_code_or_128_plus_the_killing_signal() {
        for (script, expected) in [("exit 3", 3), ("true", 0), ("kill -9 $$", 137)] {
            let code = run_wrapped(
                config_without_collector(),
                Role::Other,
                command(script),
                CancellationToken::new(),
            )
            .await
            .expect("the command runs");
            assert_eq!(code, expected, "{script}");
        }
    }

    #[tokio::test]
    async fn a_command_that_cannot_start_is_an_error() {
        let error = run_wrapped(
            config_without_collector(),
            Role::Other,
            vec![OsString::from("/nonexistent/afterglow-test-command")],
            CancellationToken::new(),
        )
        .await
        .expect_err("there is no such program");
        assert!(
            matches!(&error, Error::SpawnChild { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{error:?}"
        );
    }
}
