//! TLS between agent and collector and on the collector's HTTP API, through the real
//! binaries and certificates made in the test: shipping and searching over TLS, a wrong CA,
//! plaintext to TLS ports, mutual TLS, and a certificate rotated while the collector runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use afterglow_tests::pki::{self, Issued, TestCa};
use afterglow_tests::{Agent, Collector, Scene, send_raw, wait_for};
use anyhow::{Context, Result};

/// A collector with `[tls]` and the CA its certificate is signed by.
struct TlsCollector {
    collector: Collector,
    ca: TestCa,
    server: Issued,
    cert_path: PathBuf,
}

impl TlsCollector {
    /// Starts a collector in `scene` serving a certificate of a new CA; with `client_ca`,
    /// clients must present a certificate signed by it.
    fn start(scene: &Scene, client_ca: Option<&TestCa>) -> Result<TlsCollector> {
        let ca = TestCa::new("afterglow test server ca")?;
        let server = ca.server_cert()?;
        let (cert_path, key_path) = server.write(scene.path(), "collector")?;
        let mut extra = format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            cert_path.display().to_string(),
            key_path.display().to_string()
        );
        if let Some(client_ca) = client_ca {
            let path = client_ca.write(&scene.path().join("clients-ca.crt"))?;
            extra.push_str(&format!("client_ca = {:?}\n", path.display().to_string()));
        }
        let mut collector = Collector::start_with(scene.path(), &scene.data_dir(), None, &extra)?;
        collector.http_agent = pki::https_agent(&ca.cert_pem, None)?;
        Ok(TlsCollector {
            collector,
            ca,
            server,
            cert_path,
        })
    }

    /// `host:port` of the HTTP listener.
    fn http_addr(&self) -> Result<String> {
        address(&self.collector.http_url)
    }

    /// `host:port` of the gRPC listener.
    fn grpc_addr(&self) -> Result<String> {
        address(&self.collector.grpc_url)
    }

    /// The value of one of the collector's own metrics, `name` with its labels.
    fn metric(&self, name: &str) -> Result<f64> {
        let url = format!("{}/metrics", self.collector.http_url);
        let body = self
            .collector
            .http_agent
            .get(&url)
            .call()?
            .into_body()
            .read_to_string()?;
        Ok(body
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0))
    }
}

/// `host:port` of an `https://host:port` URL.
fn address(url: &str) -> Result<String> {
    Ok(url
        .strip_prefix("https://")
        .with_context(|| format!("{url} is not an https:// URL"))?
        .to_owned())
}

/// A log line with a marker word in it, in the format the agent parses.
fn log_line(marker: &str) -> String {
    format!("2026-11-27 14:00:00,000 - distributed.worker - INFO - {marker}\n")
}

/// Writes `ca`, and `client` when given, into `dir`, and returns an agent configuration
/// shipping `dir/logs/*.log` to `collector_url` with that `[tls]`.
fn agent_config(
    dir: &Path,
    name: &str,
    collector_url: &str,
    ca: Option<&TestCa>,
    client: Option<&Issued>,
) -> Result<String> {
    let logs = dir.join(format!("logs-{name}"));
    std::fs::create_dir_all(&logs)?;
    let mut config = format!(
        "collector = {collector_url:?}\ncluster = \"tls\"\nnode = {name:?}\ntimezone = \"UTC\"\n\
         [[logs]]\npaths = [\"{}/*.log\"]\nrole = \"worker\"\npoll_interval = \"50ms\"\n\
         [ship]\nbatch_linger = \"20ms\"\nbackoff_max = \"500ms\"\n",
        logs.display()
    );
    if ca.is_some() || client.is_some() {
        config.push_str("[tls]\n");
    }
    if let Some(ca) = ca {
        let path = ca.write(&dir.join(format!("{name}-ca.crt")))?;
        config.push_str(&format!("ca = {:?}\n", path.display().to_string()));
    }
    if let Some(client) = client {
        let (cert, key) = client.write(dir, &format!("{name}-client"))?;
        config.push_str(&format!(
            "cert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ));
    }
    Ok(config)
}

/// Appends `line` to the log file the agent `name` tails.
fn append_log(dir: &Path, name: &str, line: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("logs-{name}")).join("w.log"))?;
    file.write_all(line.as_bytes())?;
    Ok(())
}

/// Waits until a search for `marker` finds exactly one record.
fn wait_until_searchable(collector: &Collector, marker: &str) -> Result<()> {
    wait_for(&format!("{marker:?} searchable over https"), || {
        let found = collector.search_all(marker, 10)?.len();
        Ok(if found == 1 { Ok(()) } else { Err(found) })
    })
}

/// Sends `bytes` in plaintext on a new connection and returns what comes back until the
/// peer closes it (or 5 s pass).
fn send_plaintext(addr: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    send_raw(addr, bytes, Duration::from_secs(5))
}

#[test]
fn agent_ships_over_tls_and_the_line_is_searchable_over_https() -> Result<()> {
    let scene = Scene::new()?;
    let tls = TlsCollector::start(&scene, None)?;
    let collector = &tls.collector;
    assert!(
        collector.http_url.starts_with("https://") && collector.grpc_url.starts_with("https://"),
        "the listening line says https: {} {}",
        collector.http_url,
        collector.grpc_url
    );
    let config = agent_config(scene.path(), "a", &collector.grpc_url, Some(&tls.ca), None)?;
    let _agent = Agent::start(scene.path(), "a", &config)?;
    append_log(scene.path(), "a", &log_line("shipped-over-tls"))?;
    wait_until_searchable(collector, "shipped-over-tls")?;

    // HTTP/2 by ALPN on the HTTP listener too.
    let answer = pki::probe(
        &tls.http_addr()?,
        &tls.ca.cert_pem,
        None,
        b"h2",
        pki::H2_PREFACE,
    )?;
    assert!(
        pki::is_h2_settings(&answer.answer),
        "h2 is served on the HTTP listener: {:?}",
        answer.answer
    );
    Ok(())
}

#[test]
fn an_agent_trusting_another_ca_ships_nothing_and_logs_the_tls_error() -> Result<()> {
    let scene = Scene::new()?;
    let tls = TlsCollector::start(&scene, None)?;
    let other_ca = TestCa::new("some other ca")?;
    let config = agent_config(
        scene.path(),
        "stranger",
        &tls.collector.grpc_url,
        Some(&other_ca),
        None,
    )?;
    let agent = Agent::start(scene.path(), "stranger", &config)?;
    append_log(scene.path(), "stranger", &log_line("never-trusted"))?;

    agent
        .process
        .wait_for_log("tls with the collector failed")?;
    let log = agent.process.log();
    let line = log
        .lines()
        .find(|line| line.contains("tls with the collector failed"))
        .context("the error line")?;
    assert!(line.contains("ERROR"), "logged as an error: {line}");
    assert!(
        line.contains(&tls.collector.grpc_url),
        "names the collector: {line}"
    );
    assert!(line.contains("UnknownIssuer"), "says why: {line}");
    // It read the line and keeps retrying (alive, with its backoff), shipping nothing.
    wait_for("the agent to read the line and retry twice", || {
        // None until the agent has logged where its metrics are.
        let read = agent.metric("afterglow_agent_lines_read_total").ok();
        let retries = agent.metric("afterglow_agent_reconnects_total").ok();
        Ok(if read >= Some(1.0) && retries >= Some(2.0) {
            Ok(())
        } else {
            Err((read, retries))
        })
    })?;
    assert_eq!(tls.collector.search_all("never-trusted", 10)?.len(), 0);
    assert_eq!(agent.metric("afterglow_agent_batches_acked_total")?, 0.0);
    Ok(())
}

#[test]
fn plaintext_to_the_tls_ports_is_refused_and_tls_clients_are_still_served() -> Result<()> {
    let scene = Scene::new()?;
    let tls = TlsCollector::start(&scene, None)?;
    let (http, grpc) = (tls.http_addr()?, tls.grpc_addr()?);

    let answer = send_plaintext(
        &http,
        b"GET /api/v1/logs/search?q=* HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )?;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "a plaintext request is not served: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // Nothing but a TLS alert record (content type 21) comes back, if anything.
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    let answer = send_plaintext(&grpc, pki::H2_PREFACE)?;
    assert!(
        !pki::is_h2_settings(&answer) && (answer.is_empty() || answer[0] == 21),
        "an h2c preface gets no HTTP/2 answer: {answer:?}"
    );
    // A real plaintext gRPC client: an agent with an http:// URL to the TLS port.
    let plain_url = tls.collector.grpc_url.replacen("https://", "http://", 1);
    let config = agent_config(scene.path(), "plain", &plain_url, None, None)?;
    let plain_agent = Agent::start(scene.path(), "plain", &config)?;
    append_log(scene.path(), "plain", &log_line("sent-in-plaintext"))?;
    wait_for("the plaintext agent to fail twice", || {
        // None until the agent has logged where its metrics are.
        let retries = plain_agent.metric("afterglow_agent_reconnects_total").ok();
        Ok(if retries >= Some(2.0) {
            Ok(())
        } else {
            Err(retries)
        })
    })?;
    wait_for("failed handshakes counted on both listeners", || {
        let counts = (
            tls.metric("afterglow_collector_tls_handshakes_failed_total{listener=\"http\"}")?,
            tls.metric("afterglow_collector_tls_handshakes_failed_total{listener=\"grpc\"}")?,
        );
        Ok(if counts.0 >= 1.0 && counts.1 >= 2.0 {
            Ok(())
        } else {
            Err(counts)
        })
    })?;

    // TLS clients are still served, on both ports.
    let config = agent_config(
        scene.path(),
        "tls",
        &tls.collector.grpc_url,
        Some(&tls.ca),
        None,
    )?;
    let _agent = Agent::start(scene.path(), "tls", &config)?;
    append_log(scene.path(), "tls", &log_line("still-served-over-tls"))?;
    wait_until_searchable(&tls.collector, "still-served-over-tls")?;
    assert_eq!(tls.collector.search_all("sent-in-plaintext", 10)?.len(), 0);
    assert_eq!(
        plain_agent.metric("afterglow_agent_batches_acked_total")?,
        0.0
    );
    Ok(())
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_and_serves_those_with_one() -> Result<()> {
    let scene = Scene::new()?;
    let clients_ca = TestCa::new("afterglow test clients ca")?;
    let tls = TlsCollector::start(&scene, Some(&clients_ca))?;
    let (http, grpc) = (tls.http_addr()?, tls.grpc_addr()?);

    // No certificate: refused on both ports.
    let search = format!("{}/api/v1/logs/search?q=*", tls.collector.http_url);
    let refused = tls.collector.http_agent.get(&search).call();
    assert!(
        refused.is_err(),
        "HTTPS without a client certificate: {refused:?}"
    );
    let request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let refused = pki::probe(&http, &tls.ca.cert_pem, None, b"http/1.1", request);
    assert!(
        refused.is_err(),
        "HTTP port without a client certificate answered"
    );
    let refused = pki::probe(&grpc, &tls.ca.cert_pem, None, b"h2", pki::H2_PREFACE);
    assert!(
        refused.is_err(),
        "gRPC port without a client certificate answered"
    );
    // A certificate from another CA: refused too.
    let stranger = TestCa::new("not the clients ca")?.client_cert("stranger")?;
    let refused = pki::probe(
        &grpc,
        &tls.ca.cert_pem,
        Some(&stranger),
        b"h2",
        pki::H2_PREFACE,
    );
    assert!(refused.is_err(), "a certificate of another CA was taken");

    // With a certificate the clients' CA signed: served on both ports.
    let client = clients_ca.client_cert("agent-1")?;
    let answer = pki::probe(&http, &tls.ca.cert_pem, Some(&client), b"http/1.1", request)?;
    assert!(
        answer.answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer.answer)
    );
    let answer = pki::probe(
        &grpc,
        &tls.ca.cert_pem,
        Some(&client),
        b"h2",
        pki::H2_PREFACE,
    )?;
    assert!(pki::is_h2_settings(&answer.answer), "{:?}", answer.answer);
    let config = agent_config(
        scene.path(),
        "mtls",
        &tls.collector.grpc_url,
        Some(&tls.ca),
        Some(&client),
    )?;
    let _agent = Agent::start(scene.path(), "mtls", &config)?;
    append_log(
        scene.path(),
        "mtls",
        &log_line("shipped-with-a-client-cert"),
    )?;
    let mut collector = tls.collector;
    collector.http_agent = pki::https_agent(&tls.ca.cert_pem, Some(&client))?;
    wait_until_searchable(&collector, "shipped-with-a-client-cert")?;
    Ok(())
}

#[test]
fn a_rotated_certificate_reaches_new_connections_without_a_restart() -> Result<()> {
    let scene = Scene::new()?;
    let tls = TlsCollector::start(&scene, None)?;
    let grpc = tls.grpc_addr()?;
    let presented = || -> Result<Vec<u8>> {
        Ok(pki::probe(&grpc, &tls.ca.cert_pem, None, b"h2", pki::H2_PREFACE)?.peer_cert_der)
    };
    assert_eq!(presented()?, tls.server.der()?);
    let config = agent_config(
        scene.path(),
        "a",
        &tls.collector.grpc_url,
        Some(&tls.ca),
        None,
    )?;
    let agent = Agent::start(scene.path(), "a", &config)?;
    append_log(scene.path(), "a", &log_line("before-rotation"))?;
    wait_until_searchable(&tls.collector, "before-rotation")?;

    // Same CA, new key and serial, replaced in place as a certificate manager does.
    let rotated = tls.ca.server_cert()?;
    assert_ne!(rotated.der()?, tls.server.der()?);
    rotated.write(scene.path(), "collector")?;
    let new_der = rotated.der()?;
    wait_for("a new connection to get the rotated certificate", || {
        let der = presented()?;
        Ok(if der == new_der {
            Ok(())
        } else {
            Err(der.len())
        })
    })?;

    // The agent's connection from before the rotation still carries its lines.
    append_log(scene.path(), "a", &log_line("after-rotation"))?;
    wait_until_searchable(&tls.collector, "after-rotation")?;
    assert_eq!(
        agent.metric("afterglow_agent_reconnects_total")?,
        0.0,
        "the agent kept its connection"
    );

    // A broken new certificate is refused; the rotated one stays in force.
    pki::write_replacing(&tls.cert_path, "not a certificate\n")?;
    tls.collector
        .process
        .wait_for_log("the changed tls files are rejected")?;
    assert_eq!(
        presented()?,
        new_der,
        "the rotated certificate stays in force"
    );
    Ok(())
}
