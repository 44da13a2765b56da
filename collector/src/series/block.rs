//! Sealed blocks: immutable files of one partition holding, per series, a pco-compressed
//! timestamp column and value column, then a directory saying where each series lies.
//!
//! The rule a reader must not miss: a block is written to a temporary name, fsynced, renamed
//! and the directory fsynced, so a block with its final name is complete. A block made by a
//! merge names the blocks it replaces; when it exists, those are garbage (`open` deletes them).
//!
//! Layout: `MAGIC`, the columns, the meta, then a trailer. Meta: `level: u8`, `min_ts: i64`,
//! `max_ts: i64`, `replaced block count: u32`, their ids (`u64` each), `entry count: u32`, then
//! the directory entries sorted by series id (`ENTRY_BYTES` each: series id `u32`, samples
//! `u32`, min ts `i64`, max ts `i64`, offset `u64`, timestamp column bytes `u32`, value column
//! bytes `u32`, CRC-32 of both columns `u32`). Trailer: meta offset `u64`, meta length `u32`,
//! CRC-32 of the meta `u32`, `MAGIC`. Integers are little-endian.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pco::ChunkConfig;

use crate::series::error::{SeriesError, SeriesResult};
use crate::series::index::Reader;

/// The first and last bytes of every block; version 1 of the format.
const MAGIC: &[u8; 8] = b"AGSBLK1\n";
const TRAILER_BYTES: u64 = 24;
/// The meta's fixed start: level, min ts, max ts, replaced block count.
const META_PREFIX_BYTES: usize = 21;
const ENTRY_BYTES: usize = 44;
/// The suffix of a block's final name.
pub(crate) const BLOCK_SUFFIX: &str = ".blk";
/// The suffix of a block being written.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The file name of block `id` in a partition directory.
pub(crate) fn block_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{BLOCK_SUFFIX}"))
}

/// The block id in a file name, when it is a block's.
pub(crate) fn block_id(file_name: &str) -> Option<u64> {
    let hex = file_name.strip_suffix(BLOCK_SUFFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// What the store keeps in memory about a block (not its directory).
#[derive(Debug, Clone)]
pub(crate) struct BlockInfo {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    /// 0 for a sealed head; a merge of level `n` blocks has level `n + 1`.
    pub(crate) level: u8,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) file_bytes: u64,
    /// Blocks this one was merged from.
    pub(crate) replaces: Vec<u64>,
}

/// Where one series lies in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirectoryEntry {
    pub(crate) series_id: u32,
    pub(crate) count: u32,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    offset: u64,
    ts_bytes: u32,
    value_bytes: u32,
    checksum: u32,
}

/// A block's directory, sorted by series id.
#[derive(Debug)]
pub(crate) struct BlockDirectory {
    pub(crate) entries: Vec<DirectoryEntry>,
}

impl BlockDirectory {
    /// The entry of `series_id`, when the block holds that series.
    pub(crate) fn find(&self, series_id: u32) -> Option<&DirectoryEntry> {
        self.entries
            .binary_search_by_key(&series_id, |entry| entry.series_id)
            .ok()
            .map(|at| &self.entries[at])
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> SeriesError {
    SeriesError::CorruptBlock {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_exact_at(file: &File, path: &Path, offset: u64, len: usize) -> SeriesResult<Vec<u8>> {
    let mut buffer = vec![0; len];
    file.read_exact_at(&mut buffer, offset)
        .map_err(|source| SeriesError::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(buffer)
}

/// (meta offset, meta length, meta CRC, file length) from the trailer.
fn read_trailer(file: &File, path: &Path) -> SeriesResult<(u64, usize, u32, u64)> {
    let file_bytes = file
        .metadata()
        .map_err(|source| SeriesError::Read {
            path: path.to_owned(),
            source,
        })?
        .len();
    if file_bytes < MAGIC.len() as u64 + TRAILER_BYTES {
        return Err(corrupt(path, "shorter than a block can be"));
    }
    let trailer = read_exact_at(
        file,
        path,
        file_bytes - TRAILER_BYTES,
        TRAILER_BYTES as usize,
    )?;
    let mut reader = Reader(&trailer);
    let (Some(meta_offset), Some(meta_len), Some(meta_crc), Some(magic)) =
        (reader.u64(), reader.u32(), reader.u32(), reader.take(8))
    else {
        return Err(corrupt(path, "short trailer"));
    };
    let meta_end = meta_offset
        .checked_add(u64::from(meta_len))
        .and_then(|end| end.checked_add(TRAILER_BYTES));
    if magic != MAGIC || meta_end != Some(file_bytes) {
        return Err(corrupt(path, "bad trailer"));
    }
    Ok((meta_offset, meta_len as usize, meta_crc, file_bytes))
}

/// Reads what the store keeps about the block at `path` (the meta's start, not its directory).
pub(crate) fn read_info(path: &Path, id: u64) -> SeriesResult<BlockInfo> {
    let file = File::open(path).map_err(|source| SeriesError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (meta_offset, meta_len, _, file_bytes) = read_trailer(&file, path)?;
    if meta_len < META_PREFIX_BYTES {
        return Err(corrupt(path, "short meta"));
    }
    let prefix = read_exact_at(&file, path, meta_offset, META_PREFIX_BYTES)?;
    let mut reader = Reader(&prefix);
    let level = reader.u8().expect("length checked");
    let min_ts = reader.i64().expect("length checked");
    let max_ts = reader.i64().expect("length checked");
    let replaced_count = reader.u32().expect("length checked") as usize;
    if META_PREFIX_BYTES + replaced_count * 8 > meta_len {
        return Err(corrupt(path, "replaced blocks past the meta"));
    }
    let replaced = read_exact_at(
        &file,
        path,
        meta_offset + META_PREFIX_BYTES as u64,
        replaced_count * 8,
    )?;
    let replaces = replaced
        .chunks_exact(8)
        .map(|bytes| u64::from_le_bytes(bytes.try_into().expect("chunks of 8")))
        .collect();
    Ok(BlockInfo {
        id,
        path: path.to_owned(),
        level,
        min_ts,
        max_ts,
        file_bytes,
        replaces,
    })
}

/// Reads and checks the directory of the block open as `file`.
pub(crate) fn read_directory(file: &File, path: &Path) -> SeriesResult<BlockDirectory> {
    let (meta_offset, meta_len, meta_crc, _) = read_trailer(file, path)?;
    let meta = read_exact_at(file, path, meta_offset, meta_len)?;
    if crc32fast::hash(&meta) != meta_crc {
        return Err(corrupt(path, "meta checksum mismatch"));
    }
    let mut reader = Reader(&meta);
    reader.take(META_PREFIX_BYTES - 4);
    let replaced_count = reader.u32().ok_or_else(|| corrupt(path, "short meta"))? as usize;
    reader
        .take(replaced_count * 8)
        .ok_or_else(|| corrupt(path, "short meta"))?;
    let count = reader.u32().ok_or_else(|| corrupt(path, "short meta"))? as usize;
    if reader.0.len() != count * ENTRY_BYTES {
        return Err(corrupt(path, "directory length mismatch"));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let entry = (|| {
            Some(DirectoryEntry {
                series_id: reader.u32()?,
                count: reader.u32()?,
                min_ts: reader.i64()?,
                max_ts: reader.i64()?,
                offset: reader.u64()?,
                ts_bytes: reader.u32()?,
                value_bytes: reader.u32()?,
                checksum: reader.u32()?,
            })
        })()
        .expect("length checked");
        let columns_end = entry
            .offset
            .saturating_add(u64::from(entry.ts_bytes))
            .saturating_add(u64::from(entry.value_bytes));
        if columns_end > meta_offset {
            return Err(corrupt(path, "series columns past the data"));
        }
        entries.push(entry);
    }
    if !entries.is_sorted_by(|a, b| a.series_id < b.series_id) {
        return Err(corrupt(path, "directory not sorted by series id"));
    }
    Ok(BlockDirectory { entries })
}

/// Tells whether the meta of the block at `path` is intact (before trusting the list of blocks
/// it replaces enough to delete them).
pub(crate) fn meta_is_intact(path: &Path) -> bool {
    File::open(path)
        .map_err(|source| SeriesError::Read {
            path: path.to_owned(),
            source,
        })
        .and_then(|file| read_directory(&file, path))
        .is_ok()
}

/// Reads and decodes one series' samples from the block open as `file`.
pub(crate) fn read_series(
    file: &File,
    path: &Path,
    entry: &DirectoryEntry,
) -> SeriesResult<(Vec<i64>, Vec<f64>)> {
    let ts_bytes = entry.ts_bytes as usize;
    let columns = read_exact_at(
        file,
        path,
        entry.offset,
        ts_bytes + entry.value_bytes as usize,
    )?;
    if crc32fast::hash(&columns) != entry.checksum {
        return Err(corrupt(
            path,
            format!("checksum mismatch in series {}", entry.series_id),
        ));
    }
    let decode_error = |error: pco::errors::PcoError| {
        corrupt(path, format!("series {}: {error}", entry.series_id))
    };
    let timestamps: Vec<i64> =
        pco::standalone::simple_decompress(&columns[..ts_bytes]).map_err(decode_error)?;
    let values: Vec<f64> =
        pco::standalone::simple_decompress(&columns[ts_bytes..]).map_err(decode_error)?;
    if timestamps.len() != entry.count as usize || values.len() != entry.count as usize {
        return Err(corrupt(
            path,
            format!("series {} has the wrong sample count", entry.series_id),
        ));
    }
    Ok((timestamps, values))
}

/// Writes one block: series in ascending id order, then `finish`.
pub(crate) struct BlockWriter {
    dir: PathBuf,
    id: u64,
    temp_path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    entries: Vec<DirectoryEntry>,
    config: ChunkConfig,
}

impl BlockWriter {
    /// Starts block `id` in the partition directory `dir`.
    pub(crate) fn create(dir: &Path, id: u64) -> SeriesResult<BlockWriter> {
        let temp_path = dir.join(format!("{id:016x}{BLOCK_SUFFIX}{TEMP_SUFFIX}"));
        let file = File::create(&temp_path).map_err(|source| SeriesError::Write {
            path: temp_path.clone(),
            source,
        })?;
        let mut writer = BlockWriter {
            dir: dir.to_owned(),
            id,
            temp_path,
            file: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            entries: Vec::new(),
            config: ChunkConfig::default(),
        };
        writer.write(MAGIC)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> SeriesResult<()> {
        self.file
            .write_all(bytes)
            .map_err(|source| SeriesError::Write {
                path: self.temp_path.clone(),
                source,
            })?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Adds series `series_id` (above every id added before) with its samples (ascending by
    /// time, not empty).
    pub(crate) fn add_series(
        &mut self,
        series_id: u32,
        timestamps: &[i64],
        values: &[f64],
    ) -> SeriesResult<()> {
        debug_assert!(!timestamps.is_empty() && timestamps.len() == values.len());
        debug_assert!(timestamps.is_sorted());
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|last| last.series_id < series_id)
        );
        let compress_error = |error: pco::errors::PcoError| SeriesError::Compress {
            path: self.temp_path.clone(),
            series_id,
            reason: error.to_string(),
        };
        let ts_column =
            pco::standalone::simple_compress(timestamps, &self.config).map_err(compress_error)?;
        let value_column =
            pco::standalone::simple_compress(values, &self.config).map_err(compress_error)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&ts_column);
        hasher.update(&value_column);
        self.entries.push(DirectoryEntry {
            series_id,
            count: u32::try_from(timestamps.len()).expect("fewer than 2^32 samples per block"),
            min_ts: timestamps[0],
            max_ts: timestamps[timestamps.len() - 1],
            offset: self.offset,
            ts_bytes: u32::try_from(ts_column.len()).expect("a column is below 4 GiB"),
            value_bytes: u32::try_from(value_column.len()).expect("a column is below 4 GiB"),
            checksum: hasher.finalize(),
        });
        self.write(&ts_column)?;
        self.write(&value_column)
    }

    /// Writes the directory, makes the block durable under its final name, and describes it.
    pub(crate) fn finish(mut self, level: u8, replaces: Vec<u64>) -> SeriesResult<BlockInfo> {
        let min_ts = self.entries.iter().map(|e| e.min_ts).min().unwrap_or(0);
        let max_ts = self.entries.iter().map(|e| e.max_ts).max().unwrap_or(0);
        let mut meta = Vec::with_capacity(
            META_PREFIX_BYTES + replaces.len() * 8 + 4 + self.entries.len() * ENTRY_BYTES,
        );
        meta.push(level);
        meta.extend_from_slice(&min_ts.to_le_bytes());
        meta.extend_from_slice(&max_ts.to_le_bytes());
        let replaced_count = u32::try_from(replaces.len()).expect("few replaced blocks");
        meta.extend_from_slice(&replaced_count.to_le_bytes());
        for id in &replaces {
            meta.extend_from_slice(&id.to_le_bytes());
        }
        let entry_count = u32::try_from(self.entries.len()).expect("ids are u32");
        meta.extend_from_slice(&entry_count.to_le_bytes());
        for entry in &self.entries {
            meta.extend_from_slice(&entry.series_id.to_le_bytes());
            meta.extend_from_slice(&entry.count.to_le_bytes());
            meta.extend_from_slice(&entry.min_ts.to_le_bytes());
            meta.extend_from_slice(&entry.max_ts.to_le_bytes());
            meta.extend_from_slice(&entry.offset.to_le_bytes());
            meta.extend_from_slice(&entry.ts_bytes.to_le_bytes());
            meta.extend_from_slice(&entry.value_bytes.to_le_bytes());
            meta.extend_from_slice(&entry.checksum.to_le_bytes());
        }
        let meta_offset = self.offset;
        let mut trailer = Vec::with_capacity(TRAILER_BYTES as usize);
        trailer.extend_from_slice(&meta_offset.to_le_bytes());
        let meta_len = u32::try_from(meta.len()).expect("a directory is below 4 GiB");
        trailer.extend_from_slice(&meta_len.to_le_bytes());
        trailer.extend_from_slice(&crc32fast::hash(&meta).to_le_bytes());
        trailer.extend_from_slice(MAGIC);
        self.write(&meta)?;
        self.write(&trailer)?;
        let temp_path = self.temp_path.clone();
        let write_error = |source| SeriesError::Write {
            path: temp_path.clone(),
            source,
        };
        let file = self
            .file
            .into_inner()
            .map_err(|error| write_error(error.into_error()))?;
        file.sync_all().map_err(write_error)?;
        drop(file);
        let path = block_path(&self.dir, self.id);
        std::fs::rename(&temp_path, &path).map_err(write_error)?;
        sync_dir(&self.dir)?;
        Ok(BlockInfo {
            id: self.id,
            path,
            level,
            min_ts,
            max_ts,
            file_bytes: self.offset,
            replaces,
        })
    }
}

/// Fsyncs directory `dir`, so that renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> SeriesResult<()> {
    File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|source| SeriesError::Write {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::select::STALE_NAN_BITS;

    #[test]
    fn block_round_trips_bit_exact_values() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut writer = BlockWriter::create(dir.path(), 7)?;
        let values = [
            1.5,
            f64::from_bits(STALE_NAN_BITS),
            -0.0,
            f64::NAN,
            f64::INFINITY,
            1e300,
        ];
        let timestamps = [1000, 16_000, 31_000, 46_000, 61_000, 76_000];
        writer.add_series(2, &timestamps, &values)?;
        writer.add_series(5, &[5], &[0.25])?;
        let info = writer.finish(1, vec![3, 4])?;
        assert_eq!((info.min_ts, info.max_ts, info.level), (5, 76_000, 1));

        let reread = read_info(&info.path, 7)?;
        assert_eq!(reread.replaces, vec![3, 4]);
        assert_eq!(reread.file_bytes, std::fs::metadata(&info.path)?.len());
        let file = File::open(&info.path)?;
        let directory = read_directory(&file, &info.path)?;
        assert!(directory.find(3).is_none());
        let entry = directory.find(2).expect("series 2 is in the block");
        let (read_timestamps, read_values) = read_series(&file, &info.path, entry)?;
        assert_eq!(read_timestamps, timestamps);
        let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&read_values), bits(&values));
        assert!(meta_is_intact(&info.path));
        Ok(())
    }

    #[test]
    fn flipped_byte_is_reported_as_corrupt() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut writer = BlockWriter::create(dir.path(), 1)?;
        writer.add_series(0, &[1, 2, 3], &[1.0, 2.0, 3.0])?;
        let info = writer.finish(0, Vec::new())?;
        let mut bytes = std::fs::read(&info.path)?;
        bytes[MAGIC.len() + 2] ^= 0xff;
        std::fs::write(&info.path, &bytes)?;
        let file = File::open(&info.path)?;
        let directory = read_directory(&file, &info.path)?;
        let entry = directory.find(0).expect("series 0 is in the block");
        assert!(matches!(
            read_series(&file, &info.path, entry),
            Err(SeriesError::CorruptBlock { .. })
        ));
        Ok(())
    }
}
