//! The collector's WAL and disk with the real binaries: a torn WAL tail is cut and the
//! collector carries on; a really full disk refuses batches, keeps serving queries, corrupts
//! nothing and takes the backlog once space returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use afterglow_tests::{Agent, Collector, Scene, fixture};
use anyhow::{Context, Result, bail};

use crate::logs::{agent_config, expected_records, wait_for_exactly};

fn last_wal_segment(data_dir: &Path) -> Result<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    segments.sort();
    segments.pop().context("the WAL has a segment")
}

#[test]
fn a_torn_wal_tail_is_cut_at_its_last_good_frame_and_nothing_is_lost_or_repeated() -> Result<()> {
    let scene = Scene::new()?;
    let mut collector = scene.collector(None)?;
    let grpc_port = collector.grpc_port();
    let log_dir = scene.log_dir();
    let _agent = Agent::start(
        scene.path(),
        "t",
        &agent_config(&collector, "node-t", &log_dir.join("*.log")),
    )?;
    let first = fixture("logs/worker-1.log");
    std::fs::write(log_dir.join("first.log"), &first)?;
    wait_for_exactly(&collector, expected_records(&first))?;

    collector.process.kill();
    // A power cut mid-write leaves part of a frame: cut the last segment at a byte drawn
    // from the clock, past its 8-byte header.
    let segment = last_wal_segment(&scene.data_dir())?;
    let length = std::fs::metadata(&segment)?.len();
    let nanos = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos(),
    );
    let cut = 8 + nanos % (length - 8);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)?
        .set_len(cut)?;

    let collector = scene.collector(Some(grpc_port))?;
    collector
        .process
        .wait_for_log("cut at the last good frame")?;
    let second = fixture("logs/worker-2.log");
    std::fs::write(log_dir.join("second.log"), &second)?;
    wait_for_exactly(
        &collector,
        expected_records(&first) + expected_records(&second),
    )?;
    Ok(())
}

fn free_bytes(path: &Path) -> Result<u64> {
    let output = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()?;
    String::from_utf8(output.stdout)?
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .context("df prints the free bytes")
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, megabytes: u64) -> Result<SmallDisk> {
        std::fs::create_dir_all(&path)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()?;
        if !status.success() {
            bail!(
                "cannot mount a tmpfs on {} (the test needs root)",
                path.display()
            );
        }
        Ok(SmallDisk { path })
    }

    /// Writes a file until the file system has at most `leave` bytes free; returns its path.
    fn fill(&self, leave: u64) -> Result<PathBuf> {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler)?;
        let chunk = vec![0x5a; 64 * 1024];
        while free_bytes(&self.path)? > leave + chunk.len() as u64 {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                Err(error) => return Err(error.into()),
            }
        }
        if leave == 0 {
            // The last bytes, a few at a time, until the file system refuses.
            while file.write_all(&chunk[..512]).is_ok() {}
        }
        Ok(filler)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_refuses_batches_keeps_serving_queries_and_recovers_when_space_returns() -> Result<()>
{
    // No early refusal: the collector meets the full disk itself, in its WAL and its index.
    full_disk_story("[limits]\nmin_free_disk_bytes = 0\n", 0, "disk is full")
}

#[test]
fn a_nearly_full_disk_refuses_batches_before_it_fills_and_accepts_again_when_space_returns()
-> Result<()> {
    // The filler leaves 16 MiB of the 48 free; the guard wants 24 MiB.
    full_disk_story(
        "[limits]\nmin_free_disk_bytes = 25165824\n",
        16 * 1024 * 1024,
        "disk is nearly full",
    )
}

/// Records stored, then the disk filled until `leave` bytes are free, more records written:
/// refused with `refusal` in the agent's log, while queries answer; then space freed:
/// everything stored exactly once, also after a restart.
fn full_disk_story(limits: &str, leave: u64, refusal: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let disk = SmallDisk::mount(dir.path().join("disk"), 48)?;
    let data_dir = disk.path.join("data");
    let mut collector = Collector::start_with(dir.path(), &data_dir, None, limits)?;
    let grpc_port = collector.grpc_port();
    let log_dir = dir.path().join("logs");
    std::fs::create_dir(&log_dir)?;
    let agent = Agent::start(
        dir.path(),
        "f",
        &agent_config(&collector, "node-f", &log_dir.join("*.log")),
    )?;
    let before = fixture("logs/worker-1.log");
    std::fs::write(log_dir.join("before.log"), &before)?;
    wait_for_exactly(&collector, expected_records(&before))?;

    let filler = disk.fill(leave)?;
    let during = fixture("logs/worker-2.log").repeat(4);
    std::fs::write(log_dir.join("during.log"), &during)?;
    agent.process.wait_for_log(refusal)?;
    assert_eq!(
        collector.search_all("*", 10_000)?.len(),
        expected_records(&before),
        "queries are still served, and nothing of the refused batches is visible"
    );

    std::fs::remove_file(filler)?;
    let total = expected_records(&before) + expected_records(&during);
    wait_for_exactly(&collector, total)?;
    // What was stored through the full disk reopens whole.
    collector.process.kill();
    let collector = Collector::start_with(dir.path(), &data_dir, Some(grpc_port), limits)?;
    wait_for_exactly(&collector, total)?;
    Ok(())
}
