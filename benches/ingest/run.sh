#!/usr/bin/env bash
# Ingest benchmark: collector ingest throughput, end to end (written to file → searchable),
# from 4 agents, with fsync "always" and "interval", beside the ceiling of tantivy alone on the
# same corpus, schema and writer settings. Target: ≥ 15 MB/s of raw log per collector core
# with durability on (fsync = "always").
#
#   benches/ingest/run.sh                              # 400 MB corpus, 3 interleaved rounds
#   CORPUS_MB=40 RUNS=1 benches/ingest/run.sh          # a quick check
#   WAL_KEY=0 benches/ingest/run.sh                   # a collector from before `[wal]`
#
# Method
# - Corpus: benches/shipping/make_corpus.py (deterministic Dask logs built from the fixtures):
#   8 files of CORPUS_MB/8 each, written completely (and fsynced) before any process starts,
#   then read once so that every run reads them from the page cache. The last line of each
#   file is an end marker.
# - Collector run (one per fsync mode and round): a fresh release afterglow-collector, data
#   dir in a temporary directory, HTTP and gRPC on 127.0.0.1 port 0 (the bound addresses are
#   read from its "afterglow-collector listening:" stdout line). With WAL_KEY=1 (the default)
#   its config gets `[wal] fsync = "<mode>"`; with WAL_KEY=0 (for collectors from before the
#   WAL, which reject the key) it does not, and both modes run the same configuration, the
#   collector's default: the results are labelled with the mode anyway and the summary says so.
#   Then 4 release agents (nodes node-1 … node-4 of cluster "bench"), each tailing 2 files
#   (agent 1: scheduler.log and worker-1.log, agent 2: worker-2 and worker-3, …), format
#   "dask", timezone UTC, each with its own state_dir and `[telemetry] listen =
#   "127.0.0.1:0"`; every other key keeps its default.
# - Clock: starts just before the agents start; stops at the first poll (every 0.1 s) where
#   the agents' summed afterglow_agent_lines_read_total equals the corpus's lines and
#   `GET /api/v1/logs/search?q=<marker>` finds the end marker of all 8 files (a stream's
#   records are committed in order, so its last record found means all are searchable).
#   The wall time includes the agents' start, and the 1 s multiline_timeout after which an
#   agent sends a quiet file's last record.
# - Collector CPU: utime + stime from /proc/PID/stat at that poll minus the same just before
#   the agents started. Peak RSS: VmHWM after the run. Records: the agents'
#   afterglow_agent_records_sent_total, summed (checked against the ceiling's count).
# - Ceiling run (one per round): target/release/ingest_ceiling (benches/src/bin/
#   ingest_ceiling.rs) reads the same 8 files with the agent's line splitter and record
#   assembler, builds the collector's documents for the same nodes, roles, sources and stream
#   ids, and indexes them into one partition opened by the collector's own LogStore (zstd doc
#   store), 1 indexing thread, 32 MiB, commit every 500 ms; clock from its first read to its
#   final commit, CPU of the whole process. Parsing is the agent's work in the real system,
#   so the ceiling also reports the CPU of its parsing alone, and its MB/s per indexing CPU-s
#   (CPU minus parsing), the figure to compare with the collector's.
# - Reported per run: wall MB/s (10^6 bytes of raw log / wall s), MB/s per collector core
#   (bytes / CPU-s), records/s per core (records / CPU-s), peak RSS, the index's size on disk
#   (data_dir/logs) and the whole data dir's once the collector has stopped (with a WAL, what
#   is left of it), and the collector's partitions: one per UTC day of the records. Records
#   without a header (task print() lines) get the time they were read, so on any day but the
#   corpus's 2026-11-27 the collector writes two partitions, while the ceiling writes one.
#   Rounds interleave: in each round one collector run per mode, then one ceiling run. Each
#   figure in the summary is the median over the rounds.
#
# Environment (all optional):
#   CORPUS_MB=400     corpus size in 10^6 bytes
#   RUNS=3            rounds
#   FSYNC=both        always | interval | both: the collector runs of each round
#   WAL_KEY=1         0: leave `[wal] fsync = "<mode>"` out of the collector's config
#   TIMEOUT=1800      longest a run may take, seconds
#   CORPUS_DIR=…      where the corpus lives; reused when its manifest matches CORPUS_MB
#                     (default: inside the temporary work directory, deleted at the end)
#   OUT_DIR=…         results (default: benches/ingest/out): results.jsonl, summary.md,
#                     machine.md, and each run's configs and logs
#   SKIP_BUILD=1      use the release binaries already built
#   CARGO_TARGET_DIR  where cargo puts the release binaries (default: <workspace>/target)
#
# Everything listens on 127.0.0.1 only. Every process this script starts is stopped by PID
# when it ends, however it ends (trap). Needs: cargo, python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CORPUS_MB=${CORPUS_MB:-400}
RUNS=${RUNS:-3}
FSYNC=${FSYNC:-both}
WAL_KEY=${WAL_KEY:-1}
TIMEOUT=${TIMEOUT:-1800}
OUT_DIR=${OUT_DIR:-$HERE/out}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
AGENT=$TARGET_DIR/release/afterglow-agent
COLLECTOR=$TARGET_DIR/release/afterglow-collector
CEILING=$TARGET_DIR/release/ingest_ceiling
CLK_TCK=$(getconf CLK_TCK)
AGENTS=4

case $FSYNC in
    always | interval) MODES=("$FSYNC") ;;
    both) MODES=(always interval) ;;
    *) echo "FSYNC must be always, interval or both" >&2; exit 2 ;;
esac
case $WAL_KEY in 0 | 1) ;; *) echo "WAL_KEY must be 0 or 1" >&2; exit 2 ;; esac

WORK=$(mktemp -d /tmp/afterglow-ingest.XXXXXX)
PIDS=()

source "$HERE/../lib.sh"

# --- build -------------------------------------------------------------------------------
REVISION="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no -- agent collector proto Cargo.lock 2>/dev/null) ]]; then
    REVISION="$REVISION, with uncommitted changes in agent/, collector/, proto/ or Cargo.lock"
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries into $TARGET_DIR"
    CARGO_TARGET_DIR=$TARGET_DIR run_fg cargo build --release --locked \
        --manifest-path "$ROOT/Cargo.toml" \
        -p afterglow-agent -p afterglow-collector -p afterglow-benches --bins >&2
fi
for binary in "$AGENT" "$COLLECTOR" "$CEILING"; do
    [[ -x $binary ]] || { echo "missing $binary" >&2; exit 1; }
done

prepare_out_dir

{
    machine_rows
    echo "| Data dirs | $WORK on $(df --output=fstype "$WORK" | tail -1) ($(df --output=source "$WORK" | tail -1)) |"
    echo "| Rust | $(rustc --version 2>/dev/null || echo unknown), release profile |"
    echo "| Python | $(python3 --version) |"
    echo "| Afterglow | $REVISION |"
    echo "| Collector \`[wal]\` key | $([[ $WAL_KEY == 1 ]] && echo "written (WAL_KEY=1)" || echo "not written (WAL_KEY=0)") |"
    echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
} >"$OUT_DIR/machine.md"

# --- corpus ------------------------------------------------------------------------------
prepare_corpus
BYTES=$(manifest bytes)
LINES=$(manifest lines)
MARKER=$(manifest marker_word)
mapfile -t FILE_NAMES < <(python3 -c 'import json,sys; print("\n".join(f["name"] for f in json.load(open(sys.argv[1]))["files"]))' "$CORPUS/manifest.json")
if ((${#FILE_NAMES[@]} != 2 * AGENTS)); then
    echo "the corpus has ${#FILE_NAMES[@]} files; this benchmark needs $((2 * AGENTS))" >&2
    exit 1
fi
# Written to disk before anything runs, then read into the page cache.
sync "${FILE_NAMES[@]/#/$CORPUS/}"
cat "${FILE_NAMES[@]/#/$CORPUS/}" >/dev/null

# File i (0-7) belongs to agent i/2+1, node node-<that>; scheduler.log is the scheduler's.
node_of() { echo "node-$(($1 / 2 + 1))"; }
role_of() { [[ ${FILE_NAMES[$1]} == scheduler* ]] && echo scheduler || echo worker; }
CEILING_SPECS=()
for i in "${!FILE_NAMES[@]}"; do
    CEILING_SPECS+=("$(node_of "$i"):$(role_of "$i"):$CORPUS/${FILE_NAMES[i]}")
done

# Appends one run's result to results.jsonl, with the derived rates. Arguments: KEY=VALUE, or
# @FILE to take every key of the JSON object in FILE (a collector run's done.json, which
# becomes wall_s, cpu_s and records; a ceiling run's output).
record() {
    python3 - "$RESULTS" "$@" <<'EOF'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
run = {}
for arg in args:
    if arg.startswith("@"):
        run.update(json.load(open(arg[1:])))
        continue
    key, _, value = arg.partition("=")
    try:
        run[key] = int(value)
    except ValueError:
        try:
            run[key] = float(value)
        except ValueError:
            run[key] = value
if run["side"] == "collector":
    run["wall_s"] = run.pop("t_done") - run.pop("t0")
    run["cpu_s"] = run.pop("collector_cpu_s") - run.pop("cpu_start")
    agents = run.pop("agents")
    run["records"] = agents["afterglow_agent_records_sent_total"]
    run["reconnects"] = agents["afterglow_agent_reconnects_total"]
mb = run["bytes"] / 1e6
run["mb_per_s"] = mb / run["wall_s"]
run["records_per_s"] = run["records"] / run["wall_s"]
run["mb_per_cpu_s"] = mb / run["cpu_s"]
run["records_per_cpu_s"] = run["records"] / run["cpu_s"]
if run["side"] == "ceiling":
    run["index_cpu_s"] = run["cpu_s"] - run["parse_cpu_s"]
    run["parse_share"] = run["parse_cpu_s"] / run["cpu_s"]
    run["mb_per_index_cpu_s"] = mb / run["index_cpu_s"]
    run["records_per_index_cpu_s"] = run["records"] / run["index_cpu_s"]
with open(path, "a") as handle:
    handle.write(json.dumps(run) + "\n")
print(f"{run['side']} {run['mode']} run {run['run']}: wall {run['wall_s']:.2f} s "
      f"({run['mb_per_s']:.2f} MB/s), CPU {run['cpu_s']:.2f} s ({run['mb_per_cpu_s']:.2f} MB/s "
      f"and {run['records_per_cpu_s']:,.0f} records/s per core), peak RSS "
      f"{run['peak_rss_mib']:.1f} MiB", file=sys.stderr)
EOF
}

# --- one collector run -------------------------------------------------------------------
run_collector() {
    local n=$1 mode=$2 dir=$WORK/collector-$2-$1
    mkdir -p "$dir/data"
    {
        echo "data_dir = \"$dir/data\""
        echo
        echo "[listen]"
        echo "http = \"127.0.0.1:0\""
        echo "grpc = \"127.0.0.1:0\""
        if [[ $WAL_KEY == 1 ]]; then
            echo
            echo "[wal]"
            echo "fsync = \"$mode\""
        fi
    } >"$dir/collector.toml"
    "$COLLECTOR" check --config "$dir/collector.toml" >&2
    sync -f "$WORK"
    local load
    load=$(loadavg)
    NO_COLOR=1 "$COLLECTOR" --config "$dir/collector.toml" >"$dir/collector.out" 2>"$dir/collector.err" &
    local cpid=$!
    PIDS+=("$cpid")
    wait_for_line "$dir/collector.out" '^afterglow-collector listening: ' "$cpid" 60
    local address http grpc
    address=$(first_line "$dir/collector.out" '^afterglow-collector listening: ')
    http=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$address")
    grpc=$(sed -E 's/.* grpc=([^ ]+).*/\1/' <<<"$address")
    local a i
    for ((a = 1; a <= AGENTS; a++)); do
        {
            echo "collector = \"$grpc\""
            echo "cluster = \"bench\""
            echo "node = \"node-$a\""
            echo "timezone = \"UTC\""
            echo "state_dir = \"$dir/state-$a\""
            for i in $((2 * a - 2)) $((2 * a - 1)); do
                echo
                echo "[[logs]]"
                echo "paths = [\"$CORPUS/${FILE_NAMES[i]}\"]"
                echo "role = \"$(role_of "$i")\""
                echo "format = \"dask\""
            done
            echo
            echo "[telemetry]"
            echo "listen = \"127.0.0.1:0\""
        } >"$dir/agent-$a.toml"
        "$AGENT" check --config "$dir/agent-$a.toml" >&2
    done
    log "collector $mode run $n: collector at $http (gRPC $grpc); starting $AGENTS agents"
    local cpu_start t0 apids=()
    cpu_start=$(cpu_seconds "$cpid")
    t0=$EPOCHREALTIME
    for ((a = 1; a <= AGENTS; a++)); do
        NO_COLOR=1 "$AGENT" --config "$dir/agent-$a.toml" >"$dir/agent-$a.out" 2>"$dir/agent-$a.err" &
        apids+=("$!")
        PIDS+=("$!")
    done
    local metrics=()
    for ((a = 1; a <= AGENTS; a++)); do
        wait_for_line "$dir/agent-$a.err" "serving the agent's metrics.*addr=" "${apids[a - 1]}" 60
        metrics+=(--metrics "http://$(first_line "$dir/agent-$a.err" "serving the agent's metrics" |
            sed -E 's/.*addr=([0-9.:]+).*/\1/')/metrics")
    done
    run_fg python3 "$HERE/wait_ingest.py" --search "$http/api/v1/logs/search" \
        --marker "$MARKER" --files "${#FILE_NAMES[@]}" --lines "$LINES" \
        --collector-pid "$cpid" "${metrics[@]}" --timeout "$TIMEOUT" >"$dir/done.json"
    local rss agents_cpu
    rss=$(peak_rss_mib "$cpid")
    agents_cpu=$(for a in "${apids[@]}"; do cpu_seconds "$a"; done | awk '{ s += $1 } END { printf "%.2f", s }')
    for a in "${apids[@]}"; do stop_pid "$a"; done
    stop_pid "$cpid"
    local index_bytes data_bytes partitions
    index_bytes=$(du -sb "$dir/data/logs" | cut -f1)
    data_bytes=$(du -sb "$dir/data" | cut -f1)
    partitions=$(find "$dir/data/logs" -mindepth 2 -maxdepth 2 -type d | wc -l)
    record side=collector mode="$mode" run="$n" wal_key="$WAL_KEY" bytes="$BYTES" \
        t0="$t0" cpu_start="$cpu_start" "@$dir/done.json" peak_rss_mib="$rss" \
        agents_cpu_s="$agents_cpu" index_bytes="$index_bytes" data_bytes="$data_bytes" \
        partitions="$partitions" loadavg_start="$load"
    mkdir -p "$OUT_DIR/runs/collector-$mode-$n"
    cp "$dir"/*.toml "$dir"/*.out "$dir"/*.err "$dir/done.json" "$OUT_DIR/runs/collector-$mode-$n/"
    rm -rf "$dir"
}

# --- one ceiling run ---------------------------------------------------------------------
run_ceiling() {
    local n=$1 dir=$WORK/ceiling-$1
    mkdir -p "$dir"
    sync -f "$WORK"
    local load
    load=$(loadavg)
    log "ceiling run $n: tantivy alone"
    run_fg "$CEILING" "$dir/index" bench "${CEILING_SPECS[@]}" >"$dir/result.json" 2>"$dir/ceiling.err"
    local index_bytes
    index_bytes=$(du -sb "$dir/index" | cut -f1)
    record side=ceiling mode=- run="$n" "@$dir/result.json" index_bytes="$index_bytes" \
        data_bytes="$index_bytes" partitions=1 loadavg_start="$load"
    mkdir -p "$OUT_DIR/runs/ceiling-$n"
    cp "$dir/result.json" "$dir/ceiling.err" "$OUT_DIR/runs/ceiling-$n/"
    rm -rf "$dir"
}

log "corpus: ${#FILE_NAMES[@]} files, $BYTES bytes, $LINES lines; $RUNS round(s) of: ${MODES[*]/#/collector fsync=}, ceiling"
for ((round = 1; round <= RUNS; round++)); do
    for mode in "${MODES[@]}"; do
        run_collector "$round" "$mode"
    done
    run_ceiling "$round"
done

python3 "$HERE/summarize.py" "$RESULTS" | tee "$OUT_DIR/summary.md"
echo
cat "$OUT_DIR/machine.md"
