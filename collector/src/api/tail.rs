//! `GET /api/v1/logs/tail?q=&start=`: Server-Sent Events of new records of the caller's
//! tenants that match `q`, as the writer adds them (well within a second of their arrival).
//! Each event is one hit, as search gives it, with an `id`: its position. A client that does
//! not keep up is disconnected, after an `error` event when there is room for one, rather
//! than slowing ingest or growing memory.
//!
//! The rule a reader must not miss: no record is sent twice nor skipped across a reconnect.
//! A client that reconnects with `Last-Event-ID` (EventSource sends it by itself) resumes
//! right after that event: from the held records (`index::tail`) after its position, or, if
//! it left during the backfill of `start`, from the backfill's cursor. A backfill is the
//! newest `BACKFILL_LIMIT` records with `ts >= start` that were committed when the tail
//! opened (`committed`); every later one comes from the held records, so the two never
//! overlap. With `start`, live records before `start` are not sent either.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::access::Reader;
use crate::api::logs::HitJson;
use crate::api::time::time_param;
use crate::api::{ApiError, AppState, within_budget};
use crate::auth::Access;
use crate::index::search::{Hit, SearchRequest, SortKey, SortOrder, search};
use crate::index::tail::{Arrivals, PositionGone, TailMatcher, TailRegistration};

/// Events waiting for one client before it counts as too slow.
const CLIENT_BUFFER: usize = 1024;
/// Most records a tail with `start` sends before it goes live: the newest this many.
pub const BACKFILL_LIMIT: usize = 1000;
/// How long a tail with `start` waits for the writer's next commit, so that its backfill
/// holds every record added before it opened.
const COMMIT_PATIENCE: Duration = Duration::from_secs(10);
/// A tail whose matches are rare still sends its position this often (an event with only an
/// `id`), so that a reconnect does not start from a position no longer held.
const POSITION_EVERY: Duration = Duration::from_secs(5);

/// Query parameters of `/api/v1/logs/tail`.
#[derive(Debug, Default, Deserialize)]
pub struct TailParams {
    q: Option<String>,
    start: Option<String>,
}

/// Where a tail resumes, as its events' ids say: `<epoch>-<position>` (live: every record
/// from `position` on is still to send), or `<epoch>-<position>-<cursor>` (in the backfill:
/// its hits after `cursor`, then the live records from `position`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    Live { next: u64 },
    Backfill { committed: u64, after: SortKey },
}

impl Resume {
    fn id(&self, epoch: u64) -> String {
        match self {
            Resume::Live { next } => format!("{epoch:x}-{next}"),
            Resume::Backfill { committed, after } => {
                format!("{epoch:x}-{committed}-{}", after.to_cursor())
            }
        }
    }

    /// The resume point of `id`, if it is one of this run's (`epoch`).
    fn parse(id: &str, epoch: u64) -> Option<Resume> {
        let mut parts = id.trim().splitn(3, '-');
        let of_epoch = u64::from_str_radix(parts.next()?, 16).ok()?;
        let position = parts.next()?.parse().ok()?;
        if of_epoch != epoch {
            return None;
        }
        match parts.next() {
            None => Some(Resume::Live { next: position }),
            Some(cursor) => Some(Resume::Backfill {
                committed: position,
                after: SortKey::from_cursor(cursor)?,
            }),
        }
    }
}

/// `GET /api/v1/logs/tail?q=&start=`
pub async fn tail(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    Query(params): Query<TailParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let query = params.q.unwrap_or_default();
    let matcher = TailMatcher::new(state.store.schema(), &query)?;
    let start = time_param("start", params.start, Timestamp::now())?;
    let place = state
        .tail_clients
        .take(&reader.tenants, reader.every_tenant)
        .map_err(|refusal| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: refusal.to_string(),
        })?;
    let arrivals = Arc::clone(state.store.arrivals());
    let registration = arrivals.register();
    let asked = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.trim().is_empty());
    let mut notice = None;
    let resume = match asked.map(|id| Resume::parse(id, arrivals.epoch())) {
        Some(Some(resume)) if arrivals.holds(resume.live_from()) => Some(resume),
        Some(_) => {
            notice = Some(
                "cannot resume after the last event: the collector restarted or no longer holds the records after it; records may be missing",
            );
            None
        }
        None => None,
    };
    let (backfill, next) = match resume {
        Some(Resume::Live { next }) => (Vec::new(), next),
        Some(Resume::Backfill { committed, after }) => {
            let hits = backfill(&state, &reader, &query, start, committed, Some(after)).await?;
            (hits, committed)
        }
        None if start.is_some() => {
            let committed = arrivals
                .committed_and_held(registration.from, COMMIT_PATIENCE)
                .await;
            let hits = backfill(&state, &reader, &query, start, committed, None).await?;
            (hits, committed)
        }
        None => (Vec::new(), registration.from),
    };
    let (events, receiver) = mpsc::channel(CLIENT_BUFFER);
    let tail = Tail {
        arrivals,
        matcher: Arc::new(matcher),
        start_micros: start.map(|start| start.as_microsecond()),
        reader,
        access: state.access,
        events,
    };
    tokio::spawn(async move {
        if tail.send_backfill(notice, backfill, next) {
            tail.follow(next, registration).await;
        }
        // The client's place is free once it has left.
        drop(place);
    });
    Ok(Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::default()))
}

impl Resume {
    /// The first live position it still needs.
    fn live_from(&self) -> u64 {
        match self {
            Resume::Live { next } => *next,
            Resume::Backfill { committed, .. } => *committed,
        }
    }
}

/// The records of a tail's backfill: the newest `BACKFILL_LIMIT` matches of `query` with
/// `ts >= start` added before position `committed` (after `after`, when resuming), oldest
/// first, each with the id that resumes after it.
async fn backfill(
    state: &AppState,
    reader: &Reader,
    query: &str,
    start: Option<Timestamp>,
    committed: u64,
    after: Option<SortKey>,
) -> Result<Vec<(Hit, String)>, ApiError> {
    let arrivals = Arc::clone(state.store.arrivals());
    let store = Arc::clone(&state.store);
    let order = if after.is_some() {
        SortOrder::Asc
    } else {
        SortOrder::Desc
    };
    let request = SearchRequest {
        tenants: reader.tenants.clone(),
        query: query.to_owned(),
        filters: Vec::new(),
        start,
        end: None,
        limit: BACKFILL_LIMIT,
        order,
        after,
    };
    let mut hits = within_budget(state, "tail", move || Ok(search(&store, &request)?.hits)).await?;
    if order == SortOrder::Desc {
        hits.reverse();
    }
    // Records committed since `committed` are the live part's: the backfill leaves them out.
    // A stream's records come in `seq` order, so its first held `seq` from there splits it.
    let later: HashMap<(String, u64), u64> =
        arrivals
            .first_seqs_since(committed)
            .map_err(|PositionGone| ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "records arrive faster than a tail can be opened; retry".to_owned(),
            })?;
    let epoch = arrivals.epoch();
    Ok(hits
        .into_iter()
        .filter(|hit| {
            later
                .get(&(hit.tenant.clone(), hit.key.stream))
                .is_none_or(|first| hit.key.seq < *first)
        })
        .map(|hit| {
            let id = Resume::Backfill {
                committed,
                after: hit.key.clone(),
            }
            .id(epoch);
            (hit, id)
        })
        .collect())
}

/// One client's tail.
struct Tail {
    arrivals: Arc<Arrivals>,
    matcher: Arc<TailMatcher>,
    start_micros: Option<i64>,
    reader: Reader,
    access: Arc<Access>,
    events: mpsc::Sender<Result<Event, Infallible>>,
}

impl Tail {
    /// Sends `notice` (a `gap` event), the backfill's hits, then the position `next` the
    /// live part starts from; tells whether the client is still there.
    fn send_backfill(&self, notice: Option<&str>, hits: Vec<(Hit, String)>, next: u64) -> bool {
        if let Some(notice) = notice
            && self
                .events
                .try_send(Ok(Event::default().event("gap").data(notice)))
                .is_err()
        {
            return false;
        }
        for (hit, id) in hits {
            if !self.send_hit(hit, id) {
                return false;
            }
        }
        self.send_position(next)
    }

    fn send_hit(&self, hit: Hit, id: String) -> bool {
        let event = Event::default()
            .id(id)
            .json_data(HitJson::new(hit, self.reader.spans_tenants()))
            .unwrap_or_else(|_| Event::default().event("error").data("unencodable record"));
        // Full (too slow) or gone: either way this client is done.
        self.events.try_send(Ok(event)).is_ok()
    }

    /// An event with only an id: where to resume from (EventSource keeps it, sends nothing).
    fn send_position(&self, next: u64) -> bool {
        let id = Resume::Live { next }.id(self.arrivals.epoch());
        self.events.try_send(Ok(Event::default().id(id))).is_ok()
    }

    /// Sends the matching records from position `next` on until the client leaves, falls
    /// behind, or its token no longer grants what it did (revoked or changed by a reload of
    /// the tokens). Records are held while `_registration` lives.
    async fn follow(self, mut next: u64, _registration: TailRegistration) {
        let mut generation = self.access.generation();
        let mut added = self.arrivals.added();
        let mut position_sent = tokio::time::Instant::now();
        let epoch = self.arrivals.epoch();
        loop {
            added.borrow_and_update();
            let batches = match self.arrivals.since(next) {
                Ok(batches) => batches,
                Err(PositionGone) => {
                    let _ = self
                        .events
                        .try_send(Ok(Event::default().event("error").data(
                            "too slow: records went by unsent and are no longer held; reconnect",
                        )));
                    return;
                }
            };
            let mut sent_any = false;
            for arrived in batches {
                let skip = next.saturating_sub(arrived.first) as usize;
                let first = arrived.first;
                next = arrived.end();
                if !self.reader.reads(&arrived.tenant) {
                    continue;
                }
                let matcher = Arc::clone(&self.matcher);
                let hits = match tokio::task::spawn_blocking(move || {
                    matcher.matching(&arrived.tenant, &arrived.entries)
                })
                .await
                {
                    Ok(Ok(hits)) => hits,
                    Ok(Err(error)) => {
                        tracing::error!(%error, "cannot match records for a tail");
                        return;
                    }
                    Err(_) => return,
                };
                for (index, hit) in hits {
                    if index < skip
                        || self
                            .start_micros
                            .is_some_and(|start| hit.key.ts_micros < start)
                    {
                        continue;
                    }
                    let id = Resume::Live {
                        next: first + index as u64 + 1,
                    }
                    .id(epoch);
                    if !self.send_hit(hit, id) {
                        return;
                    }
                    sent_any = true;
                }
            }
            if sent_any {
                position_sent = tokio::time::Instant::now();
            } else if position_sent.elapsed() >= POSITION_EVERY {
                if !self.send_position(next) {
                    return;
                }
                position_sent = tokio::time::Instant::now();
            }
            tokio::select! {
                () = self.events.closed() => return,
                changed = added.changed() => if changed.is_err() { return },
            }
            if self.access.generation() != generation {
                generation = self.access.generation();
                if !self.reader.still_granted(&self.access) {
                    let _ = self.events.try_send(Ok(Event::default()
                        .event("error")
                        .data("the token was revoked or changed; sign in again")));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::api::router;
    use crate::api::tail_places::TailPlaces;
    use crate::api::test_support::state_reading;
    use crate::config::DEFAULT_MAX_OPEN_PARTITIONS;
    use crate::index::partition::LogStore;
    use crate::index::writer::LogWriter;
    use crate::index::writer::tests::entry;

    use super::*;

    async fn open_tail(state: &AppState, query: &str) -> (StatusCode, Body) {
        let response = router(state.clone())
            .oneshot(
                Request::get(format!("/api/v1/logs/tail?q={query}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        (response.status(), response.into_body())
    }

    /// The next `data:` line of the stream, as JSON.
    async fn next_event(body: &mut Body, buffer: &mut String) -> Option<serde_json::Value> {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|line| line.strip_prefix("data: ")) {
                    return serde_json::from_str(data).ok();
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// An empty store in a temporary directory (kept while the directory value lives).
    fn empty_store() -> (tempfile::TempDir, Arc<LogStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(LogStore::open(dir.path(), DEFAULT_MAX_OPEN_PARTITIONS).expect("store"));
        (dir, store)
    }

    fn state(store: Arc<LogStore>) -> AppState {
        state_reading(store, &["mine"])
    }

    #[tokio::test]
    async fn new_matching_records_of_the_callers_tenants_are_streamed_in_order() {
        let (_dir, store) = empty_store();
        let writer =
            LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None).expect("writer");
        let state = state(Arc::clone(&store));
        let (status, mut body) = open_tail(&state, "%22killed%20by%20signal%22").await;
        assert_eq!(status, StatusCode::OK);
        for (tenant, seq) in [("theirs", 1), ("mine", 2)] {
            writer
                .write(
                    tenant.to_owned(),
                    vec![
                        entry(
                            seq * 10,
                            "w1",
                            seq as u64,
                            1,
                            "Worker process 1 was killed by signal 9",
                        ),
                        entry(seq * 10 + 1, "w1", seq as u64, 2, "nothing to see"),
                        entry(
                            seq * 10 + 2,
                            "w1",
                            seq as u64,
                            3,
                            "Worker process 2 was killed by signal 9",
                        ),
                    ],
                )
                .await
                .expect("written");
        }
        let mut buffer = String::new();
        let first = next_event(&mut body, &mut buffer).await.expect("an event");
        let second = next_event(&mut body, &mut buffer).await.expect("an event");
        assert_eq!(first["message"], "Worker process 1 was killed by signal 9");
        assert_eq!(second["message"], "Worker process 2 was killed by signal 9");
        assert_eq!(
            first["stream"], "0000000000000002",
            "the caller's tenant only"
        );
        writer.shutdown().await;
    }

    /// `[search] max_tail_clients` live tails at once: one more is 503, and a client that
    /// leaves frees its place.
    #[tokio::test]
    async fn live_tails_are_bounded_and_a_leaving_client_frees_its_place() {
        let (_dir, store) = empty_store();
        let mut state = state(store);
        state.tail_clients = Arc::new(TailPlaces::new(1, 1));
        let (status, first) = open_tail(&state, "*").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = open_tail(&state, "*").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        let _third = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (status, body) = open_tail(&state, "*").await;
                if status == StatusCode::OK {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the place is free once the first client has left");
    }

    /// The cap of live tails was global, so one tenant could take every place.
    /// Now tenant `team-a` holds at most its share (2 of 4 here), `team-b` still opens a tail
    /// while `team-a` holds its whole share, and a place comes back when a tail ends.
    #[tokio::test]
    async fn a_tenant_holds_only_its_share_of_live_tails() {
        use crate::auth::token::{digest, hex};
        let (_dir, store) = empty_store();
        let stanza = |name: &str, secret: &str, tenant: &str| {
            format!(
                "[[tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\ntenants = [\"{tenant}\"]\ncan = [\"read\"]\n",
                hex(&digest(secret))
            )
        };
        let config = crate::CollectorConfig::parse(&format!(
            "{}{}",
            stanza("reader-a", "secret-a", "team-a"),
            stanza("reader-b", "secret-b", "team-b")
        ))
        .expect("valid");
        let mut state = state(store);
        state.access = Arc::new(crate::auth::Access::new(&config, Arc::default()));
        state.tail_clients = Arc::new(TailPlaces::new(4, 2));
        let open = |secret: &'static str| {
            let router = router(state.clone());
            async move {
                let response = router
                    .oneshot(
                        Request::get("/api/v1/logs/tail?q=*")
                            .header("authorization", format!("Bearer {secret}"))
                            .body(Body::empty())
                            .expect("request"),
                    )
                    .await
                    .expect("response");
                (response.status(), response.into_body())
            }
        };
        let (status, first_of_a) = open("secret-a").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _second_of_a) = open("secret-a").await;
        assert_eq!(status, StatusCode::OK);
        let (status, refused) = open("secret-a").await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "past team-a's share"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&refused.collect().await.expect("body").to_bytes())
                .expect("a JSON error");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("\"team-a\"") && message.contains("max_tail_clients_per_tenant"),
            "{body}"
        );
        let (status, _first_of_b) = open("secret-b").await;
        assert_eq!(status, StatusCode::OK, "team-b is not locked out by team-a");

        drop(first_of_a);
        let _again = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (status, body) = open("secret-a").await;
                if status == StatusCode::OK {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("team-a's place comes back once its tail has ended");
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_disconnected_without_holding_ingest_back() {
        let (_dir, store) = empty_store();
        let writer =
            LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None).expect("writer");
        let state = state(Arc::clone(&store));
        let (_, mut body) = open_tail(&state, "*").await;
        // Far more matching records than the client buffer, while it reads nothing.
        for batch in 0..4u64 {
            let entries = (0..(CLIENT_BUFFER as u64))
                .map(|n| {
                    entry(
                        (batch * 10_000 + n) as i64,
                        "w1",
                        1,
                        batch * 10_000 + n,
                        "tick",
                    )
                })
                .collect();
            writer
                .write("mine".to_owned(), entries)
                .await
                .expect("ingest is not held back");
        }
        // What was buffered can be read, then the stream ends instead of waiting forever.
        let mut events = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), body.frame()).await {
                Ok(Some(Ok(_))) => events += 1,
                Ok(_) => break,
                Err(_) => panic!("the stream of a slow client did not end"),
            }
        }
        assert!(events > 0 && events <= CLIENT_BUFFER + 1, "{events}");
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn a_bad_query_is_refused_before_streaming() {
        let (_dir, store) = empty_store();
        let (status, _) = open_tail(&state(store), "level:(ERROR").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_tail_ends_once_a_reload_revokes_its_token() {
        use crate::auth::token::{digest, hex};
        let (_dir, store) = empty_store();
        let writer =
            LogWriter::start(Arc::clone(&store), Duration::from_millis(10), None).expect("writer");
        let with_token = crate::CollectorConfig::parse(&format!(
            "[[tokens]]\nname = \"reader\"\nsha256 = \"{}\"\ntenants = [\"mine\"]\ncan = [\"read\"]\n",
            hex(&digest("secret"))
        ))
        .expect("valid");
        let access = Arc::new(crate::auth::Access::new(&with_token, Arc::default()));
        let mut state = state(Arc::clone(&store));
        state.access = Arc::clone(&access);
        let response = router(state)
            .oneshot(
                Request::get("/api/v1/logs/tail?q=*")
                    .header("authorization", "Bearer secret")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut buffer = String::new();
        let write = |seq: u64| {
            writer.write(
                "mine".to_owned(),
                vec![entry(seq as i64, "w1", 1, seq, "a record")],
            )
        };
        write(1).await.expect("written");
        let first = next_event(&mut body, &mut buffer).await.expect("an event");
        assert_eq!(first["seq"], 1);

        // Another token only: the next arrival ends the tail with an `error` event.
        access.reload(&crate::CollectorConfig::embedded_default());
        write(2).await.expect("written");
        let rest = tokio::time::timeout(Duration::from_secs(5), async {
            let mut rest = String::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    rest.push_str(&String::from_utf8_lossy(&data));
                }
            }
            rest
        })
        .await
        .expect("the stream ends");
        let rest = format!("{buffer}{rest}");
        assert!(rest.contains("event: error"), "{rest}");
        assert!(rest.contains("revoked"), "{rest}");
        assert!(
            !rest.contains("\"seq\":2"),
            "no record after the revocation: {rest}"
        );
        writer.shutdown().await;
    }
}
