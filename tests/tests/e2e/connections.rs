//! Connections that hold the collector's descriptors without using them: a flood of
//! idle connections past the open-file limit, a client slow with its headers, a keep-alive
//! connection left idle; against them, `/healthz`, an agent's writes and a live tail.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use afterglow_tests::{Agent, Collector, Scene, connect_from, wait_for};
use anyhow::{Context, Result, bail};

/// The collector's open-file limit in the flood test, below the flood's size.
const OPEN_FILES: u64 = 1024;
/// Idle connections the flood opens, half on each port: more than `OPEN_FILES`.
const FLOOD: usize = 1500;
/// Where the flood comes from: a peer of its own, as the per-peer cap counts them.
const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn socket_address(url: &str) -> Result<SocketAddr> {
    let host_port = url.rsplit("//").next().context("url has a scheme")?;
    Ok(host_port.parse()?)
}

/// `GET path` over a new connection from 127.0.0.1; the whole answer (the server closes).
fn get_within(address: SocketAddr, path: &str, limit: Duration) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Reads from `stream` until the peer closes it, for at most `limit`; returns how long that
/// took, or `None` if the connection was still open at `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<Option<Duration>> {
    let start = Instant::now();
    let mut buffer = [0; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(Some(start.elapsed())),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(Some(start.elapsed()));
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// Reads until the end of a response head (`\r\n\r\n`) and returns it.
fn read_head(stream: &mut TcpStream) -> Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            bail!(
                "closed in the middle of a response head: {:?}",
                String::from_utf8_lossy(&head)
            );
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn log_lines(from: usize, to: usize) -> String {
    (from..to)
        .map(|n| format!("2026-11-27 14:00:00,000 - distributed.worker - INFO - flood-line-{n}\n"))
        .collect()
}

#[test]
fn an_idle_flood_past_the_open_file_limit_starves_neither_healthz_nor_writes() -> Result<()> {
    let scene = Scene::new()?;
    let collector =
        Collector::start_with_open_files(scene.path(), &scene.data_dir(), "", OPEN_FILES)?;
    let (http, grpc) = (
        socket_address(&collector.http_url)?,
        socket_address(&collector.grpc_url)?,
    );
    let logs_dir = scene.path().join("node");
    std::fs::create_dir(&logs_dir)?;
    let log_file = logs_dir.join("w.log");
    std::fs::write(&log_file, log_lines(0, 100))?;
    let _agent = Agent::start(
        scene.path(),
        "node",
        &format!(
            "collector = \"{}\"\ncluster = \"c\"\nnode = \"n\"\ntimezone = \"UTC\"\n\
             [[logs]]\npaths = [\"{}/*.log\"]\nrole = \"worker\"\n",
            collector.grpc_url,
            logs_dir.display()
        ),
    )?;

    // Idle connections from 127.0.0.2, past the collector's open-file limit. Past its caps the
    // collector closes them as soon as they are accepted; the rest stay open and idle.
    let mut flood = Vec::new();
    let mut stopped = None;
    for at in 0..FLOOD {
        match connect_from(FLOODER, if at % 2 == 0 { http } else { grpc }) {
            Ok(stream) => flood.push(stream),
            // The collector takes no connection any more: the flood has done its worst.
            Err(error) => {
                stopped = Some(error);
                break;
            }
        }
    }
    let mut appended = std::fs::OpenOptions::new().append(true).open(&log_file)?;
    for round in 0..5 {
        let started = Instant::now();
        let answer = get_within(http, "/healthz", Duration::from_secs(1))
            .with_context(|| format!("/healthz during the flood, round {round}"))?;
        assert!(
            answer.starts_with("HTTP/1.1 200") && started.elapsed() < Duration::from_secs(1),
            "/healthz answers within 1 s during the flood, round {round}: {answer:?} after {:?}",
            started.elapsed()
        );
        // More lines for the agent to ship while the flood holds.
        appended.write_all(log_lines(100 + round * 100, 200 + round * 100).as_bytes())?;
    }
    assert_eq!(
        flood.len(),
        FLOOD,
        "the collector keeps taking connections (and closing those past its caps): stopped by {stopped:?}"
    );
    let open = collector.process.open_descriptors()?;
    assert!(
        (open as u64) < OPEN_FILES - 256,
        "the flood leaves the reserve alone: {open} descriptors open of {OPEN_FILES}"
    );

    wait_for("every line written, searchable", || {
        let found = collector.search_all("flood-line", 1000)?.len();
        Ok(if found == 600 { Ok(()) } else { Err(found) })
    })?;
    let (status, metrics) = collector.get_as(None, "/metrics")?;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "afterglow_collector_connections_refused_total{listener=\"http\",reason=\"peer\"}"
        ) || metrics.contains(
            "afterglow_collector_connections_refused_total{listener=\"grpc\",reason=\"peer\"}"
        ),
        "the flood past the per-peer cap is counted:\n{metrics}"
    );
    drop(flood);
    let log = collector.process.log();
    assert!(
        !log.to_lowercase().contains("too many open files"),
        "nothing ran out of descriptors:\n{log}"
    );
    Ok(())
}

#[test]
fn slow_headers_and_idle_connections_are_closed_but_a_live_tail_is_not() -> Result<()> {
    let scene = Scene::new()?;
    let collector = Collector::start_with(
        scene.path(),
        &scene.data_dir(),
        None,
        "[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"2s\"\n",
    )?;
    let (http, grpc) = (
        socket_address(&collector.http_url)?,
        socket_address(&collector.grpc_url)?,
    );
    let patience = Duration::from_secs(10);

    let mut slow = TcpStream::connect(http)?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\n")?;
    let closed = closed_within(&mut slow, patience)?;
    assert!(
        closed.is_some_and(|after| after >= Duration::from_millis(900)),
        "a request whose headers never end is closed after the header timeout: {closed:?}"
    );

    let mut silent_grpc = TcpStream::connect(grpc)?;
    let closed = closed_within(&mut silent_grpc, patience)?;
    assert!(
        closed.is_some_and(|after| after >= Duration::from_millis(900)),
        "a gRPC connection that never speaks is closed after the header timeout: {closed:?}"
    );

    let mut tail = TcpStream::connect(http)?;
    tail.write_all(b"GET /api/v1/logs/tail?q=nothing HTTP/1.1\r\nHost: collector\r\n\r\n")?;
    let head = read_head(&mut tail)?;
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream"),
        "{head}"
    );

    let mut keep_alive = TcpStream::connect(http)?;
    keep_alive.write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")?;
    let head = read_head(&mut keep_alive)?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let closed = closed_within(&mut keep_alive, patience)?;
    assert!(
        closed.is_some_and(|after| after >= Duration::from_millis(1800)),
        "a keep-alive connection with no request is closed after the idle timeout: {closed:?}"
    );

    // By now the tail has been open for longer than the idle timeout.
    assert_eq!(
        closed_within(&mut tail, Duration::from_secs(2))?,
        None,
        "a live tail is a request in flight: the idle timeout spares it"
    );
    Ok(())
}
