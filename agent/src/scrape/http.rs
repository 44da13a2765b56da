//! One HTTP GET of a metrics page or of Dask's identity document: a fresh HTTP/1.1
//! connection (plain http only), a deadline for the whole exchange, and a cap on the body, so
//! a slow or huge target can cost neither unbounded time nor memory.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::header;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::Url;

/// The `Accept` header of a scrape: OpenMetrics first, the text format as fallback, as
/// Prometheus asks.
pub const ACCEPT_METRICS: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// A page fetched with status 200.
#[derive(Debug)]
pub struct Page {
    pub content_type: String,
    pub body: Bytes,
}

/// Why a fetch failed, worded for the agent's log and the target's error.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an http:// URL with a host and port")]
    Url(String),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("server returned HTTP status {0}")]
    Status(u16),
    #[error("body larger than max_body_bytes ({0} bytes)")]
    TooLarge(u64),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// GETs `url` with `accept`, giving up after `timeout` or once the body passes `max_body_bytes`.
pub async fn get(
    url: &Url,
    accept: &str,
    timeout: Duration,
    max_body_bytes: u64,
) -> Result<Page, FetchError> {
    tokio::time::timeout(timeout, get_unbounded_time(url, accept, max_body_bytes))
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
}

async fn get_unbounded_time(
    url: &Url,
    accept: &str,
    max_body_bytes: u64,
) -> Result<Page, FetchError> {
    let (Some(host), Some(port), "http") =
        (url.host_str(), url.port_or_known_default(), url.scheme())
    else {
        return Err(FetchError::Url(url.to_string()));
    };
    let stream = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(FetchError::Connect)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the response is read or the request is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let request = hyper::Request::get(path)
        .header(header::HOST, format!("{host}:{port}"))
        .header(header::ACCEPT, accept)
        .header(
            header::USER_AGENT,
            concat!("afterglow-agent/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if response.status() != hyper::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut body = response.into_body();
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            if (bytes.len() + data.len()) as u64 > max_body_bytes {
                return Err(FetchError::TooLarge(max_body_bytes));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(Page {
        content_type,
        body: bytes.freeze(),
    })
}
