//! One (tenant, UTC day) partition of the series store: its blocks, and while it is written to,
//! its live part (series index in memory, newest timestamp per series, and the head).
//!
//! The rule a reader must not miss: everything in `PartitionState` changes under the
//! partition's mutex in one step (a sealed block appears as its samples leave the head; a
//! merged block appears as its inputs disappear), so a query that takes its snapshot under the
//! mutex sees each sample exactly once. File reads and writes happen outside the mutex; a block
//! taken into a snapshot is opened under it, so deleting the file later does not hurt the query.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::series::block::{self, BlockInfo};
use crate::series::error::{SeriesError, SeriesResult};
use crate::series::index::{INDEX_FILE, SeriesIndex};
use crate::series::select::Labels;

/// Milliseconds in a UTC day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Which partition a sample belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PartitionKey {
    pub(crate) tenant: String,
    /// The UTC day of the samples' timestamps, in days since 1970-01-01.
    pub(crate) day: i64,
}

impl PartitionKey {
    /// The first millisecond of the day.
    pub(crate) fn start_ms(&self) -> i64 {
        self.day * DAY_MS
    }

    /// The last millisecond of the day.
    pub(crate) fn end_ms(&self) -> i64 {
        self.day * DAY_MS + DAY_MS - 1
    }

    /// The directory name of the day, `YYYY-MM-DD`.
    pub(crate) fn day_name(&self) -> String {
        self.date().to_string()
    }

    /// The UTC day.
    pub(crate) fn date(&self) -> jiff::civil::Date {
        let start = Timestamp::from_millisecond(self.start_ms())
            .expect("partition days come from valid timestamps");
        start.to_zoned_datetime(TimeZone::UTC).date()
    }
}

/// The day (days since 1970-01-01) of a sample at `ts_ms`, or `None` when the timestamp is
/// outside the years -9999..=9999.
pub(crate) fn day_of(ts_ms: i64) -> Option<i64> {
    Timestamp::from_millisecond(ts_ms).ok()?;
    Some(ts_ms.div_euclid(DAY_MS))
}

/// The day of a partition directory named `YYYY-MM-DD`.
pub(crate) fn parse_day_name(name: &str) -> Option<i64> {
    let date: jiff::civil::Date = name.parse().ok()?;
    let start = date
        .to_zoned_datetime(TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_millisecond();
    let day = start.div_euclid(DAY_MS);
    (date.to_string() == name).then_some(day)
}

/// The samples of one series not sealed yet, ascending by time.
#[derive(Debug, Default, Clone)]
pub(crate) struct HeadSeries {
    pub(crate) timestamps: Vec<i64>,
    pub(crate) values: Vec<f64>,
}

/// The part of a partition that exists while it is written to.
#[derive(Debug)]
pub(crate) struct LiveSeries {
    pub(crate) index: SeriesIndex,
    /// Per series id: the newest timestamp stored (head or blocks); `i64::MIN` when none.
    pub(crate) newest_ts: Vec<i64>,
    /// Per series id.
    pub(crate) head: Vec<HeadSeries>,
    pub(crate) head_samples: usize,
}

impl LiveSeries {
    /// Loads the index of the partition in `dir` and the newest timestamps from `blocks`.
    fn load(dir: &Path, blocks: &[Arc<BlockInfo>]) -> SeriesResult<LiveSeries> {
        let index = SeriesIndex::load(&dir.join(INDEX_FILE))?;
        let mut newest_ts = vec![i64::MIN; index.len()];
        for info in blocks {
            let file = open_block(info)?;
            let directory = block::read_directory(&file, &info.path)?;
            for entry in &directory.entries {
                match newest_ts.get_mut(entry.series_id as usize) {
                    Some(newest) => *newest = (*newest).max(entry.max_ts),
                    None => tracing::warn!(
                        block = %info.path.display(),
                        series_id = entry.series_id,
                        "block names a series missing from the series index, ignoring it"
                    ),
                }
            }
        }
        let head = vec![HeadSeries::default(); index.len()];
        Ok(LiveSeries {
            index,
            newest_ts,
            head,
            head_samples: 0,
        })
    }

    /// The id of `labels`, adding the series unless that would pass `max_series`.
    pub(crate) fn id_or_insert(&mut self, labels: Labels, max_series: usize) -> Option<u32> {
        if let Some(id) = self.index.get(&labels) {
            return Some(id);
        }
        if self.index.len() >= max_series {
            return None;
        }
        let id = self.index.insert(labels);
        self.newest_ts.push(i64::MIN);
        self.head.push(HeadSeries::default());
        Some(id)
    }

    /// Adds a sample of series `id`; `false` when it is at or before the newest stored one.
    pub(crate) fn push(&mut self, id: u32, ts_ms: i64, value: f64) -> bool {
        let at = id as usize;
        if ts_ms <= self.newest_ts[at] {
            return false;
        }
        self.newest_ts[at] = ts_ms;
        self.head[at].timestamps.push(ts_ms);
        self.head[at].values.push(value);
        self.head_samples += 1;
        true
    }

    /// Tells whether nothing waits to be sealed.
    pub(crate) fn is_sealed(&self) -> bool {
        self.head_samples == 0 && self.index.pending().is_none()
    }
}

/// What a partition holds, changed only under its mutex.
#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    /// Sealed blocks, ascending by id.
    pub(crate) blocks: Vec<Arc<BlockInfo>>,
    /// The id the next block gets.
    pub(crate) next_block_id: u64,
    /// Present while the partition is written to (loaded on the first append, dropped by
    /// `compact` once its day has ended and all is sealed).
    pub(crate) live: Option<LiveSeries>,
    /// Deleted by retention: no blocks, and never written again (a new sample of its day goes
    /// to a new partition).
    pub(crate) deleted: bool,
}

/// One partition: its key, directory and state.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) key: PartitionKey,
    pub(crate) dir: PathBuf,
    state: Mutex<PartitionState>,
}

/// Opens the file of a block for reading.
pub(crate) fn open_block(info: &BlockInfo) -> SeriesResult<File> {
    File::open(&info.path).map_err(|source| SeriesError::Read {
        path: info.path.clone(),
        source,
    })
}

impl Partition {
    /// A partition with `state` (as found on disk, or empty).
    pub(crate) fn new(key: PartitionKey, dir: PathBuf, state: PartitionState) -> Partition {
        Partition {
            key,
            dir,
            state: Mutex::new(state),
        }
    }

    /// Locks the state. A panic while the lock was held (a bug) does not stop the store: the
    /// state is only changed in single steps, so it is still consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, PartitionState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the state with its live part loaded.
    pub(crate) fn lock_live(&self) -> SeriesResult<MutexGuard<'_, PartitionState>> {
        let mut state = self.lock();
        if state.deleted {
            return Err(SeriesError::PartitionDeleted {
                path: self.dir.clone(),
            });
        }
        if state.live.is_none() {
            let live = LiveSeries::load(&self.dir, &state.blocks)?;
            state.live = Some(live);
        }
        Ok(state)
    }
}
