//! Reading the live tail (`/api/v1/logs/tail`) as a browser's EventSource does: events with
//! their type, data and the last event id seen, and reconnecting with `Last-Event-ID`.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::Collector;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `message` unless the event names another type.
    pub kind: String,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON (a hit, for `message` events).
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.data).with_context(|| format!("JSON event: {}", self.data))
    }
}

/// An open tail.
pub struct Tail {
    lines: BufReader<Box<dyn Read + Send>>,
    /// The id of the last event read, as EventSource keeps it (events with only an id too).
    pub last_event_id: Option<String>,
}

impl Tail {
    /// Opens `path_and_query` on `collector` (with `Last-Event-ID: last_event_id` when
    /// given), past the response headers; fails on any status but 200.
    pub fn open(
        collector: &Collector,
        path_and_query: &str,
        last_event_id: Option<&str>,
    ) -> Result<Tail> {
        let url = format!("{}{path_and_query}", collector.http_url);
        let mut request = collector.http_agent.get(&url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request
            .header("Accept", "text/event-stream")
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.into_body().read_to_string().unwrap_or_default();
            bail!("tail {path_and_query} answered {status}: {body}");
        }
        let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        Ok(Tail {
            lines: BufReader::new(reader),
            last_event_id: last_event_id.map(str::to_owned),
        })
    }

    /// The next event with data (keep-alives and id-only events only move `last_event_id`).
    pub fn next_event(&mut self) -> Result<SseEvent> {
        let mut kind = String::new();
        let mut data: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            if self.lines.read_line(&mut line)? == 0 {
                bail!("the tail ended");
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    let kind = if kind.is_empty() {
                        "message".to_owned()
                    } else {
                        kind
                    };
                    return Ok(SseEvent {
                        kind,
                        data: data.join("\n"),
                    });
                }
                kind.clear();
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => kind = value.to_owned(),
                "data" => data.push(value.to_owned()),
                "id" => self.last_event_id = Some(value.to_owned()),
                _ => {}
            }
        }
    }

    /// The next `count` hits (`message` events); fails on any other event with data.
    pub fn next_hits(&mut self, count: usize) -> Result<Vec<Value>> {
        let mut hits = Vec::with_capacity(count);
        while hits.len() < count {
            let event = self.next_event()?;
            if event.kind != "message" {
                bail!("expected a hit, got {event:?} after {hits:?}");
            }
            hits.push(event.json()?);
        }
        Ok(hits)
    }
}
