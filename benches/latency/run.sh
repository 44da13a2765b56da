#!/usr/bin/env bash
# Latency benchmark: how long after a Dask line is written to a file it can be searched, and
# how long until the live tail (`GET /api/v1/logs/tail`, Server-Sent Events) shows it. It was
# written when written→searchable took p50 1.30 s, p99 1.54 s.
#
#   benches/latency/run.sh                                   # the working tree, release build
#   AGENTS="before=/tmp/agent-main after=target/release/afterglow-agent" benches/latency/run.sh
#   LINES=30 RUNS=1 benches/latency/run.sh                   # a quick check
#
# Each run: a fresh collector (default configuration, data in a temporary directory) and a
# fresh agent with the default `[[logs]]` and `[ship]` settings (multiline_timeout "1s",
# batch_linger "100ms"), following one file. measure.py subscribes to the live tail, then
# appends one Dask line every INTERVAL_MS (each with a unique marker, one write each, as
# Python's logging does), and notes per line when the write returned, when the tail's event
# for it arrived, and when a search (polled every POLL_MS) first found it. Reported per run:
# p50 and p99 (nearest rank) of written→searchable and written→tail; summarize.py gives each
# agent's median over the runs.
#
# Environment (all optional):
#   LINES=120            lines per run (at least 100 for a meaningful p99)
#   INTERVAL_MS=200      time between two lines
#   POLL_MS=10           time between two searches
#   RUNS=3               rounds; each round runs every agent once, in the order given
#   PROFILE=release      which build of the working tree to use (release or debug)
#   AGENTS="label=path …" agent binaries to compare (default: the working tree's)
#   COLLECTOR=path       the collector binary (default: the working tree's)
#   SKIP_BUILD=1         use the binaries already built
#   OUT_DIR=…            results (default: benches/latency/out): results.jsonl, summary.md,
#                        machine.md, and each run's logs and configs
#   CARGO_TARGET_DIR     where cargo puts the binaries (default: <workspace>/target)
#
# Everything listens on 127.0.0.1 only. Every process this script starts is stopped by PID
# when it ends, however it ends (trap).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LINES=${LINES:-120}
INTERVAL_MS=${INTERVAL_MS:-200}
POLL_MS=${POLL_MS:-10}
RUNS=${RUNS:-3}
PROFILE=${PROFILE:-release}
OUT_DIR=${OUT_DIR:-$HERE/out}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
COLLECTOR=${COLLECTOR:-$TARGET_DIR/$PROFILE/afterglow-collector}
AGENTS=${AGENTS:-"working-tree=$TARGET_DIR/$PROFILE/afterglow-agent"}
CLK_TCK=$(getconf CLK_TCK)

case $PROFILE in release | debug) ;; *) echo "PROFILE must be release or debug" >&2; exit 2 ;; esac

WORK=$(mktemp -d /tmp/afterglow-latency.XXXXXX)
PIDS=()

source "$HERE/../lib.sh"

build_binaries

prepare_out_dir
{
    machine_rows
    echo "| Rust | $(rustc --version 2>/dev/null || echo unknown), $PROFILE profile |"
    echo "| Afterglow | working tree at $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown) |"
    echo "| Agents | $AGENTS |"
    echo "| Collector | $COLLECTOR |"
    echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
} >"$OUT_DIR/machine.md"

run_one() {
    local label=$1 agent=$2 n=$3 dir=$WORK/$1-$3
    mkdir -p "$dir/data" "$dir/state" "$dir/logs"
    : >"$dir/logs/worker.log"
    start_default_collector "$dir"
    local cpid=$COLLECTOR_PID grpc=$GRPC_URL http=$HTTP_URL
    cat >"$dir/agent.toml" <<TOML
collector = "$grpc"
cluster = "bench"
node = "bench-node"
timezone = "UTC"
state_dir = "$dir/state"

[[logs]]
paths = ["$dir/logs/*.log"]
role = "worker"
format = "dask"

[telemetry]
listen = "127.0.0.1:0"
TOML
    NO_COLOR=1 "$agent" --config "$dir/agent.toml" >"$dir/agent.out" 2>"$dir/agent.err" &
    local apid=$!
    PIDS+=("$apid")
    wait_for_line "$dir/agent.err" "tailing" "$apid" 60
    local load
    load=$(loadavg)
    log "$label run $n: $LINES lines, one every $INTERVAL_MS ms (load $load)"
    run_fg python3 "$HERE/measure.py" --http "$http" --file "$dir/logs/worker.log" \
        --lines "$LINES" --interval-ms "$INTERVAL_MS" --poll-ms "$POLL_MS" \
        --label "$label" --run "$n" --load "$load" >>"$RESULTS"
    stop_pid "$apid"
    stop_pid "$cpid"
    mkdir -p "$OUT_DIR/runs/$label-$n"
    cp "$dir"/*.toml "$dir"/*.out "$dir"/*.err "$OUT_DIR/runs/$label-$n/" 2>/dev/null || true
    rm -rf "$dir"
}

for ((round = 1; round <= RUNS; round++)); do
    for entry in $AGENTS; do
        run_one "${entry%%=*}" "${entry#*=}" "$round"
    done
done

python3 "$HERE/summarize.py" "$RESULTS" | tee "$OUT_DIR/summary.md"
echo
cat "$OUT_DIR/machine.md"
