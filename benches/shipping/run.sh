#!/usr/bin/env bash
# Shipping benchmark: afterglow-agent beside rsyslog on the same Dask corpus, same run.
#
#   benches/shipping/run.sh                 # the full ~1 GB corpus, 3 interleaved rounds
#   CORPUS_MB=100 RUNS=1 benches/shipping/run.sh   # a quick check
#
# Environment (all optional):
#   CORPUS_MB=1000      corpus size in 10^6 bytes (8 files of CORPUS_MB/8 each)
#   RUNS=3              rounds; each round is one Afterglow run, then one rsyslog run
#   IDLE_SECONDS=30     how long idle CPU is measured after a side has caught up
#   RSYSLOG_MODE=regex  regex: imfile groups multi-line records with startmsg.regex;
#                       line: one message per line (readMode 0)
#   TIMEOUT=3600        longest a run may take to catch up, seconds
#   CORPUS_DIR=…        where the corpus lives; reused when its manifest matches CORPUS_MB
#                       (default: inside the temporary work directory, deleted at the end)
#   OUT_DIR=…           results (default: benches/shipping/out): results.jsonl, summary.md,
#                       machine.md, and each run's logs and configs
#   REV=…               benchmark this git revision (e.g. HEAD) instead of the working tree:
#                       it is exported with `git archive` to the temporary directory and
#                       built there, into BENCH_TARGET_DIR (default: $CARGO_TARGET_DIR-shipping,
#                       or target/shipping-rev without CARGO_TARGET_DIR), so that uncommitted
#                       changes in the working tree do not leak in
#   SKIP_BUILD=1        use the release binaries already built
#   CARGO_TARGET_DIR    where cargo puts the release binaries (default: <workspace>/target)
#
# Everything listens on 127.0.0.1 only. Every process this script starts is stopped by PID
# when it ends, however it ends (trap). Needs: cargo, python3, rsyslog (installed with
# apt-get when rsyslogd is missing).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CORPUS_MB=${CORPUS_MB:-1000}
RUNS=${RUNS:-3}
IDLE_SECONDS=${IDLE_SECONDS:-30}
RSYSLOG_MODE=${RSYSLOG_MODE:-regex}
TIMEOUT=${TIMEOUT:-3600}
OUT_DIR=${OUT_DIR:-$HERE/out}
REV=${REV:-}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -n $REV ]]; then
    if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
        TARGET_DIR=${BENCH_TARGET_DIR:-$CARGO_TARGET_DIR-shipping}
    else
        TARGET_DIR=${BENCH_TARGET_DIR:-$ROOT/target/shipping-rev}
    fi
fi
AGENT=$TARGET_DIR/release/afterglow-agent
COLLECTOR=$TARGET_DIR/release/afterglow-collector
CLK_TCK=$(getconf CLK_TCK)

case $RSYSLOG_MODE in regex | line) ;; *) echo "RSYSLOG_MODE must be regex or line" >&2; exit 2 ;; esac

WORK=$(mktemp -d /tmp/afterglow-shipping.XXXXXX)
PIDS=()

source "$HERE/../lib.sh"

# --- prerequisites -----------------------------------------------------------------------
if ! command -v rsyslogd >/dev/null 2>&1; then
    log "rsyslogd missing: installing Debian's rsyslog"
    # The Debian package does not start the service where policy-rc.d forbids it (containers);
    # this benchmark starts its own rsyslogd with a private configuration either way.
    DEBIAN_FRONTEND=noninteractive apt-get install -y rsyslog >&2
fi
RSYSLOGD=$(command -v rsyslogd)

SOURCE=$ROOT
if [[ -n $REV ]]; then
    COMMIT=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}")
    SOURCE=$WORK/src
    mkdir -p "$SOURCE"
    git -C "$ROOT" archive --format=tar "$COMMIT" | tar -x -C "$SOURCE"
    REVISION="$COMMIT (\`git archive\` of $REV)"
else
    REVISION="working tree at $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no -- agent collector proto Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        REVISION="$REVISION, with uncommitted changes in agent/collector/proto"
    fi
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries from $SOURCE into $TARGET_DIR"
    CARGO_TARGET_DIR=$TARGET_DIR run_fg cargo build --release --locked \
        --manifest-path "$SOURCE/Cargo.toml" -p afterglow-agent -p afterglow-collector >&2
fi
[[ -x $AGENT && -x $COLLECTOR ]] || { echo "missing $AGENT or $COLLECTOR" >&2; exit 1; }

prepare_out_dir

{
    machine_rows
    echo "| Rust | $(rustc --version 2>/dev/null || echo unknown), release profile |"
    echo "| rsyslog | $("$RSYSLOGD" -v | head -1 | sed 's/ *compiled with://') |"
    echo "| Python | $(python3 --version) |"
    echo "| Afterglow | $REVISION |"
    echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
} >"$OUT_DIR/machine.md"

# --- corpus ------------------------------------------------------------------------------
prepare_corpus
BYTES=$(manifest bytes)
LINES=$(manifest lines)
HEADER_LINES=$(manifest header_lines)
EMPTY_LINES=$(manifest empty_lines)
MARKER=$(manifest marker_word)
FILES=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["files"]))' "$CORPUS/manifest.json")
if [[ $RSYSLOG_MODE == regex ]]; then
    RSYSLOG_EXPECTED=$HEADER_LINES # one message per record: header line plus what follows
else
    RSYSLOG_EXPECTED=$((LINES - EMPTY_LINES)) # imfile skips empty lines
fi
# Both sides read the corpus from the page cache.
cat "$CORPUS"/*.log >/dev/null

# Appends one run's result to results.jsonl.
record() {
    python3 - "$RESULTS" "$@" <<'EOF'
import json, sys
path, side, run, mode, t0, t_done, cpu, cpu_after_idle, idle_s, rss, rcpu, rrss, files, nbytes, lines, load, complete = sys.argv[1:]
wall = float(t_done) - float(t0)
cpu, cpu_after_idle, idle_s = float(cpu), float(cpu_after_idle), float(idle_s)
result = {
    "side": side, "run": int(run), "mode": mode,
    "files": int(files), "bytes": int(nbytes), "lines": int(lines),
    "wall_s": wall, "lines_per_s": int(lines) / wall,
    "cpu_s": cpu, "cpu_s_per_gb": cpu / (int(nbytes) / 1e9),
    "peak_rss_mib": float(rss),
    "idle_s": idle_s, "idle_cpu_s": cpu_after_idle - cpu,
    "idle_cpu_pct": 100 * (cpu_after_idle - cpu) / idle_s,
    "receiver_cpu_s": float(rcpu), "receiver_peak_rss_mib": float(rrss),
    "loadavg_start": load, "complete": complete == "yes",
}
with open(path, "a") as handle:
    handle.write(json.dumps(result) + "\n")
print(f"{side} run {run}: wall {wall:.2f} s, {int(lines) / wall:,.0f} lines/s, CPU {cpu:.2f} s "
      f"({result['cpu_s_per_gb']:.2f} CPU-s/GB), peak RSS {float(rss):.1f} MiB, "
      f"idle {result['idle_cpu_s']:.2f} CPU-s / {idle_s:g} s, receiver CPU {float(rcpu):.2f} s",
      file=sys.stderr)
EOF
}

# --- one Afterglow run -------------------------------------------------------------------
run_afterglow() {
    local n=$1 dir=$WORK/afterglow-$1
    mkdir -p "$dir/data" "$dir/state"
    cat >"$dir/collector.toml" <<EOF
data_dir = "$dir/data"

[listen]
http = "127.0.0.1:0"
grpc = "127.0.0.1:0"
EOF
    local load
    load=$(loadavg)
    NO_COLOR=1 "$COLLECTOR" --config "$dir/collector.toml" >"$dir/collector.out" 2>"$dir/collector.err" &
    local cpid=$!
    PIDS+=("$cpid")
    wait_for_line "$dir/collector.out" '^afterglow-collector listening: ' "$cpid" 60
    local address http grpc
    address=$(grep -m1 '^afterglow-collector listening: ' "$dir/collector.out")
    http=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$address")
    grpc=$(sed -E 's/.* grpc=([^ ]+).*/\1/' <<<"$address")
    cat >"$dir/agent.toml" <<EOF
collector = "$grpc"
cluster = "bench"
node = "bench-node"
timezone = "UTC"
state_dir = "$dir/state"

[[logs]]
paths = ["$CORPUS/scheduler.log"]
role = "scheduler"
format = "dask"

[[logs]]
paths = ["$CORPUS/worker-*.log"]
role = "worker"
format = "dask"

[telemetry]
listen = "127.0.0.1:0"
EOF
    "$AGENT" check --config "$dir/agent.toml" >&2
    log "afterglow run $n: collector at $http (gRPC $grpc); starting the agent"
    local t0=$EPOCHREALTIME
    NO_COLOR=1 "$AGENT" --config "$dir/agent.toml" >"$dir/agent.out" 2>"$dir/agent.err" &
    local apid=$!
    PIDS+=("$apid")
    wait_for_line "$dir/agent.err" "serving the agent's metrics.*addr=" "$apid" 60
    local metrics
    metrics=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/agent.err" | grep -m1 "serving the agent's metrics" | sed -E 's/.*addr=([0-9.:]+).*/\1/')
    run_fg python3 "$HERE/wait_agent.py" --metrics "http://$metrics/metrics" \
        --search "$http/api/v1/logs/search" --lines "$LINES" --files "$FILES" \
        --marker "$MARKER" --pid "$apid" --timeout "$TIMEOUT" >"$dir/done.json"
    local cpu ccpu
    cpu=$(cpu_seconds "$apid")
    ccpu=$(cpu_seconds "$cpid")
    local t_done
    t_done=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["t_done"])' "$dir/done.json")
    log "afterglow run $n: caught up after $(python3 -c "print(f'{$t_done - $t0:.2f}')") s ($(cat "$dir/done.json")); idle for $IDLE_SECONDS s"
    run_fg sleep "$IDLE_SECONDS"
    local cpu_idle rss crss
    cpu_idle=$(cpu_seconds "$apid")
    rss=$(peak_rss_mib "$apid")
    crss=$(peak_rss_mib "$cpid")
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://$metrics/metrics" >"$dir/agent-metrics.txt" || true
    du -sb "$dir/data" | cut -f1 >"$dir/index-bytes.txt"
    stop_pid "$apid"
    stop_pid "$cpid"
    record afterglow "$n" dask "$t0" "$t_done" "$cpu" "$cpu_idle" "$IDLE_SECONDS" "$rss" "$ccpu" "$crss" \
        "$FILES" "$BYTES" "$LINES" "$load" yes
    mkdir -p "$OUT_DIR/runs/afterglow-$n"
    cp "$dir"/*.toml "$dir"/*.out "$dir"/*.err "$dir/done.json" "$dir/agent-metrics.txt" \
        "$dir/index-bytes.txt" "$OUT_DIR/runs/afterglow-$n/" 2>/dev/null || true
    rm -rf "$dir"
}

# --- one rsyslog run ---------------------------------------------------------------------
run_rsyslog() {
    local n=$1 dir=$WORK/rsyslog-$1
    mkdir -p "$dir/work"
    local load
    load=$(loadavg)
    python3 "$HERE/line_counter.py" --expected "$RSYSLOG_EXPECTED" \
        --port-file "$dir/port" --done-file "$dir/done" &
    local kpid=$!
    PIDS+=("$kpid")
    wait_for_line "$dir/port" '^[0-9]+$' "$kpid" 30
    local port
    port=$(cat "$dir/port")
    {
        # Only imfile is loaded: no imuxsock (/dev/log), no imklog, no file outputs under
        # /var/log. State files go to the private work directory.
        echo "global(workDirectory=\"$dir/work\" maxMessageSize=\"1m\")"
        echo 'module(load="imfile" mode="inotify")'
        local path
        for path in "$CORPUS"/*.log; do
            if [[ $RSYSLOG_MODE == regex ]]; then
                # A Dask header starts a record; tracebacks and Compute Failed blocks join
                # it (newlines escaped as #012). readTimeout sends a file's last record
                # after 1 s, as the agent's multiline_timeout does.
                echo "input(type=\"imfile\" file=\"$path\" tag=\"dask:\" ruleset=\"ship\" startmsg.regex=\"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} - \" readTimeout=\"1\")"
            else
                echo "input(type=\"imfile\" file=\"$path\" tag=\"dask:\" ruleset=\"ship\")"
            fi
        done
        # A ruleset of its own: rsyslogd's internal messages stay in the default ruleset,
        # which has no action, so the counter sees only the corpus.
        echo "ruleset(name=\"ship\") {"
        echo "    action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$port\" protocol=\"tcp\")"
        echo "}"
    } >"$dir/rsyslog.conf"
    "$RSYSLOGD" -N1 -f "$dir/rsyslog.conf" >"$dir/rsyslog-check.txt" 2>&1 ||
        { cat "$dir/rsyslog-check.txt" >&2; return 1; }
    log "rsyslog run $n: line counter on 127.0.0.1:$port expects $RSYSLOG_EXPECTED messages; starting rsyslogd"
    local t0=$EPOCHREALTIME
    "$RSYSLOGD" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/rsyslogd.out" 2>&1 &
    local rpid=$!
    PIDS+=("$rpid")
    local start=$SECONDS
    while [[ ! -f $dir/done ]]; do
        if ! kill -0 "$rpid" 2>/dev/null; then
            echo "rsyslogd exited early:" >&2
            cat "$dir/rsyslogd.out" >&2
            return 1
        fi
        if ((SECONDS - start > TIMEOUT)); then
            echo "rsyslog run $n timed out" >&2
            return 1
        fi
        sleep 0.1
    done
    local cpu kcpu
    cpu=$(cpu_seconds "$rpid")
    kcpu=$(cpu_seconds "$kpid")
    local t_done
    t_done=$(cut -d' ' -f1 "$dir/done")
    log "rsyslog run $n: caught up after $(python3 -c "print(f'{$t_done - $t0:.2f}')") s; idle for $IDLE_SECONDS s"
    run_fg sleep "$IDLE_SECONDS"
    local cpu_idle rss krss
    cpu_idle=$(cpu_seconds "$rpid")
    rss=$(peak_rss_mib "$rpid")
    krss=$(peak_rss_mib "$kpid")
    stop_pid "$rpid"
    stop_pid "$kpid"
    local received complete=yes
    received=$(cut -d' ' -f1 "$dir/done.final")
    if ((received != RSYSLOG_EXPECTED)); then
        echo "rsyslog run $n: the counter received $received messages, expected $RSYSLOG_EXPECTED" >&2
        complete=no
    fi
    record rsyslog "$n" "$RSYSLOG_MODE" "$t0" "$t_done" "$cpu" "$cpu_idle" "$IDLE_SECONDS" "$rss" "$kcpu" "$krss" \
        "$FILES" "$BYTES" "$LINES" "$load" "$complete"
    mkdir -p "$OUT_DIR/runs/rsyslog-$n"
    cp "$dir/rsyslog.conf" "$dir/rsyslogd.out" "$dir/done" "$dir/done.final" "$OUT_DIR/runs/rsyslog-$n/" 2>/dev/null || true
    rm -rf "$dir"
}

log "corpus: $FILES files, $BYTES bytes, $LINES lines; $RUNS round(s), idle window $IDLE_SECONDS s"
for ((round = 1; round <= RUNS; round++)); do
    run_afterglow "$round"
    run_rsyslog "$round"
done

python3 "$HERE/summarize.py" "$RESULTS" | tee "$OUT_DIR/summary.md"
echo
cat "$OUT_DIR/machine.md"
