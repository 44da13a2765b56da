//! Reading the store: `TenantSource`, the `SeriesSource` of some tenants, their series labeled
//! `tenant` for a caller of several. A query picks partitions by tenant and day (and by its
//! `tenant` matchers) before opening anything, matches series in each partition's
//! index, and decodes only the columns of matched series in blocks whose time range overlaps.
//!
//! The rule a reader must not miss: a partition's snapshot (matched head samples, blocks, their
//! open files) is taken in one step under its mutex, so a seal or merge running at the same
//! time cannot make a sample appear twice or not at all. Series indexes of partitions not
//! being written to are read once and kept in a cache with a byte budget (memory stays
//! bounded).

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::parallel;
use crate::series::block::{self, BlockInfo};
use crate::series::column_cache::ColumnCache;
use crate::series::error::SeriesError;
use crate::series::index::INDEX_FILE;
use crate::series::partition::{Partition, open_block};
use crate::series::select::{
    Labels, Matcher, SampleSender, Samples, SelectError, SeriesSamples, SeriesSource, TENANT_LABEL,
    TenantLabel,
};
use crate::series::store::SeriesStore;

/// The most samples one `select` may gather (16 bytes each in memory); a PromQL query
/// asks for what its own limit leaves (`select_within`).
const MAX_SELECT_SAMPLES: usize = 20_000_000;

/// The samples a selection has gathered so far, across partitions and the threads that
/// decode them, against the most it may.
struct Gathered {
    samples: AtomicUsize,
    max_samples: usize,
}

impl Gathered {
    fn new(max_samples: usize) -> Gathered {
        Gathered {
            samples: AtomicUsize::new(0),
            max_samples,
        }
    }

    /// Counts `count` more samples; fails past the limit, so that reading stops there.
    fn add(&self, count: usize) -> Result<(), SelectError> {
        let before = self.samples.fetch_add(count, Ordering::Relaxed);
        if before.saturating_add(count) > self.max_samples {
            return Err(SelectError::TooManySamples {
                max_samples: self.max_samples,
            });
        }
        Ok(())
    }
}

/// Series found by a query: labels → runs of samples in range, in time order unless the
/// series came from two tenants (none when samples were not asked for; a series is a key
/// only when it has something in the range).
type Found = BTreeMap<Arc<Labels>, Vec<Samples>>;

/// One matched series of one partition while it is being read.
struct Matched {
    id: u32,
    labels: Arc<Labels>,
    /// From the blocks, then the head.
    pieces: Vec<Samples>,
    present: bool,
}

/// One run of samples from `pieces`: shared when there is one piece (a day's block, the
/// usual), else joined, sorted, one per timestamp.
fn join(mut pieces: Vec<Samples>) -> Samples {
    if pieces.len() == 1 {
        return pieces.pop().expect("one piece");
    }
    let mut joined: Vec<(i64, f64)> =
        Vec::with_capacity(pieces.iter().map(|piece| piece.len()).sum());
    for piece in &pieces {
        joined.extend_from_slice(piece);
    }
    if !joined.is_sorted_by(|a, b| a.0 < b.0) {
        joined.sort_by_key(|sample| sample.0);
        joined.dedup_by_key(|sample| sample.0);
    }
    Samples::from(joined)
}

/// The series of some tenants.
pub(crate) struct TenantSource {
    store: Arc<SeriesStore>,
    tenants: Vec<String>,
    tenant_label: TenantLabel,
}

fn storage(error: SeriesError) -> SelectError {
    SelectError::Storage(error.to_string())
}

fn matches_any(matcher_sets: &[&[Matcher]], labels: &Labels) -> bool {
    matcher_sets.is_empty()
        || matcher_sets
            .iter()
            .any(|set| set.iter().all(|matcher| matcher.matches_labels(labels)))
}

/// `labels` with `tenant="<tenant>"` in its sorted place. A `tenant` label stored before ingest
/// renamed it (an older collector) gives way to the true one.
fn with_tenant_label(labels: &Labels, tenant: &str) -> Labels {
    let mut labeled: Labels = Vec::with_capacity(labels.len() + 1);
    labeled.extend(
        labels
            .iter()
            .filter(|(name, _)| name != TENANT_LABEL)
            .cloned(),
    );
    let at = labeled.partition_point(|(name, _)| name.as_str() < TENANT_LABEL);
    labeled.insert(at, (TENANT_LABEL.to_owned(), tenant.to_owned()));
    labeled
}

/// The matcher sets to run over the stored series of `tenant`, when series carry a tenant
/// label: a set whose `tenant` matchers reject `tenant` is left out, the others lose their
/// `tenant` matchers. `None` when every set was left out (the tenant is not read at all).
fn sets_for_tenant(matcher_sets: &[&[Matcher]], tenant: &str) -> Option<Vec<Vec<Matcher>>> {
    if matcher_sets.is_empty() {
        return Some(Vec::new());
    }
    let sets: Vec<Vec<Matcher>> = matcher_sets
        .iter()
        .filter(|set| {
            set.iter()
                .filter(|matcher| matcher.name == TENANT_LABEL)
                .all(|matcher| matcher.matches(tenant))
        })
        .map(|set| {
            set.iter()
                .filter(|matcher| matcher.name != TENANT_LABEL)
                .cloned()
                .collect()
        })
        .collect();
    (!sets.is_empty()).then_some(sets)
}

impl TenantSource {
    pub(crate) fn new(
        store: Arc<SeriesStore>,
        tenants: Vec<String>,
        tenant_label: TenantLabel,
    ) -> TenantSource {
        TenantSource {
            store,
            tenants,
            tenant_label,
        }
    }

    /// The series matching any of `matcher_sets` with something in `[start_ms, end_ms]`, with
    /// their samples when `want_samples`.
    fn gather(
        &self,
        matcher_sets: &[&[Matcher]],
        start_ms: i64,
        end_ms: i64,
        want_samples: bool,
        max_samples: usize,
    ) -> Result<Found, SelectError> {
        let mut found = Found::new();
        if start_ms > end_ms {
            return Ok(found);
        }
        let gathered = Gathered::new(max_samples);
        for partition in self
            .store
            .partitions_in_range(&self.tenants, start_ms, end_ms)
        {
            let tenant = &partition.key.tenant;
            let tenant_sets = match self.tenant_label {
                TenantLabel::Added => match sets_for_tenant(matcher_sets, tenant) {
                    Some(sets) => Some(sets),
                    None => continue,
                },
                TenantLabel::Omitted => None,
            };
            let tenant_set_slices: Vec<&[Matcher]>;
            let sets = match &tenant_sets {
                Some(sets) => {
                    tenant_set_slices = sets.iter().map(Vec::as_slice).collect();
                    &tenant_set_slices[..]
                }
                None => matcher_sets,
            };
            let matched = read_partition(
                &self.store,
                &partition,
                sets,
                start_ms,
                end_ms,
                want_samples,
                &gathered,
            )?;
            for series in matched.into_iter().filter(|series| series.present) {
                let labels = match self.tenant_label {
                    TenantLabel::Added => Arc::new(with_tenant_label(&series.labels, tenant)),
                    TenantLabel::Omitted => series.labels,
                };
                found.entry(labels).or_default().extend(series.pieces);
            }
        }
        Ok(found)
    }

    fn series_labels(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Arc<Labels>>, SelectError> {
        let sets: Vec<&[Matcher]> = matcher_sets.iter().map(Vec::as_slice).collect();
        Ok(self
            .gather(&sets, start_ms, end_ms, false, usize::MAX)?
            .into_keys()
            .collect())
    }
}

/// Reads one partition: the matched series with their samples in range.
fn read_partition(
    store: &SeriesStore,
    partition: &Partition,
    matcher_sets: &[&[Matcher]],
    start_ms: i64,
    end_ms: i64,
    want_samples: bool,
    gathered: &Gathered,
) -> Result<Vec<Matched>, SelectError> {
    let (mut matched, blocks, live) = {
        let state = partition.lock();
        let mut blocks: Vec<(Arc<BlockInfo>, File)> = Vec::new();
        for info in &state.blocks {
            if info.max_ts >= start_ms && info.min_ts <= end_ms {
                blocks.push((Arc::clone(info), open_block(info).map_err(storage)?));
            }
        }
        let mut matched = Vec::new();
        if let Some(live) = &state.live {
            for (id, labels) in live.index.iter() {
                if !matches_any(matcher_sets, labels) {
                    continue;
                }
                let head = &live.head[id as usize];
                let from = head.timestamps.partition_point(|&ts| ts < start_ms);
                let to = head.timestamps.partition_point(|&ts| ts <= end_ms);
                let pieces = if want_samples && from < to {
                    gathered.add(to - from)?;
                    let samples: Vec<(i64, f64)> = head.timestamps[from..to]
                        .iter()
                        .copied()
                        .zip(head.values[from..to].iter().copied())
                        .collect();
                    vec![Samples::from(samples)]
                } else {
                    Vec::new()
                };
                matched.push(Matched {
                    id,
                    labels: Arc::clone(labels),
                    pieces,
                    present: from < to,
                });
            }
        }
        (matched, blocks, state.live.is_some())
    };
    if !live {
        // The index is read after the blocks were taken: it only grows, so it names every
        // series they hold.
        let index = store
            .index_cache
            .load(&partition.dir.join(INDEX_FILE))
            .map_err(storage)?;
        matched = index
            .iter()
            .filter(|(_, labels)| matches_any(matcher_sets, labels))
            .map(|(id, labels)| Matched {
                id,
                labels: Arc::clone(labels),
                pieces: Vec::new(),
                present: false,
            })
            .collect();
    }
    if matched.is_empty() {
        return Ok(matched);
    }
    let mut directories = Vec::with_capacity(blocks.len());
    for (info, file) in &blocks {
        directories.push(block::read_directory(file, &info.path).map_err(storage)?);
    }
    let blocks: Vec<BlockToRead<'_>> = blocks
        .iter()
        .zip(&directories)
        .map(|((info, file), directory)| BlockToRead {
            info,
            file,
            directory,
        })
        .collect();
    // Decoding is most of a large query's time: the matched series are split over the cores.
    let mut from_blocks: Vec<Vec<Samples>> = vec![Vec::new(); matched.len()];
    let parts = if want_samples {
        parallel::parts_for(matched.len())
    } else {
        1
    };
    let per_part = matched.len().div_ceil(parts);
    let range = (start_ms, end_ms, want_samples);
    let column_cache = &store.column_cache;
    let blocks = &blocks;
    let parts: Vec<_> = matched
        .chunks_mut(per_part)
        .zip(from_blocks.chunks_mut(per_part))
        .collect();
    parallel::map_parts(parts, |(series, samples)| {
        read_columns(column_cache, blocks, series, samples, range, gathered)
    })
    .into_iter()
    .collect::<Result<(), SelectError>>()?;
    for (series, mut block_pieces) in matched.iter_mut().zip(from_blocks) {
        if block_pieces.is_empty() {
            continue;
        }
        series.present = true;
        block_pieces.append(&mut series.pieces);
        series.pieces = block_pieces;
    }
    Ok(matched)
}

/// A block a query reads, with its directory.
struct BlockToRead<'a> {
    info: &'a BlockInfo,
    file: &'a File,
    directory: &'a block::BlockDirectory,
}

/// Reads the samples of `series` in `[start_ms, end_ms]` from `blocks` into `pieces` (same
/// order), shared with the column cache, or only marks the series present when samples are
/// not wanted. Stops once the selection as a whole (every thread) has gathered its limit.
fn read_columns(
    cache: &ColumnCache,
    blocks: &[BlockToRead<'_>],
    series: &mut [Matched],
    pieces: &mut [Vec<Samples>],
    (start_ms, end_ms, want_samples): (i64, i64, bool),
    gathered: &Gathered,
) -> Result<(), SelectError> {
    for block in blocks {
        for (series, series_pieces) in series.iter_mut().zip(pieces.iter_mut()) {
            let Some(entry) = block.directory.find(series.id) else {
                continue;
            };
            if entry.max_ts < start_ms || entry.min_ts > end_ms {
                continue;
            }
            if !want_samples {
                series.present = true;
                continue;
            }
            let samples = cache
                .get_or_read(&block.info.path, series.id, || {
                    let (timestamps, values) =
                        block::read_series(block.file, &block.info.path, entry)?;
                    Ok(timestamps.into_iter().zip(values).collect())
                })
                .map_err(storage)?;
            let from = samples.partition_point(|&(ts, _)| ts < start_ms);
            let to = samples.partition_point(|&(ts, _)| ts <= end_ms);
            if from < to {
                gathered.add(to - from)?;
                series_pieces.push(Samples::shared(samples, from..to));
            }
        }
    }
    Ok(())
}

impl SeriesSource for TenantSource {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, SelectError> {
        self.select_within(matchers, start_ms, end_ms, MAX_SELECT_SAMPLES)
    }

    fn select_within(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        max_samples: usize,
    ) -> Result<Vec<SeriesSamples>, SelectError> {
        Ok(self
            .gather(&[matchers], start_ms, end_ms, true, max_samples)?
            .into_iter()
            .map(|(labels, pieces)| SeriesSamples {
                labels: Arc::unwrap_or_clone(labels),
                samples: join(pieces),
            })
            .collect())
    }

    fn sample_senders(&self) -> Result<Vec<SampleSender>, SelectError> {
        self.store.sample_senders(&self.tenants).map_err(storage)
    }

    fn series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, SelectError> {
        Ok(self
            .series_labels(matcher_sets, start_ms, end_ms)?
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect())
    }
}
