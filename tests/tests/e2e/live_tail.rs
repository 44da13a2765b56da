//! The live tail resumes after a reconnect (`Last-Event-ID`) with exactly the
//! records it missed, and a tail with `start` first sends the records since then.

use afterglow_tests::push::{batch, push, record};
use afterglow_tests::sse::Tail;
use afterglow_tests::{Scene, encode, wait_for};
use anyhow::{Context, Result};
use serde_json::Value;

const STREAM: (u64, &str, &str) = (0x7a11, "resume", "worker-1");

fn messages(hits: &[Value]) -> Vec<&str> {
    hits.iter()
        .map(|hit| hit["message"].as_str().unwrap_or_default())
        .collect()
}

/// Records `seqs` of the stream, stamped now, saying `"<word> <seq>"`.
fn records(word: &str, seqs: std::ops::Range<u64>) -> Vec<afterglow_proto::v1::LogRecord> {
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    seqs.map(|seq| record(seq, now + seq as i64, &format!("{word} {seq}")))
        .collect()
}

#[test]
fn a_tail_that_reconnects_gets_exactly_what_it_missed_then_live_records() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let path = format!("/api/v1/logs/tail?q={}", encode("resumemarker"));
    let mut first = Tail::open(&collector, &path, None)?;
    push(
        &collector.grpc_url,
        batch(1, STREAM, records("resumemarker", 1..4)),
    )?;
    let seen = first.next_hits(3)?;
    assert_eq!(
        messages(&seen),
        ["resumemarker 1", "resumemarker 2", "resumemarker 3"]
    );
    let last_id = first.last_event_id.clone().context("events carry ids")?;
    drop(first);

    // Sent while nobody follows: searchable, and the tail that comes back must get them.
    push(
        &collector.grpc_url,
        batch(2, STREAM, records("resumemarker", 4..7)),
    )?;
    wait_for("the missed records to be searchable", || {
        let found = collector.search_all("resumemarker", 100)?.len();
        Ok(if found == 6 { Ok(()) } else { Err(found) })
    })?;
    let mut again = Tail::open(&collector, &path, Some(&last_id))?;
    push(
        &collector.grpc_url,
        batch(3, STREAM, records("resumemarker", 7..9)),
    )?;
    let resumed = again.next_hits(5)?;
    assert_eq!(
        messages(&resumed),
        [
            "resumemarker 4",
            "resumemarker 5",
            "resumemarker 6",
            "resumemarker 7",
            "resumemarker 8"
        ],
        "the missed ones, none twice, then the live ones"
    );

    // An id of another run (or a made-up one) cannot resume: the tail says so, then is live.
    let mut stranger = Tail::open(&collector, &path, Some("1-5"))?;
    let gap = stranger.next_event()?;
    assert_eq!(gap.kind, "gap", "{gap:?}");
    push(
        &collector.grpc_url,
        batch(4, STREAM, records("resumemarker", 9..10)),
    )?;
    assert_eq!(messages(&stranger.next_hits(1)?), ["resumemarker 9"]);
    Ok(())
}

#[test]
fn a_tail_with_start_sends_the_records_since_then_and_resumes_inside_them() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let minutes = |count: i64| count * 60 * 1_000_000_000;
    push(
        &collector.grpc_url,
        batch(
            1,
            STREAM,
            vec![
                record(1, now - minutes(120), "startmarker two hours ago"),
                record(2, now - minutes(10), "startmarker ten minutes ago"),
                record(3, now - minutes(5), "startmarker five minutes ago"),
            ],
        ),
    )?;
    wait_for("the old records to be searchable", || {
        let found = collector.search_all("startmarker", 100)?.len();
        Ok(if found == 3 { Ok(()) } else { Err(found) })
    })?;
    let start = jiff::Timestamp::from_nanosecond(i128::from(now - minutes(30)))?;
    let path = format!(
        "/api/v1/logs/tail?q={}&start={}",
        encode("startmarker"),
        encode(&start.to_string())
    );
    let mut tail = Tail::open(&collector, &path, None)?;
    let backfill = tail.next_hits(1)?;
    assert_eq!(messages(&backfill), ["startmarker ten minutes ago"]);
    let inside_backfill = tail.last_event_id.clone().context("an id")?;
    drop(tail);

    let mut resumed = Tail::open(&collector, &path, Some(&inside_backfill))?;
    push(
        &collector.grpc_url,
        batch(
            2,
            STREAM,
            vec![
                record(4, now - minutes(60), "startmarker live but before start"),
                record(5, now, "startmarker live now"),
            ],
        ),
    )?;
    assert_eq!(
        messages(&resumed.next_hits(2)?),
        ["startmarker five minutes ago", "startmarker live now"],
        "the rest of the backfill, then live records since start"
    );
    Ok(())
}
