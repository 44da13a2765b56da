//! Live tail: the records the writer adds, as they are added, for `/api/v1/logs/tail`. The
//! writer numbers every record it adds (its *position*, in adding order) and, while a tail is
//! open or was open within `HOLD_AFTER_LAST_TAIL`, keeps the newest records here; a tail
//! follows them from a position, so a tail that reconnects with its last position
//! (`Last-Event-ID`) gets exactly what it missed. A listener matches them against its query
//! in a small in-memory index, so the query means exactly what it means in search.
//!
//! The rule a reader must not miss: a listener that falls behind is not waited for. At most
//! `HELD_RECORDS` records and `HELD_MESSAGE_BYTES` of messages are held; a listener whose
//! position was dropped is told it lagged, so a slow client never slows ingest nor grows
//! memory. Positions start again at 0 when the collector starts (`Arrivals::epoch` tells the
//! numberings apart).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tantivy::collector::DocSetCollector;
use tantivy::{Index, IndexWriter};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::index::query::LogQuery;
use crate::index::schema::LogSchema;
use crate::index::search::{Hit, SortKey, parse_query};
use crate::index::writer::{LogEntry, document};

/// Most records held for tails.
pub const HELD_RECORDS: usize = 262_144;
/// Most message bytes held for tails.
pub const HELD_MESSAGE_BYTES: usize = 64 << 20;
/// Records are still held this long after the last tail left, so that one reconnecting
/// (a browser retries after 3 s) resumes where it was.
pub const HOLD_AFTER_LAST_TAIL: Duration = Duration::from_secs(60);

/// Heap the in-memory index of one batch may use while it is built (tantivy's minimum is
/// 15 MB per thread).
const BATCH_INDEX_HEAP: usize = 15_000_000;

/// New records of one tenant, in the order they were added, the first at position `first`.
#[derive(Debug)]
pub struct Arrived {
    pub tenant: String,
    pub first: u64,
    pub entries: Vec<LogEntry>,
}

impl Arrived {
    /// The position after its last record.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }
}

/// The position a listener asked for is no longer held (it was too slow, or away too long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionGone;

/// What is held, and who holds it.
#[derive(Debug, Default)]
struct Held {
    batches: VecDeque<Arc<Arrived>>,
    records: usize,
    message_bytes: usize,
    /// Every record from this position on is in `batches`.
    complete_from: u64,
    /// The position the next record will get.
    next: u64,
    tails: usize,
    last_tail_left: Option<Instant>,
}

impl Held {
    fn holding(&self) -> bool {
        self.tails > 0
            || self
                .last_tail_left
                .is_some_and(|left| left.elapsed() < HOLD_AFTER_LAST_TAIL)
    }

    fn drop_all(&mut self) {
        self.batches.clear();
        self.records = 0;
        self.message_bytes = 0;
        self.complete_from = self.next;
    }
}

/// Where the writer announces what it adds, and tails follow it.
pub struct Arrivals {
    epoch: u64,
    held: Mutex<Held>,
    /// The position after the last record added.
    added: watch::Sender<u64>,
    /// Every record before this position is committed (searchable), or was rolled back and
    /// added again at a later position.
    committed: watch::Sender<u64>,
}

impl Default for Arrivals {
    fn default() -> Arrivals {
        Arrivals {
            epoch: jiff::Timestamp::now().as_microsecond().unsigned_abs(),
            held: Mutex::default(),
            added: watch::channel(0).0,
            committed: watch::channel(0).0,
        }
    }
}

/// A tail's claim on the held records: records are held while it lives (and
/// `HOLD_AFTER_LAST_TAIL` after the last one is dropped).
pub struct TailRegistration {
    arrivals: Arc<Arrivals>,
    /// The position of the first record added after it was made.
    pub from: u64,
}

impl Drop for TailRegistration {
    fn drop(&mut self) {
        let mut held = self.arrivals.lock();
        held.tails -= 1;
        if held.tails == 0 {
            held.last_tail_left = Some(Instant::now());
        }
    }
}

impl Arrivals {
    /// Tells this numbering of positions from another run's.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Every update keeps `Held` consistent step by step.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells whether records are held (else the writer does not copy them).
    pub fn listening(&self) -> bool {
        self.lock().holding()
    }

    /// Numbers `added` records of `tenant` just added and holds `entries`, their copies
    /// (empty when the writer did not copy them, nobody listening).
    pub fn announce(&self, tenant: &str, added: usize, entries: Vec<LogEntry>) {
        if added == 0 {
            return;
        }
        let mut held = self.lock();
        let first = held.next;
        held.next += added as u64;
        if entries.len() != added || !held.holding() {
            held.drop_all();
        } else {
            held.records += entries.len();
            held.message_bytes += entries
                .iter()
                .map(|entry| entry.message.len())
                .sum::<usize>();
            held.batches.push_back(Arc::new(Arrived {
                tenant: tenant.to_owned(),
                first,
                entries,
            }));
            while held.records > HELD_RECORDS || held.message_bytes > HELD_MESSAGE_BYTES {
                let Some(oldest) = held.batches.pop_front() else {
                    break;
                };
                held.records -= oldest.entries.len();
                held.message_bytes -= oldest
                    .entries
                    .iter()
                    .map(|entry| entry.message.len())
                    .sum::<usize>();
                held.complete_from = oldest.end();
            }
        }
        let next = held.next;
        drop(held);
        self.added.send_replace(next);
    }

    /// Marks every record added so far as committed: the writer calls it after a commit.
    pub fn mark_committed(&self) {
        let next = self.lock().next;
        self.committed.send_if_modified(|committed| {
            let moved = *committed != next;
            *committed = next;
            moved
        });
    }

    /// Holds records from now on, for a tail, until the registration is dropped.
    pub fn register(self: &Arc<Self>) -> TailRegistration {
        let mut held = self.lock();
        if !held.holding() {
            held.drop_all();
        }
        held.tails += 1;
        TailRegistration {
            arrivals: Arc::clone(self),
            from: held.next.max(held.complete_from),
        }
    }

    /// Waits (at most `patience`) until every record added before the registration, and
    /// every one not held, is committed; returns the committed position then: every record
    /// before it is searchable, and every one from it on is held.
    pub async fn committed_and_held(&self, from: u64, patience: Duration) -> u64 {
        let mut committed = self.committed.subscribe();
        let waited = tokio::time::timeout(patience, async {
            loop {
                let now = *committed.borrow_and_update();
                if now >= from && now >= self.lock().complete_from {
                    return now;
                }
                if committed.changed().await.is_err() {
                    return now;
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| *self.committed.borrow())
    }

    /// A receiver told of every batch added.
    pub fn added(&self) -> watch::Receiver<u64> {
        self.added.subscribe()
    }

    /// Tells whether every record from `position` on is held.
    pub fn holds(&self, position: u64) -> bool {
        let held = self.lock();
        position >= held.complete_from && position <= held.next
    }

    /// The held batches with records at or after `position`, oldest first.
    pub fn since(&self, position: u64) -> Result<Vec<Arc<Arrived>>, PositionGone> {
        let held = self.lock();
        if position < held.complete_from || position > held.next {
            return Err(PositionGone);
        }
        Ok(held
            .batches
            .iter()
            .filter(|batch| batch.end() > position)
            .cloned()
            .collect())
    }

    /// Per (tenant, stream), the lowest `seq` held at or after `position`: a stream's records
    /// come in `seq` order, so its records below that were added before `position`.
    pub fn first_seqs_since(
        &self,
        position: u64,
    ) -> Result<HashMap<(String, u64), u64>, PositionGone> {
        let mut first = HashMap::new();
        for batch in self.since(position)? {
            let skip = position.saturating_sub(batch.first) as usize;
            for entry in batch.entries.iter().skip(skip) {
                first
                    .entry((batch.tenant.clone(), entry.stream))
                    .and_modify(|seq: &mut u64| *seq = (*seq).min(entry.seq))
                    .or_insert(entry.seq);
            }
        }
        Ok(first)
    }
}

/// A tail's query, ready to match batches of records.
pub struct TailMatcher {
    schema: LogSchema,
    query: LogQuery,
}

impl TailMatcher {
    /// Parses `text` as search does; a bad query is `Error::BadQuery`.
    pub fn new(schema: &LogSchema, text: &str) -> Result<TailMatcher> {
        Ok(TailMatcher {
            schema: schema.clone(),
            query: parse_query(schema, text)?,
        })
    }

    /// The records of `entries`, of `tenant`, the query matches, with their index in
    /// `entries`, in that order.
    pub fn matching(&self, tenant: &str, entries: &[LogEntry]) -> Result<Vec<(usize, Hit)>> {
        let Some(query) = self.query.for_tenant(tenant)? else {
            return Ok(Vec::new());
        };
        let index = Index::create_in_ram(self.schema.schema.clone());
        let in_memory = |source| Error::Index {
            path: "(tail)".into(),
            source,
        };
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, BATCH_INDEX_HEAP)
            .map_err(in_memory)?;
        for entry in entries {
            writer
                .add_document(document(&self.schema, entry))
                .map_err(in_memory)?;
        }
        writer.commit().map_err(in_memory)?;
        let searcher = index.reader().map_err(in_memory)?.searcher();
        let found = searcher
            .search(query.as_ref(), &DocSetCollector)
            .map_err(in_memory)?;
        // One segment, documents in the order they were added.
        let mut indexes: Vec<usize> = found
            .into_iter()
            .map(|address| address.doc_id as usize)
            .collect();
        indexes.sort_unstable();
        Ok(indexes
            .into_iter()
            .filter_map(|index| Some((index, Hit::of(tenant, entries.get(index)?))))
            .collect())
    }
}

impl Hit {
    /// The hit of `entry`, a record of `tenant`.
    pub fn of(tenant: &str, entry: &LogEntry) -> Hit {
        Hit {
            tenant: tenant.to_owned(),
            key: SortKey {
                ts_micros: entry.ts_micros,
                node: entry.node.clone(),
                source: entry.source.clone(),
                seq: entry.seq,
                stream: entry.stream,
            },
            cluster: entry.cluster.clone(),
            role: entry.role.clone(),
            level: entry.level.clone(),
            logger: entry.logger.clone(),
            message: entry.message.clone(),
            truncated: entry.truncated,
            ts_inferred: entry.ts_inferred,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::writer::tests::entry;

    #[test]
    fn a_batch_is_matched_as_search_would_and_comes_out_in_adding_order() -> Result<()> {
        let schema = LogSchema::new();
        let matcher = TailMatcher::new(&schema, "\"killed by signal\" AND node:w2")?;
        let entries = vec![
            entry(30, "w2", 2, 9, "Worker process 7 was killed by signal 9"),
            entry(10, "w1", 1, 4, "Worker process 5 was killed by signal 9"),
            entry(20, "w2", 2, 8, "Worker process 6 was killed by signal 15"),
            entry(5, "w2", 2, 7, "signal killed by nothing"),
        ];
        let hits = matcher.matching("t", &entries)?;
        let found: Vec<(usize, u64)> = hits.iter().map(|(at, hit)| (*at, hit.key.seq)).collect();
        assert_eq!(found, [(0, 9), (2, 8)]);
        assert!(hits.iter().all(|(_, hit)| hit.tenant == "t"));
        let other_tenant = TailMatcher::new(&schema, "\"killed by signal\" AND tenant:u")?;
        assert!(other_tenant.matching("t", &entries)?.is_empty());
        assert_eq!(other_tenant.matching("u", &entries)?.len(), 3);
        assert!(TailMatcher::new(&schema, "level:(ERROR").is_err());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn records_are_held_only_around_tails_and_numbered_always() {
        let arrivals = Arc::new(Arrivals::default());
        assert!(!arrivals.listening());
        arrivals.announce("t", 1, Vec::new());
        let tail = arrivals.register();
        assert_eq!(tail.from, 1, "the record before the tail is numbered 0");
        assert!(arrivals.listening());
        arrivals.announce("t", 1, vec![entry(2, "w1", 1, 2, "after")]);
        let held = arrivals.since(tail.from).expect("held");
        assert_eq!((held.len(), held[0].first), (1, 1));
        assert_eq!(arrivals.since(0).err(), Some(PositionGone), "never held");
        drop(tail);
        tokio::time::advance(HOLD_AFTER_LAST_TAIL / 2).await;
        assert!(
            arrivals.listening(),
            "held a while for a tail that reconnects"
        );
        tokio::time::advance(HOLD_AFTER_LAST_TAIL).await;
        assert!(!arrivals.listening());
        arrivals.announce("t", 1, Vec::new());
        assert_eq!(arrivals.since(1).err(), Some(PositionGone));
        assert_eq!(arrivals.since(3).map(|held| held.len()), Ok(0));
    }

    #[test]
    fn a_listener_further_behind_than_the_held_records_is_told_so() {
        let arrivals = Arc::new(Arrivals::default());
        let tail = arrivals.register();
        let batch = |seq: u64| {
            (0..1024)
                .map(|n| entry(n, "w1", 1, seq * 1024 + n as u64, "tick"))
                .collect::<Vec<_>>()
        };
        for seq in 0..(HELD_RECORDS / 1024 + 1) as u64 {
            arrivals.announce("t", 1024, batch(seq));
        }
        assert_eq!(arrivals.since(tail.from).err(), Some(PositionGone));
        assert!(arrivals.since(1024).is_ok(), "the newest are held");
        let first = arrivals.first_seqs_since(2048).expect("held");
        assert_eq!(first.get(&("t".to_owned(), 1)), Some(&2048));
    }
}
