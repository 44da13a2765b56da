# Shell functions shared by the benchmark scripts (benches/*/run.sh), which source this file
# after setting WORK (their temporary directory), PIDS=() and CLK_TCK. It installs the traps
# that stop every process they started, by PID, however the script ends.

# Stops one process this script started: SIGTERM, then SIGKILL after 15 s. By PID only.
stop_pid() {
    local pid=$1 i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            # A zombie (exited, not yet reaped) counts as stopped.
            [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
            echo "pid $pid did not stop on SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}

cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    # Newest first: agents before their collector, rsyslogd before its line counter.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits for it, so that a signal to this script is
# handled at once (bash runs traps only between foreground commands) and the command is
# stopped with everything else.
run_fg() {
    "$@" &
    local pid=$! status=0
    PIDS+=("$pid")
    wait "$pid" || status=$?
    local kept=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
    return "$status"
}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# utime+stime of a live process, in seconds (all its threads).
cpu_seconds() {
    awk -v tck="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' "/proc/$1/stat"
}
# Peak resident set (VmHWM), MiB.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}
# Waits until FILE holds a line matching REGEX (or TIMEOUT seconds pass, or PID dies).
wait_for_line() {
    local file=$1 regex=$2 pid=$3 limit=$4 i
    for ((i = 0; i < limit * 10; i++)); do
        if [[ -f $file ]] && sed 's/\x1b\[[0-9;]*m//g' "$file" | grep -Eq "$regex"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "process $pid exited while waiting for /$regex/ in $file:" >&2
            cat "$file" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "timed out waiting for /$regex/ in $file" >&2
    return 1
}
# Builds the agent and the collector ($PROFILE, into $TARGET_DIR) unless SKIP_BUILD=1, then
# checks that $COLLECTOR and each agent of $AGENTS ("label=path …") is there.
build_binaries() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        local profile_flag=()
        [[ $PROFILE == release ]] && profile_flag=(--release)
        log "building $PROFILE binaries into $TARGET_DIR"
        run_fg cargo build "${profile_flag[@]}" --locked --manifest-path "$ROOT/Cargo.toml" \
            -p afterglow-agent -p afterglow-collector >&2
    fi
    [[ -x $COLLECTOR ]] || { echo "missing $COLLECTOR" >&2; exit 1; }
    local entry
    for entry in $AGENTS; do
        [[ -x ${entry#*=} ]] || { echo "missing agent binary ${entry#*=}" >&2; exit 1; }
    done
}

# Starts $COLLECTOR with its default settings in DIR (data in DIR/data, output in
# DIR/collector.out and .err) on free loopback ports, and waits until it listens. Sets
# COLLECTOR_PID, GRPC_URL and HTTP_URL.
start_default_collector() {
    local dir=$1 address
    printf 'data_dir = "%s"\n\n[listen]\nhttp = "127.0.0.1:0"\ngrpc = "127.0.0.1:0"\n' "$dir/data" \
        >"$dir/collector.toml"
    NO_COLOR=1 "$COLLECTOR" --config "$dir/collector.toml" >"$dir/collector.out" 2>"$dir/collector.err" &
    COLLECTOR_PID=$!
    PIDS+=("$COLLECTOR_PID")
    wait_for_line "$dir/collector.out" '^afterglow-collector listening: ' "$COLLECTOR_PID" 60
    address=$(first_line "$dir/collector.out" '^afterglow-collector listening: ')
    GRPC_URL=$(sed -E 's/.* grpc=([^ ]+).*/\1/' <<<"$address")
    HTTP_URL=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$address")
}

# The first line of FILE matching REGEX, colours stripped.
first_line() {
    sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -m1 -E "$2"
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Makes the Dask corpus of CORPUS_MB in CORPUS_DIR (default: inside WORK), or reuses it when
# its manifest says it has that size; sets CORPUS. `manifest KEY` then reads its manifest.
prepare_corpus() {
    CORPUS=${CORPUS_DIR:-$WORK/corpus}
    if [[ -f $CORPUS/manifest.json ]] &&
        python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["mb"] != int(sys.argv[2]))' \
            "$CORPUS/manifest.json" "$CORPUS_MB"; then
        log "reusing the corpus in $CORPUS"
    else
        log "writing a ${CORPUS_MB} MB corpus to $CORPUS"
        run_fg python3 "$(dirname "${BASH_SOURCE[0]}")/shipping/make_corpus.py" "$CORPUS" --mb "$CORPUS_MB" >&2
    fi
}
manifest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$CORPUS/manifest.json" "$1"; }

# Makes OUT_DIR with an empty results.jsonl (its path in RESULTS) and an empty runs/.
prepare_out_dir() {
    mkdir -p "$OUT_DIR"
    RESULTS=$OUT_DIR/results.jsonl
    : >"$RESULTS"
    rm -rf "$OUT_DIR/runs"
    mkdir -p "$OUT_DIR/runs"
}

# The first rows of a run's machine.md: the table head and this machine.
machine_rows() {
    echo "| | |"
    echo "|---|---|"
    echo "| CPUs (\`nproc\`) | $(nproc) |"
    echo "| Model name (\`lscpu\`) | $(lscpu | sed -n 's/^Model name: *//p' | head -1) |"
    echo "| Memory (\`free -g\`) | $(free -g | awk '/^Mem:/ {print $2 " GiB total"}'), $(free -g | awk '/^Swap:/ {print ($2 == 0 ? "no swap" : $2 " GiB swap")}') |"
    echo "| Kernel | $(uname -r) |"
}
