//! Tailing with the real binaries: rotation by rename and by copytruncate, the agent killed
//! with SIGKILL at arbitrary moments, and input that must not stall a file.

use std::io::Write;

use afterglow_tests::{Agent, Scene, fixture, wait_for};
use anyhow::Result;

use crate::logs::{agent_config, assert_no_duplicates, expected_records, wait_for_count};

fn append(path: &std::path::Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[test]
fn rename_and_copytruncate_rotations_lose_and_repeat_nothing() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log = log_dir.join("worker.log");
    let _agent = Agent::start(
        scene.path(),
        "a",
        &agent_config(&collector, "node-a", &log_dir.join("*.log")),
    )?;
    let parts = [
        fixture("logs/worker-1.log"),
        fixture("logs/worker-2.log"),
        fixture("logs/scheduler.log"),
    ];
    let mut expected = 0;

    // Rename rotation: the old file leaves the glob and is read to its end.
    append(&log, &parts[0])?;
    expected += expected_records(&parts[0]);
    wait_for_count(&collector, "node-a", expected)?;
    std::fs::rename(&log, log_dir.join("worker.log.1"))?;
    append(
        &log_dir.join("worker.log.1"),
        "2026-11-27 14:09:00,000 - distributed.worker - INFO - written after the rename\n",
    )?;
    expected += 1;
    append(&log, &parts[1])?;
    expected += expected_records(&parts[1]);
    wait_for_count(&collector, "node-a", expected)?;

    // copytruncate, as logrotate does it: copy out of the glob, truncate in place.
    std::fs::copy(&log, log_dir.join("worker.log.2"))?;
    std::fs::File::create(&log)?;
    append(&log, &parts[2])?;
    expected += expected_records(&parts[2]);
    wait_for_count(&collector, "node-a", expected)?;
    assert_no_duplicates(&collector.search_all("*", 1000)?);
    Ok(())
}

#[test]
fn an_agent_killed_at_arbitrary_moments_resumes_without_loss_or_duplicates() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log = log_dir.join("scheduler.log");
    let config = agent_config(&collector, "node-k", &log_dir.join("*.log"));
    let text = fixture("logs/scheduler.log")
        + &fixture("logs/worker-1.log")
        + &fixture("logs/worker-2.log");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    // Kill moments spread over the writing, from a fixed seed so a failure can be replayed.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut written = 0;
    for round in 0..6 {
        let mut agent = Agent::start(scene.path(), "killed", &config)?;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lines_now = (seed % 60) as usize + 20;
        for line in lines.iter().skip(written).take(lines_now) {
            file.write_all(line.as_bytes())?;
        }
        written = (written + lines_now).min(lines.len());
        // Let the agent get somewhere between nothing and everything of this round.
        std::thread::sleep(std::time::Duration::from_millis(seed % 400));
        agent.process.kill();
        assert!(round < 5 || written > 0);
    }
    for line in lines.iter().skip(written) {
        file.write_all(line.as_bytes())?;
    }
    let _agent = Agent::start(scene.path(), "killed", &config)?;
    wait_for_count(&collector, "node-k", expected_records(&text))?;
    assert_no_duplicates(&collector.search_all("*", 1000)?);
    Ok(())
}

#[test]
fn a_two_mib_line_and_random_bytes_do_not_stall_their_files() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let _agent = Agent::start(
        scene.path(),
        "a",
        &agent_config(&collector, "node-x", &log_dir.join("*.log")),
    )?;

    let mut long = b"2026-11-27 14:00:00,000 - distributed.worker - WARNING - ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 2 << 20));
    long.extend_from_slice(
        b"\n2026-11-27 14:00:01,000 - distributed.worker - INFO - after the long line\n",
    );
    std::fs::write(log_dir.join("long.log"), &long)?;

    let mut noise = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    noise.extend_from_slice(b"random bytes follow\n");
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        noise.push((seed >> 24) as u8);
    }
    noise.extend_from_slice(
        b"\n2026-11-27 14:00:02,000 - distributed.worker - INFO - after the noise\n",
    );
    std::fs::write(log_dir.join("noise.log"), &noise)?;

    wait_for("the lines after the long line and the noise", || {
        let after_long = collector.search_all("\"after the long line\"", 10)?.len();
        let after_noise = collector.search_all("\"after the noise\"", 10)?.len();
        Ok(if (after_long, after_noise) == (1, 1) {
            Ok(())
        } else {
            Err((after_long, after_noise))
        })
    })?;
    let long_hits = collector.search_all("level:WARNING", 10)?;
    assert_eq!(long_hits.len(), 1);
    let message_len = long_hits[0]["message"].as_str().map_or(0, str::len);
    assert!(
        message_len <= 1 << 20,
        "the long line was cut at max_line_bytes, got {message_len}"
    );
    assert!(message_len > 1000);
    Ok(())
}

#[test]
fn ten_thousand_files_ship_with_bounded_descriptors_and_an_idle_agent() -> Result<()> {
    const FILES: usize = 10_000;
    const MAX_OPEN_FILES: usize = 256;
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    for index in 0..FILES {
        std::fs::write(
            log_dir.join(format!("worker-{index:05}.log")),
            format!(
                "2026-11-27 14:00:00,000 - distributed.worker - INFO - started worker {index:05}\n"
            ),
        )?;
    }
    let config = format!(
        "{}poll_interval = \"1s\"\nmultiline_timeout = \"100ms\"\nclose_inactive = \"200ms\"\nmax_open_files = {MAX_OPEN_FILES}\n",
        agent_config(&collector, "node-many", &log_dir.join("*.log"))
            .replace("poll_interval = \"50ms\"\n", "")
            .replace("multiline_timeout = \"300ms\"\n", "")
            .split("[ship]")
            .next()
            .unwrap_or_default()
    );
    let agent = Agent::start(scene.path(), "many", &config)?;
    let mut most_descriptors = 0;
    // Files are found in name order: wait cheaply for the last one, then count them all.
    let last = format!("\"started worker {:05}\"", FILES - 1);
    wait_for("the last file's record", || {
        most_descriptors = most_descriptors.max(agent.process.open_descriptors()?);
        let hits = collector.search_all(&last, 10)?.len();
        Ok(if hits == 1 { Ok(()) } else { Err(hits) })
    })?;
    wait_for(&format!("{FILES} records"), || {
        let count = collector.search_all("*", 10_000)?.len();
        Ok(if count == FILES { Ok(()) } else { Err(count) })
    })?;
    // Open descriptors: the files allowed plus a few dozen for sockets, notify and the like.
    assert!(
        most_descriptors < MAX_OPEN_FILES + 64,
        "{most_descriptors} descriptors open at once"
    );

    // Idle: once every file is read and closed, the agent barely uses the CPU.
    wait_for("the agent to close its idle files", || {
        let open = agent.process.open_descriptors()?;
        Ok(if open < 64 { Ok(()) } else { Err(open) })
    })?;
    // And every acknowledged offset saved: until then, checkpoint writes are still due.
    wait_for("every acknowledged offset to be saved", || {
        Ok(match agent.metric("afterglow_agent_bytes_behind") {
            Ok(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })?;
    let before = agent.process.cpu_time()?;
    let window = std::time::Duration::from_secs(6);
    std::thread::sleep(window);
    let used = agent.process.cpu_time()? - before;
    eprintln!(
        "{FILES} files: at most {most_descriptors} descriptors open; idle CPU {used:?} in {window:?}"
    );
    // Debug binaries: a full scan of 10 000 paths every 10 s costs about 0.2 s of CPU here.
    assert!(
        used < window / 10,
        "an idle agent over {FILES} files used {used:?} of CPU in {window:?}"
    );

    // A closed file that changes is opened again and read where it stopped.
    append(
        &log_dir.join("worker-04242.log"),
        "2026-11-27 14:00:01,000 - distributed.worker - INFO - worker 04242 woke up\n",
    )?;
    wait_for("the appended line", || {
        let hits = collector.search_all("\"worker 04242 woke up\"", 10)?.len();
        Ok(if hits == 1 { Ok(()) } else { Err(hits) })
    })?;
    Ok(())
}

/// A file that appears while the agent runs is searchable within a couple of seconds, found
/// by notifications, and also by polling alone when notifications are off.
#[test]
fn a_new_file_is_found_promptly_with_and_without_notifications() -> Result<()> {
    for (name, discovery) in [
        ("notify", "watch = true\npoll_interval = \"60s\"\n"),
        ("poll", "watch = false\npoll_interval = \"500ms\"\n"),
    ] {
        let scene = Scene::new()?;
        let collector = scene.collector(None)?;
        let log_dir = scene.log_dir();
        let config = format!(
            "{}{discovery}multiline_timeout = \"200ms\"\n",
            agent_config(&collector, name, &log_dir.join("*.log"))
                .replace("poll_interval = \"50ms\"\n", "")
                .replace("multiline_timeout = \"300ms\"\n", "")
                .split("[ship]")
                .next()
                .unwrap_or_default()
        );
        let agent = Agent::start(scene.path(), name, &config)?;
        wait_for("the agent to start tailing", || {
            let log = agent.process.log();
            Ok(if log.contains("tailing") {
                Ok(())
            } else {
                Err(log.lines().count())
            })
        })?;
        let written_at = std::time::Instant::now();
        append(
            &log_dir.join("crashed-worker.log"),
            "2026-11-27 14:00:00,000 - distributed.nanny - INFO - Start Nanny\nTraceback (most recent call last):\n  File \"w.py\", line 1\nMemoryError\n",
        )?;
        wait_for(&format!("the new file's record ({name})"), || {
            let hits = collector.search_all("MemoryError", 10)?.len();
            Ok(if hits == 1 { Ok(()) } else { Err(hits) })
        })?;
        let latency = written_at.elapsed();
        assert!(
            latency < std::time::Duration::from_secs(3),
            "{name}: searchable after {latency:?}"
        );
        eprintln!("{name}: a new file's record was searchable after {latency:?}");
    }
    Ok(())
}

#[test]
fn a_file_replaced_while_the_agent_was_down_is_read_whole() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log = log_dir.join("worker.log");
    let config = agent_config(&collector, "node-r", &log_dir.join("*.log"));
    let first = fixture("logs/worker-1.log");
    let second = fixture("logs/worker-2.log");
    append(&log, &first)?;
    let mut agent = Agent::start(scene.path(), "r", &config)?;
    wait_for_count(&collector, "node-r", expected_records(&first))?;
    assert_eq!(
        agent
            .process
            .terminate_within(std::time::Duration::from_secs(10))?,
        Some(0)
    );

    // Replaced under the same name while no agent ran: a new file, longer than the old one.
    std::fs::remove_file(&log)?;
    append(&log, &second)?;
    append(&log, &first)?;
    let _agent = Agent::start(scene.path(), "r", &config)?;
    wait_for_count(
        &collector,
        "node-r",
        2 * expected_records(&first) + expected_records(&second),
    )?;
    assert_no_duplicates(&collector.search_all("*", 1000)?);
    Ok(())
}

/// A task's `print()` in a file the agent reads late takes the time of the record before it,
/// not the time it was read (which may be days after it was written).
#[test]
fn a_print_in_an_old_file_takes_the_time_of_the_header_before_it() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log = log_dir.join("worker.log");
    append(
        &log,
        "2026-11-27 13:57:10,000 - distributed.worker - INFO - before the print\n\
         user print() between the headers\n\
         2026-11-27 13:58:50,000 - distributed.worker - INFO - after the print\n",
    )?;
    let written_at: jiff::Timestamp = "2026-11-27T13:59:00Z".parse()?;
    std::fs::File::options()
        .write(true)
        .open(&log)?
        .set_modified(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(written_at.as_second().try_into()?),
        )?;
    let _agent = Agent::start(
        scene.path(),
        "o",
        &agent_config(&collector, "node-o", &log_dir.join("*.log")),
    )?;
    wait_for_count(&collector, "node-o", 3)?;

    let hits = collector.search_all("*", 100)?;
    let in_time_order: Vec<(&str, &str)> = hits
        .iter()
        .map(|hit| {
            (
                hit["ts"].as_str().unwrap_or_default(),
                hit["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        in_time_order,
        [
            ("2026-11-27T13:57:10.000000Z", "before the print"),
            (
                "2026-11-27T13:57:10.000000Z",
                "user print() between the headers"
            ),
            ("2026-11-27T13:58:50.000000Z", "after the print"),
        ]
    );
    // A search of the minute it was written in finds it.
    let (status, body) = collector.get_json(
        "/api/v1/logs/search?q=%22user%20print%22&start=2026-11-27T13:57:00Z&end=2026-11-27T13:58:00Z",
    )?;
    assert_eq!(status, 200, "{body}");
    let messages: Vec<&str> = body["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|hit| hit["message"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(messages, ["user print() between the headers"]);
    Ok(())
}

/// A record that ends where a read ends is sent after a short grace; one that looks
/// unfinished (a traceback without its exception line) still waits the whole
/// `multiline_timeout`, so the rest of it joins it when written a moment later.
#[test]
fn a_traceback_written_in_two_writes_with_a_pause_arrives_whole() -> Result<()> {
    let scene = Scene::new()?;
    let collector = scene.collector(None)?;
    let log_dir = scene.log_dir();
    let log = log_dir.join("worker.log");
    let config = agent_config(&collector, "node-t", &log_dir.join("*.log")).replace(
        "multiline_timeout = \"300ms\"",
        "multiline_timeout = \"2s\"",
    );
    let agent = Agent::start(scene.path(), "t", &config)?;
    append(
        &log,
        "2026-11-27 14:00:00,000 - distributed.worker - ERROR - task failed\n\
         Traceback (most recent call last):\n  \
         File \"task.py\", line 3, in run\n",
    )?;
    wait_for("the agent to read the first write", || {
        // Before the agent serves its metrics, its address is not known yet.
        Ok(match agent.metric("afterglow_agent_lines_read_total") {
            Ok(lines) if lines >= 3.0 => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })?;
    // Far longer than the grace for a complete record, shorter than the timeout.
    std::thread::sleep(std::time::Duration::from_millis(500));
    append(
        &log,
        "    raise ValueError(\"boom\")\n\
         ValueError: boom\n\
         2026-11-27 14:00:01,000 - distributed.worker - INFO - next\n",
    )?;
    let hits = wait_for("the record after the traceback", || {
        let hits = collector.search_all("*", 100)?;
        Ok(if hits.iter().any(|hit| hit["message"] == "next") {
            Ok(hits)
        } else {
            Err(hits.len())
        })
    })?;
    let messages: Vec<&str> = hits
        .iter()
        .filter_map(|hit| hit["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "task failed\nTraceback (most recent call last):\n  File \"task.py\", line 3, in run\n    raise ValueError(\"boom\")\nValueError: boom",
            "next"
        ]
    );
    Ok(())
}
