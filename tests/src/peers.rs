//! Peers the metrics tests run beside Afterglow: a loopback HTTP server whose metrics pages
//! are computed from the time since it started (counters that grow at known rates), and a
//! real Prometheus server (Debian's `prometheus` package) scraping the same pages.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{Process, encode, unique_suffix, wait_for};

/// A page for a path at `elapsed` seconds after the server started, or `None` for a 404.
pub type PageFn = dyn Fn(&str, f64) -> Option<String> + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 answering `GET` with pages from a function; stops when
/// dropped.
pub struct MetricsServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl MetricsServer {
    pub fn start(pages: Arc<PageFn>) -> Result<MetricsServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let started = Instant::now();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let pages = Arc::clone(&pages);
                std::thread::spawn(move || {
                    let _ = answer(stream, &*pages, started.elapsed().as_secs_f64());
                });
            }
        });
        Ok(MetricsServer { port, stop })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(stream: TcpStream, pages: &PageFn, elapsed: f64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("/");
    let mut stream = stream;
    match pages(path, elapsed) {
        Some(body) => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    }
}

/// A real Prometheus server on 127.0.0.1 with a TSDB in a temporary directory.
pub struct Prometheus {
    pub process: Process,
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus with `scrape_configs` (YAML, indented as a list under
    /// `scrape_configs:`) and waits until it is ready.
    pub fn start(work_dir: &Path, scrape_configs: &str) -> Result<Prometheus> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = work_dir.join(format!("prometheus-{}", unique_suffix()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape_configs}"
            ),
        )?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let process = Process::spawn(
            "prometheus",
            command,
            dir.join("prometheus.log"),
            Stdio::null(),
        )
        .context("starting prometheus (Debian package `prometheus`)")?;
        let prometheus = Prometheus {
            process,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_for("prometheus to be ready", || {
            Ok(
                match ureq::get(&format!("{}/-/ready", prometheus.url)).call() {
                    Ok(response) if response.status() == 200 => Ok(()),
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(error) => Err(error.to_string()),
                },
            )
        })?;
        Ok(prometheus)
    }
}

/// `GET base/api/v1/query?query=…&time=…` on any Prometheus-compatible API; the `data`.
pub fn instant_query(base_url: &str, query: &str, time: f64) -> Result<Value> {
    prom_get(
        base_url,
        &format!("/api/v1/query?query={}&time={time:.3}", encode(query)),
    )
}

/// `GET` a Prometheus API path; fails unless the answer is `"status": "success"`.
pub fn prom_get(base_url: &str, path_and_query: &str) -> Result<Value> {
    let url = format!("{base_url}{path_and_query}");
    let response = ureq::get(&url)
        .config()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .call()
        .with_context(|| format!("GET {url}"))?;
    let body: Value = response
        .into_body()
        .read_json()
        .with_context(|| format!("JSON from {url}"))?;
    if body["status"] != "success" {
        bail!("{url} answered {body}");
    }
    Ok(body["data"].clone())
}
