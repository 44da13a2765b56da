//! Tailer tests on real files in temporary directories, driven scan by scan: rotation by
//! rename, copytruncate, truncation, deletion, restarts from checkpoints, and a model-based
//! property test over random sequences of all of them.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use proptest::prelude::*;

use super::*;
use crate::checkpoint::Found;
use crate::config::AgentConfig;

/// A tailer and a stand-in collector that deduplicates by (stream, seq) like the real one,
/// acknowledges everything at once, and fails the test if a (stream, seq) it already holds
/// comes back with other content — which the real collector would silently drop.
struct Harness {
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    config: LogsConfig,
    tailer: Option<Tailer>,
    receiver: mpsc::Receiver<RecordChunk>,
    checkpoints: Option<Arc<CheckpointStore>>,
    stored: BTreeMap<(u64, u64), String>,
    sources: HashMap<u64, String>,
    received_since_start: usize,
    /// The records the last scan received, in order.
    last_scan: Vec<LogRecord>,
}

fn logs_config(extra: &str) -> LogsConfig {
    let format = if extra.contains("format =") {
        ""
    } else {
        "format = \"plain\"\n"
    };
    let text = format!(
        "[[logs]]\npaths = [\"PLACEHOLDER/*.log\"]\n{format}multiline_timeout = \"0s\"\n{extra}"
    );
    AgentConfig::parse(&text).expect("valid").logs.remove(0)
}

impl Harness {
    fn new(extra_config: &str) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let mut config = logs_config(extra_config);
        let root = dir.path().display().to_string();
        for pattern in config.paths.iter_mut().chain(config.exclude.iter_mut()) {
            *pattern = pattern.replace("PLACEHOLDER", &root);
        }
        let (checkpoints, _) = CheckpointStore::open(state.path()).expect("state dir");
        let (_, receiver) = mpsc::channel(1);
        let mut harness = Harness {
            dir,
            state,
            config,
            tailer: None,
            receiver,
            checkpoints: Some(Arc::new(checkpoints)),
            stored: BTreeMap::new(),
            sources: HashMap::new(),
            received_since_start: 0,
            last_scan: Vec::new(),
        };
        harness.start(true);
        harness
    }

    fn start(&mut self, first_start: bool) {
        let (records, receiver) = mpsc::channel(1_000_000);
        self.receiver = receiver;
        let context = TailerContext {
            node: NodeIdentity {
                cluster: "c".to_owned(),
                node: "n".to_owned(),
            },
            timezone: TimeZone::UTC,
            records,
            checkpoints: Arc::clone(self.store()),
            metrics: AgentMetrics::new(),
            first_start,
        };
        self.tailer = Some(Tailer::new(self.config.clone(), context));
        self.received_since_start = 0;
    }

    /// Stops the tailer as a crash would (nothing flushed), optionally after saving the
    /// checkpoints, and starts a new one from what is on disk.
    fn restart(&mut self, saved_checkpoints: bool) {
        if saved_checkpoints {
            self.store().persist().expect("checkpoints persist");
        }
        self.tailer = None;
        self.checkpoints = None; // releases the state directory's lock
        let (checkpoints, found) = reopen_store(self.state.path());
        self.checkpoints = Some(Arc::new(checkpoints));
        self.start(found == Found::Nothing);
    }

    fn store(&self) -> &Arc<CheckpointStore> {
        self.checkpoints.as_ref().expect("the store is open")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, name: &str, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .expect("open");
        file.write_all(text.as_bytes()).expect("write");
    }

    fn scan(&mut self) {
        self.tailer
            .as_mut()
            .expect("running")
            .full_scan()
            .expect("shipper alive");
        self.last_scan.clear();
        while let Ok(chunk) = self.receiver.try_recv() {
            self.last_scan.extend(chunk.iter().cloned());
            for record in chunk {
                self.received_since_start += 1;
                let key = (record.stream.id, record.seq);
                self.sources
                    .insert(record.stream.id, record.stream.source.clone());
                if let Some(stored) = self.stored.get(&key) {
                    assert_eq!(
                        stored, &record.message,
                        "(stream {:016x}, seq {}) reused for other content",
                        key.0, key.1
                    );
                } else {
                    self.stored.insert(key, record.message.clone());
                }
                self.store()
                    .record_ack(record.stream.checkpoint_id, record.end_offset);
            }
        }
    }

    /// Every stored message, each stream's in seq order, streams in order of their first line.
    fn messages(&self) -> Vec<String> {
        self.stored.values().cloned().collect()
    }

    fn streams(&self) -> usize {
        self.stored
            .keys()
            .map(|(stream, _)| *stream)
            .collect::<HashSet<_>>()
            .len()
    }

    fn open_files(&self) -> usize {
        self.tailer.as_ref().map_or(0, |tailer| tailer.files.len())
    }
}

/// Opens the checkpoint store again. Other tests in this process spawn children, and a child
/// between fork and exec briefly shares every descriptor, the state directory's lock too; so
/// a just-released lock can look taken for a moment.
fn reopen_store(state_dir: &Path) -> (CheckpointStore, Found) {
    for _ in 0..200 {
        match CheckpointStore::open(state_dir) {
            Ok(opened) => return opened,
            Err(crate::Error::StateDirInUse { .. }) => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => panic!("cannot open the state directory: {error}"),
        }
    }
    panic!("the state directory stayed locked")
}

fn sorted(mut messages: Vec<String>) -> Vec<String> {
    messages.sort();
    messages
}

/// The times and flags of the records the last scan received.
fn times_of_last_scan(harness: &Harness) -> Vec<(Timestamp, bool, &str)> {
    harness
        .last_scan
        .iter()
        .map(|record| (record.ts, record.ts_inferred, record.message.as_str()))
        .collect()
}

#[test]
fn a_file_found_late_is_a_backlog_and_lines_appended_after_it_are_live() {
    let mut harness = Harness::new("format = \"dask\"");
    harness.append(
        "worker.log",
        "2026-11-27 13:57:10,000 - distributed.worker - INFO - before\n\
         late print\n\
         2026-11-27 13:58:50,000 - distributed.worker - INFO - after\n",
    );
    let written_at: Timestamp = "2026-11-27T13:59:00Z".parse().expect("a time");
    std::fs::File::options()
        .write(true)
        .open(harness.path("worker.log"))
        .and_then(|file| {
            let seconds = u64::try_from(written_at.as_second()).expect("after 1970");
            file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(seconds))
        })
        .expect("set the modification time");
    harness.scan();
    let before: Timestamp = "2026-11-27T13:57:10Z".parse().expect("a time");
    let after: Timestamp = "2026-11-27T13:58:50Z".parse().expect("a time");
    assert_eq!(
        times_of_last_scan(&harness),
        [
            (before, false, "before"),
            (before, true, "late print"),
            (after, false, "after")
        ]
    );

    // Read to its end, then appended to a moment ago: live, the time it was read.
    let appended_at = Timestamp::now();
    harness.append("worker.log", "live print\n");
    harness.scan();
    let [(ts, inferred, message)] = times_of_last_scan(&harness)[..] else {
        panic!("one record: {:?}", times_of_last_scan(&harness));
    };
    assert_eq!((inferred, message), (true, "live print"));
    assert!(
        ts >= appended_at && ts <= Timestamp::now(),
        "{ts} is the read time"
    );
}

#[test]
fn a_record_that_looks_complete_is_due_after_the_grace_and_an_unfinished_one_after_the_timeout() {
    let mut harness = Harness::new("format = \"dask\"");
    harness.config.multiline_timeout = "20s".to_owned();
    harness.start(true);
    // Long enough that no scan below takes it: the record stays open to be looked at.
    let grace = Duration::from_secs(10);
    harness
        .tailer
        .as_mut()
        .expect("running")
        .settled_record_grace = grace;
    let due_after = |harness: &Harness| {
        let tailer = harness.tailer.as_ref().expect("running");
        let file = tailer.files.values().next().expect("one file");
        file.flush_due_at(tailer.multiline_timeout, tailer.settled_record_grace)
            .map(|due| due - file.last_data_at)
    };
    harness.append(
        "worker.log",
        "2026-11-27 14:00:00,000 - distributed.worker - ERROR - failed\n",
    );
    harness.scan();
    assert_eq!(due_after(&harness), Some(grace));
    harness.append("worker.log", "Traceback (most recent call last):\n");
    harness.scan();
    assert_eq!(due_after(&harness), Some(Duration::from_secs(20)));
    harness.append(
        "worker.log",
        "  File \"task.py\", line 3, in run\nValueError: bo",
    );
    harness.scan();
    assert_eq!(
        due_after(&harness),
        Some(Duration::from_secs(20)),
        "a line without its newline waits too"
    );
    harness.append("worker.log", "om\n");
    harness.scan();
    assert_eq!(due_after(&harness), Some(grace));
    assert!(harness.last_scan.is_empty(), "nothing was flushed yet");
}

#[test]
fn a_file_renamed_out_of_the_glob_is_read_to_its_end() {
    let mut harness = Harness::new("");
    harness.append("app.log", "a1\na2\n");
    harness.scan();
    std::fs::rename(harness.path("app.log"), harness.path("app.log.1")).expect("rename");
    harness.append("app.log.1", "a3\n");
    harness.append("app.log", "b1\n");
    harness.scan();
    assert_eq!(sorted(harness.messages()), ["a1", "a2", "a3", "b1"]);
    assert_eq!(harness.streams(), 2);
}

#[test]
fn a_deleted_file_is_drained_then_released_within_release_after() {
    let mut harness = Harness::new("release_after = \"0s\"");
    harness.append("app.log", "a1\n");
    harness.scan();
    let mut still_open = std::fs::OpenOptions::new()
        .append(true)
        .open(harness.path("app.log"))
        .expect("open");
    std::fs::remove_file(harness.path("app.log")).expect("delete");
    still_open
        .write_all(b"a2\n")
        .expect("write to the deleted file");
    harness.scan();
    assert_eq!(harness.messages(), ["a1", "a2"]);
    assert_eq!(harness.open_files(), 0, "the descriptor is released");
}

#[test]
fn copytruncate_continues_in_the_copy_without_loss_or_repeat() {
    let mut harness = Harness::new("");
    harness.append("app.log", "l1\nl2\n");
    harness.scan();
    harness.append("app.log", "l3\n");
    // logrotate's copytruncate, between two scans: copy, then truncate, then new lines.
    std::fs::copy(harness.path("app.log"), harness.path("app-1.log")).expect("copy");
    std::fs::File::create(harness.path("app.log")).expect("truncate");
    harness.append("app.log", "l4\n");
    harness.scan();
    harness.scan();
    assert_eq!(sorted(harness.messages()), ["l1", "l2", "l3", "l4"]);
}

#[test]
fn a_copy_seen_before_the_truncation_is_not_read_twice() {
    let mut harness = Harness::new("");
    harness.append("app.log", "l1\nl2\n");
    harness.scan();
    std::fs::copy(harness.path("app.log"), harness.path("app-1.log")).expect("copy");
    harness.scan();
    assert_eq!(harness.received_since_start, 2, "the copy is not read");
    harness.append("app.log", "l3\n");
    harness.scan();
    std::fs::File::create(harness.path("app.log")).expect("truncate");
    harness.append("app.log", "l4\n");
    harness.scan();
    harness.scan();
    assert_eq!(sorted(harness.messages()), ["l1", "l2", "l3", "l4"]);
    assert_eq!(harness.received_since_start, 4);
}

#[test]
fn a_truncated_file_with_the_same_first_line_becomes_a_new_stream() {
    let mut harness = Harness::new("");
    harness.append("app.log", "HEADER\nold-1\nold-2\n");
    harness.scan();
    std::fs::File::create(harness.path("app.log")).expect("truncate");
    harness.append("app.log", "HEADER\nnew-1\n");
    harness.scan();
    harness.scan();
    let messages = harness.messages();
    for line in ["old-1", "old-2", "new-1"] {
        assert!(
            messages.contains(&line.to_owned()),
            "{line} missing from {messages:?}"
        );
    }
    assert_eq!(harness.streams(), 2);
    // After a restart the new content keeps its derived stream: nothing is resent as new.
    harness.scan();
    harness.restart(true);
    harness.scan();
    assert_eq!(harness.received_since_start, 0, "resumed at the checkpoint");
}

#[test]
fn a_restart_resumes_exactly_at_the_acknowledged_offset() {
    let mut harness = Harness::new("");
    harness.append("app.log", "l1\nl2\n");
    harness.scan();
    harness.scan(); // computes the guard of the acknowledged offset
    harness.restart(true);
    harness.append("app.log", "l3\n");
    harness.scan();
    assert_eq!(harness.received_since_start, 1, "only the new line is read");
    assert_eq!(harness.messages(), ["l1", "l2", "l3"]);
}

#[test]
fn a_file_rewritten_while_the_agent_was_down_is_read_as_new() {
    let mut harness = Harness::new("");
    harness.append("app.log", "HEADER\nfirst run line\n");
    harness.scan();
    harness.scan();
    harness.restart(true);
    harness.tailer = None;
    // Same first line, same inode, other bytes before the checkpoint.
    std::fs::write(harness.path("app.log"), "HEADER\nsecond run, longer line\n").expect("rewrite");
    harness.restart(false);
    harness.scan();
    assert!(
        harness
            .messages()
            .contains(&"second run, longer line".to_owned())
    );
    assert_eq!(harness.streams(), 2);
}

#[test]
fn start_at_end_skips_what_files_held_at_first_start_only() {
    let mut harness = Harness::new("start_at = \"end\"");
    harness.tailer = None;
    harness.append("old.log", "before-1\nbefore-2\npartial");
    harness.start(true);
    harness.scan();
    harness.append("old.log", " line\nafter\n");
    harness.append("new.log", "new-1\n");
    harness.scan();
    assert_eq!(
        sorted(harness.messages()),
        ["after", "new-1", "partial line"]
    );
}

#[test]
fn excluded_files_are_not_read() {
    let mut harness = Harness::new("exclude = [\"PLACEHOLDER/skip-*.log\"]");
    harness.append("keep.log", "kept\n");
    harness.append("skip-me.log", "skipped\n");
    harness.scan();
    assert_eq!(harness.messages(), ["kept"]);
}

#[test]
fn two_files_with_the_same_first_line_are_two_streams() {
    let mut harness = Harness::new("");
    harness.append("a.log", "HEADER\nfrom a\n");
    harness.append("b.log", "HEADER\nfrom b\n");
    harness.scan();
    assert_eq!(
        sorted(harness.messages()),
        ["HEADER", "HEADER", "from a", "from b"]
    );
    assert_eq!(harness.streams(), 2);
}

#[test]
fn a_one_line_file_without_a_trailing_newline_waits_for_it() {
    let mut harness = Harness::new("");
    harness.append(
        "crash.log",
        "Traceback (most recent call last):\n  File \"x\"\nValueError: boom",
    );
    harness.scan();
    assert_eq!(
        harness.messages(),
        ["Traceback (most recent call last):\n  File \"x\""]
    );
    harness.append("crash.log", "\n");
    harness.scan();
    assert_eq!(harness.messages().len(), 2);
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Action {
    /// Append lines to the current file, creating it if needed.
    Write { lines: u8, header_first: bool },
    /// Rename the current file out of the glob (the writer then starts a new one).
    RenameRotate,
    /// copytruncate: copy the current file inside the glob, then truncate it.
    CopyTruncate { scan_between: bool },
    /// Truncate the current file in place.
    Truncate,
    /// Truncate the current file and write past the old read offset before the next look.
    TruncateAndRegrow { lines: u8 },
    /// Delete the current file.
    Delete,
    /// Crash and restart the agent, with or without its latest checkpoints saved.
    RestartAgent { saved_checkpoints: bool },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (1u8..6, any::<bool>()).prop_map(|(lines, header_first)| Action::Write { lines, header_first }),
        1 => Just(Action::RenameRotate),
        1 => any::<bool>().prop_map(|scan_between| Action::CopyTruncate { scan_between }),
        1 => Just(Action::Truncate),
        1 => (1u8..12).prop_map(|lines| Action::TruncateAndRegrow { lines }),
        1 => Just(Action::Delete),
        1 => any::<bool>().prop_map(|saved_checkpoints| Action::RestartAgent { saved_checkpoints }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every line written arrives exactly once (after the collector's deduplication), no
    /// (stream, seq) is ever reused for other content, and each stream keeps write order.
    #[test]
    fn every_line_arrives_once_and_in_order(actions in proptest::collection::vec(action(), 1..40)) {
        let (delivered, written, by_stream) = run_actions(&actions);
        prop_assert_eq!(delivered, written);
        for lines in by_stream.values() {
            let mut ordered = lines.clone();
            ordered.sort();
            prop_assert_eq!(lines, &ordered);
        }
    }

    /// The same, with every idle file's descriptor closed at once and reopened on change.
    #[test]
    fn every_line_arrives_once_when_idle_files_are_closed(actions in proptest::collection::vec(action(), 1..40)) {
        let (delivered, written, by_stream) = run_actions_with(&actions, "close_inactive = \"0s\"\nmax_open_files = 2");
        prop_assert_eq!(delivered, written);
        for lines in by_stream.values() {
            let mut ordered = lines.clone();
            ordered.sort();
            prop_assert_eq!(lines, &ordered);
        }
    }
}

/// `count` new numbered lines as text, recorded in `written`.
fn new_lines(count: u8, written: &mut Vec<String>) -> String {
    let mut text = String::new();
    for _ in 0..count {
        let line = format!("line-{:05}", written.len() + 1);
        text.push_str(&line);
        text.push('\n');
        written.push(line);
    }
    text
}

/// Applies `actions` to a file while a tailer follows it; returns the lines delivered (sorted),
/// the lines written, and each stream's lines in seq order.
fn run_actions(actions: &[Action]) -> (Vec<String>, Vec<String>, BTreeMap<u64, Vec<String>>) {
    run_actions_with(actions, "")
}

fn run_actions_with(
    actions: &[Action],
    config: &str,
) -> (Vec<String>, Vec<String>, BTreeMap<u64, Vec<String>>) {
    let mut harness = Harness::new(config);
    let mut written = Vec::new();
    let mut generation = 0u32;
    for action in actions.iter().cloned() {
        match action {
            Action::Write {
                lines,
                header_first,
            } => {
                let exists = harness.path("app.log").exists();
                let mut text = String::new();
                if header_first && !exists {
                    text.push_str("HEADER\n");
                }
                text.push_str(&new_lines(lines, &mut written));
                harness.append("app.log", &text);
            }
            Action::RenameRotate => {
                generation += 1;
                let _ = std::fs::rename(
                    harness.path("app.log"),
                    harness.path(&format!("app.log.{generation}")),
                );
            }
            Action::CopyTruncate { scan_between } => {
                generation += 1;
                if harness.path("app.log").exists() {
                    std::fs::copy(
                        harness.path("app.log"),
                        harness.path(&format!("app-{generation}.log")),
                    )
                    .expect("copy");
                    if scan_between {
                        harness.scan();
                    }
                    std::fs::File::create(harness.path("app.log")).expect("truncate");
                }
            }
            Action::Truncate => {
                if harness.path("app.log").exists() {
                    harness.scan();
                    std::fs::File::create(harness.path("app.log")).expect("truncate");
                }
            }
            Action::TruncateAndRegrow { lines } => {
                if harness.path("app.log").exists() {
                    harness.scan();
                    let text = new_lines(lines, &mut written);
                    std::fs::write(harness.path("app.log"), text).expect("truncate and write");
                }
            }
            Action::Delete => {
                let _ = std::fs::remove_file(harness.path("app.log"));
            }
            Action::RestartAgent { saved_checkpoints } => harness.restart(saved_checkpoints),
        }
        harness.scan();
    }
    harness.scan();
    let delivered: Vec<String> = harness
        .messages()
        .into_iter()
        .filter(|m| m != "HEADER")
        .collect();
    let delivered = sorted(delivered);
    // Per stream, in seq order, lines keep the order they were written in.
    let mut by_stream: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for ((stream, _), message) in &harness.stored {
        if message != "HEADER" {
            by_stream.entry(*stream).or_default().push(message.clone());
        }
    }
    (delivered, written, by_stream)
}

/// Sequences the property test once found, kept as named regressions.
#[test]
fn regressions_found_by_the_model_test() {
    use Action::{CopyTruncate, Delete, RenameRotate};
    let w = |lines, header_first| Action::Write {
        lines,
        header_first,
    };
    let r = |saved_checkpoints| Action::RestartAgent { saved_checkpoints };
    let found = [
        // A checkpoint at offset 0 of a renamed-away file was taken over by a new file with
        // the same first line.
        vec![
            w(1, false),
            CopyTruncate {
                scan_between: false,
            },
            Delete,
            w(1, true),
            RenameRotate,
            r(false),
            w(1, true),
        ],
        // A copy was compared only with the first followed file having its first line.
        vec![
            r(true),
            w(2, true),
            CopyTruncate {
                scan_between: false,
            },
            w(3, false),
            Delete,
            w(3, true),
            w(5, false),
            RenameRotate,
            w(2, true),
            CopyTruncate { scan_between: true },
            w(2, false),
        ],
        // A restart gave a new file with an old file's first line the old file's stream.
        vec![w(1, true), RenameRotate, r(false), w(1, true)],
        // A file truncated and rewritten to the same length between two looks.
        vec![
            w(2, false),
            w(5, false),
            Action::TruncateAndRegrow { lines: 7 },
            Action::Truncate,
        ],
    ];
    for actions in found {
        let (delivered, written, _) = run_actions(&actions);
        assert_eq!(delivered, written, "{actions:?}");
    }
    let found_with_idle_files_closed = [
        // A copy of an idle (closed) file was not recognised as a copy.
        vec![w(1, false), CopyTruncate { scan_between: true }],
        // A new file reusing a deleted file's inode inherited its lineage.
        vec![
            w(1, false),
            CopyTruncate {
                scan_between: false,
            },
            Delete,
            w(1, true),
            Delete,
            w(1, true),
        ],
    ];
    for actions in found_with_idle_files_closed {
        let (delivered, written, _) = run_actions_with(&actions, "close_inactive = \"0s\"");
        assert_eq!(delivered, written, "{actions:?}");
    }
}

#[test]
fn container_runtime_lines_are_unwrapped_joined_and_kept_apart_by_pipe() {
    let mut harness =
        Harness::new("format = \"cri\"\nrole_from_path = \"(?P<role>worker|scheduler)\"");
    harness.append(
        "worker-0.log",
        "2026-11-27T14:05:34.263012345Z stderr F 2026-11-27 14:05:34,263 - distributed.worker - ERROR - Compute Failed\n\
         2026-11-27T14:05:35.000000000Z stdout P user print \n\
         2026-11-27T14:05:35.100000000Z stdout F in two parts\n\
         2026-11-27T14:05:35.200000000Z stderr F Traceback (most recent call last):\n\
         not a cri line\n\
         2026-11-27T14:05:35.300000000Z stderr F   File \"w.py\", line 1\n\
         2026-11-27T14:05:36.000000000Z stderr F 2026-11-27 14:05:36,000 - distributed.worker - INFO - next\n",
    );
    harness.scan();
    let by_pipe = |suffix: &str| -> Vec<String> {
        harness
            .stored
            .iter()
            .filter(|((stream, _), _)| harness.sources[stream].ends_with(suffix))
            .map(|(_, message)| message.clone())
            .collect()
    };
    assert_eq!(by_pipe("#stdout"), ["user print in two parts"]);
    assert_eq!(
        by_pipe("#stderr"),
        [
            "Compute Failed\nTraceback (most recent call last):\n  File \"w.py\", line 1",
            "next"
        ],
        "the traceback on stderr joins its record across the print on stdout"
    );
    let role = harness
        .tailer
        .as_ref()
        .and_then(|tailer| tailer.files.values().next().map(|file| file.stream.role));
    assert_eq!(role, Some(crate::config::Role::Worker));
}

#[test]
fn a_container_line_left_partial_is_not_lost_when_its_file_is_let_go() {
    let mut harness = Harness::new("format = \"cri\"\nrelease_after = \"0s\"");
    harness.append(
        "worker-0.log",
        "2026-11-27T14:05:35.000000000Z stdout P half a line, never finished\n",
    );
    harness.scan();
    assert!(
        harness.messages().is_empty(),
        "a partial line waits for its end"
    );
    std::fs::remove_file(harness.path("worker-0.log")).expect("delete");
    harness.scan();
    assert_eq!(harness.messages(), ["half a line, never finished"]);
}
