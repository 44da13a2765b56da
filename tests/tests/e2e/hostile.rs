//! Hostile input at the collector's ports, through the real binary: random bytes to the gRPC
//! and HTTP ports, malformed and oversized HTTP requests, and hundreds of idle connections
//! held open from another address. The collector stays up, answers the HTTP ones with errors,
//! and keeps serving an agent and a search meanwhile.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use afterglow_tests::{Agent, Scene, connect_from, send_raw, wait_for};
use anyhow::{Context, Result};

/// `host:port` of a `http://host:port` URL.
fn address(url: &str) -> Result<String> {
    Ok(url
        .strip_prefix("http://")
        .context("an http:// URL")?
        .to_owned())
}

/// Bytes from a xorshift generator: reproducible noise.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sends `bytes` on a new connection and reads what comes back until the peer closes it (or
/// a second passes).
fn send(address: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    send_raw(address, bytes, Duration::from_secs(1))
}

#[test]
fn garbage_and_idle_connections_leave_the_collector_serving() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let (http, grpc) = (address(&collector.http_url)?, address(&collector.grpc_url)?);

    for seed in 1..=20 {
        send(&grpc, &noise(64 * 1024, seed))?;
        send(&http, &noise(64 * 1024, seed + 100))?;
    }
    let malformed = [
        b"GET /api/v1/logs/search?q=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        [
            b"GET /".as_slice(),
            &vec![b'a'; 100_000],
            b" HTTP/1.1\r\n\r\n",
        ]
        .concat(),
        [
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".as_slice(),
            &vec![b'b'; 1_000_000],
            b"\r\n\r\n",
        ]
        .concat(),
        [
            b"POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n"
                .as_slice(),
            &vec![b'q'; 1_000_000],
        ]
        .concat(),
    ];
    for request in &malformed {
        let answer = String::from_utf8_lossy(&send(&http, request)?).into_owned();
        assert!(
            answer.is_empty()
                || answer.starts_with("HTTP/1.1 4")
                || answer.starts_with("HTTP/1.0 4"),
            "a malformed request is refused, not served: {:?}",
            answer.chars().take(200).collect::<String>()
        );
    }

    // Idle connections held open on both ports while real work goes on. They come from
    // 127.0.0.3: from the agent's and the searches' address, the per-peer cap would turn those
    // away until the idle ones time out.
    let idler = Ipv4Addr::new(127, 0, 0, 3);
    let (http_socket, grpc_socket): (SocketAddr, SocketAddr) = (http.parse()?, grpc.parse()?);
    let idle: Vec<TcpStream> = (0..200)
        .flat_map(|_| {
            [
                connect_from(idler, http_socket),
                connect_from(idler, grpc_socket),
            ]
        })
        .collect::<Result<_>>()?;
    let logs_dir = scene.path().join("node");
    std::fs::create_dir(&logs_dir)?;
    std::fs::write(
        logs_dir.join("w.log"),
        "2026-11-27 14:00:00,000 - distributed.worker - INFO - still-serving\n",
    )?;
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
    wait_for("the agent's record, searchable", || {
        let found = collector.search_all("still-serving", 10)?.len();
        Ok(if found == 1 { Ok(()) } else { Err(found) })
    })?;
    drop(idle);
    assert_eq!(
        collector.search_all("still-serving", 10)?.len(),
        1,
        "the collector still answers once the idle connections are gone"
    );
    Ok(())
}
