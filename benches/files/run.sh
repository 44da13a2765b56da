#!/usr/bin/env bash
# Many-files benchmark: how many one-line files per second the agent ships when N of them
# are there at once (found by its first scan), under a descriptor cap. It was written when
# 10,000 one-line files took about 30 s to ship.
#
#   benches/files/run.sh                                    # the working tree, release build
#   AGENTS="before=/tmp/agent-main after=target/release/afterglow-agent" benches/files/run.sh
#   FILES=2000 RUNS=1 benches/files/run.sh                  # a quick check
#
# Each run: a fresh collector (data in a temporary directory), a fresh directory of FILES
# files of one Dask line each (written before the agent starts), and a fresh agent with an
# empty state directory and the e2e test's settings: max_open_files = MAX_OPEN_FILES,
# close_inactive = "200ms", poll_interval = "1s", multiline_timeout = "100ms". The clock runs
# from the agent's start until its /metrics show FILES lines read, FILES records sent and no
# batch waiting for an acknowledgement (wait_files.py). files/s = FILES / that time. The
# highest `afterglow_agent_files_open` seen shows that the cap held.
#
# Environment (all optional):
#   FILES=10000          how many one-line files
#   RUNS=3               rounds; each round runs every agent once, in the order given
#   MAX_OPEN_FILES=256   the agent's max_open_files
#   PROFILE=release      which build of the working tree to use (release or debug)
#   AGENTS="label=path …" agent binaries to compare side by side (default: the working
#                        tree's, labelled "working tree"); the collector is always the
#                        working tree's
#   SKIP_BUILD=1         use the binaries already built
#   TIMEOUT=600          longest a run may take, seconds
#   OUT_DIR=…            results (default: benches/files/out): results.jsonl, summary.md,
#                        machine.md, and each run's logs and configs
#   CARGO_TARGET_DIR     where cargo puts the binaries (default: <workspace>/target)
#
# Everything listens on 127.0.0.1 only. Every process this script starts is stopped by PID
# when it ends, however it ends (trap).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FILES=${FILES:-10000}
RUNS=${RUNS:-3}
MAX_OPEN_FILES=${MAX_OPEN_FILES:-256}
PROFILE=${PROFILE:-release}
TIMEOUT=${TIMEOUT:-600}
OUT_DIR=${OUT_DIR:-$HERE/out}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
COLLECTOR=$TARGET_DIR/$PROFILE/afterglow-collector
AGENTS=${AGENTS:-"working-tree=$TARGET_DIR/$PROFILE/afterglow-agent"}
CLK_TCK=$(getconf CLK_TCK)

case $PROFILE in release | debug) ;; *) echo "PROFILE must be release or debug" >&2; exit 2 ;; esac

WORK=$(mktemp -d /tmp/afterglow-files.XXXXXX)
PIDS=()

source "$HERE/../lib.sh"

build_binaries

prepare_out_dir
{
    machine_rows
    echo "| Rust | $(rustc --version 2>/dev/null || echo unknown), $PROFILE profile |"
    echo "| Afterglow | working tree at $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown) |"
    echo "| Agents | $AGENTS |"
    echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
} >"$OUT_DIR/machine.md"

# Appends one run's result to results.jsonl.
record() {
    python3 - "$RESULTS" "$@" <<'PY'
import json, sys
path, label, run, files, t0, done_json, cpu, load = sys.argv[1:]
done = json.load(open(done_json))
wall = done["t_done"] - float(t0)
result = {
    "label": label, "run": int(run), "files": int(files), "wall_s": wall,
    "files_per_s": int(files) / wall, "cpu_s": float(cpu),
    "most_files_open": done["most_files_open"], "loadavg_start": load,
}
with open(path, "a") as handle:
    handle.write(json.dumps(result) + "\n")
print(f"{label} run {run}: {int(files)} files in {wall:.2f} s, {int(files) / wall:,.0f} files/s, "
      f"agent CPU {float(cpu):.2f} s, at most {done['most_files_open']} files open",
      file=sys.stderr)
PY
}

run_one() {
    local label=$1 agent=$2 n=$3 dir=$WORK/$1-$3
    mkdir -p "$dir/data" "$dir/state" "$dir/logs"
    python3 - "$dir/logs" "$FILES" <<'PY'
import os, sys
directory, count = sys.argv[1], int(sys.argv[2])
for index in range(count):
    with open(os.path.join(directory, f"worker-{index:05}.log"), "w") as handle:
        handle.write(f"2026-11-27 14:00:00,000 - distributed.worker - INFO - started worker {index:05}\n")
PY
    start_default_collector "$dir"
    local cpid=$COLLECTOR_PID grpc=$GRPC_URL
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
poll_interval = "1s"
multiline_timeout = "100ms"
close_inactive = "200ms"
max_open_files = $MAX_OPEN_FILES

[telemetry]
listen = "127.0.0.1:0"
TOML
    local load
    load=$(loadavg)
    log "$label run $n: starting the agent on $FILES files (load $load)"
    local t0=$EPOCHREALTIME
    NO_COLOR=1 "$agent" --config "$dir/agent.toml" >"$dir/agent.out" 2>"$dir/agent.err" &
    local apid=$!
    PIDS+=("$apid")
    wait_for_line "$dir/agent.err" "serving the agent's metrics.*addr=" "$apid" 60
    local metrics
    metrics=$(first_line "$dir/agent.err" "serving the agent's metrics" | sed -E 's/.*addr=([0-9.:]+).*/\1/')
    run_fg python3 "$HERE/wait_files.py" --metrics "http://$metrics/metrics" --files "$FILES" \
        --pid "$apid" --timeout "$TIMEOUT" >"$dir/done.json"
    local cpu
    cpu=$(cpu_seconds "$apid")
    stop_pid "$apid"
    stop_pid "$cpid"
    record "$label" "$n" "$FILES" "$t0" "$dir/done.json" "$cpu" "$load"
    mkdir -p "$OUT_DIR/runs/$label-$n"
    cp "$dir"/*.toml "$dir"/*.out "$dir"/*.err "$dir/done.json" "$OUT_DIR/runs/$label-$n/" 2>/dev/null || true
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
