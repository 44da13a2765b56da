#!/usr/bin/env bash
# Series store benchmark, for one simulated day of a 50-worker Dask cluster and its scheduler
# scraped every 15 s, ours beside Prometheus's TSDB: bytes on disk per metric sample (target
# ≤ 1 byte per sample) and query_range latency for 24 h of the cluster's key series (target
# p50 ≤ 20 ms).
#
#   benches/series/run.sh
#   SKIP_PROMTOOL=1 benches/series/run.sh        # ours only, bytes only
#
# Method
# - Ours: target/release/series_bytes (benches/src/bin/series_bytes.rs; its doc says how the
#   series and values are simulated) appends every scrape to a SeriesStore in a fresh
#   directory, seals every 30 s of simulated time, compacts after each seal with the simulated
#   clock, and finally compacts as if the day had ended two hours before: one block for the
#   day. Bytes = every file under the store's directory (blocks and series index).
# - Prometheus: the same samples, written by series_bytes as OpenMetrics text (every series a
#   `gauge` family, timestamps in seconds), turned into TSDB blocks by `promtool tsdb
#   create-blocks-from openmetrics` (Debian package `prometheus`). promtool cuts 2 h blocks
#   (12 for the day; Prometheus's own compaction would later merge them, keeping the chunks
#   as they are and writing one index instead of 12), so both the whole output and its
#   chunks alone are reported.
# - Query latency (not with SKIP_PROMTOOL=1): a release afterglow-collector is started on a
#   data dir holding our store, and a Prometheus server (Debian's) on promtool's blocks, both
#   on 127.0.0.1; query_latency.py sends each of six dashboard queries (24 h, 60 s step) once
#   to warm up (reported as "first"), then RUNS times to each, alternating, over keep-alive
#   connections, and reports median and p99 wall ms per side and their ratio; both sides must
#   answer the same number of series and points.
# - Reported in summary.md and results.json (OUT_DIR): series, samples, bytes and bytes per
#   sample of each; the query latencies.
#
# Environment (all optional):
#   OUT_DIR=…          results (default: benches/series/out)
#   SKIP_BUILD=1       use the release binary already built
#   SKIP_PROMTOOL=1    skip the Prometheus side (and the query latencies)
#   RUNS=20            timed runs of each query per side
#   CARGO_TARGET_DIR   where cargo puts the release binaries (default: <workspace>/target)
#
# Every process this script starts is stopped by PID when it ends, however it ends (trap).
# Needs: cargo, python3, and promtool unless SKIP_PROMTOOL=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT_DIR=${OUT_DIR:-$HERE/out}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERIES_BYTES=$TARGET_DIR/release/series_bytes
COLLECTOR=$TARGET_DIR/release/afterglow-collector
RUNS=${RUNS:-20}
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/afterglow-series.XXXXXX)
PIDS=()

source "$HERE/../lib.sh"

if [[ ${SKIP_PROMTOOL:-0} != 1 ]] && ! command -v promtool >/dev/null; then
    echo "promtool is missing: apt-get install -y prometheus, or SKIP_PROMTOOL=1" >&2
    exit 1
fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building series_bytes into $TARGET_DIR"
    CARGO_TARGET_DIR=$TARGET_DIR run_fg cargo build --release --locked \
        --manifest-path "$ROOT/Cargo.toml" -p afterglow-benches --bin series_bytes \
        -p afterglow-collector --bin afterglow-collector >&2
fi
[[ -x $SERIES_BYTES ]] || { echo "missing $SERIES_BYTES" >&2; exit 1; }

mkdir -p "$OUT_DIR"
{
    machine_rows
    echo "| Rust | $(rustc --version 2>/dev/null || echo unknown), release profile |"
    echo "| promtool | $( (promtool --version 2>&1 || echo missing) | head -1) |"
    echo "| Afterglow | $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown) |"
    echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
} >"$OUT_DIR/machine.md"

log "simulating a day into our store (and writing the OpenMetrics file)"
OPENMETRICS=()
[[ ${SKIP_PROMTOOL:-0} == 1 ]] || OPENMETRICS=("$WORK/day.om")
run_fg "$SERIES_BYTES" "$WORK/metrics" "${OPENMETRICS[@]}" >"$WORK/ours.json"
cat "$WORK/ours.json" >&2

PROM_BYTES=null
PROM_CHUNK_BYTES=null
PROM_BLOCKS=null
if [[ ${SKIP_PROMTOOL:-0} != 1 ]]; then
    log "promtool tsdb create-blocks-from openmetrics ($(du -h "$WORK/day.om" | cut -f1) of text)"
    run_fg promtool tsdb create-blocks-from openmetrics --quiet "$WORK/day.om" "$WORK/prometheus" >&2
    PROM_BYTES=$(du -sb "$WORK/prometheus" | cut -f1)
    PROM_CHUNK_BYTES=$(find "$WORK/prometheus" -path '*/chunks/*' -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    PROM_BLOCKS=$(find "$WORK/prometheus" -mindepth 1 -maxdepth 1 -type d | wc -l)
fi

echo null >"$WORK/queries.json"
if [[ ${SKIP_PROMTOOL:-0} != 1 ]]; then
    log "query_range latency: our collector on our store, Prometheus on promtool's blocks"
    mkdir -p "$WORK/collector"
    mv "$WORK/metrics" "$WORK/collector/metrics"
    printf 'data_dir = "%s"\n[listen]\nhttp = "127.0.0.1:0"\ngrpc = "127.0.0.1:0"\n' \
        "$WORK/collector" >"$WORK/collector.toml"
    NO_COLOR=1 "$COLLECTOR" --config "$WORK/collector.toml" >"$WORK/collector.out" 2>"$WORK/collector.err" &
    PIDS+=("$!")
    wait_for_line "$WORK/collector.out" '^afterglow-collector listening: ' "$!" 60
    OURS=$(first_line "$WORK/collector.out" '^afterglow-collector listening: ' | sed -E 's/.* http=([^ ]+).*/\1/')
    PROM_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prometheus.yml"
    prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
        --storage.tsdb.retention.time=3650d --web.listen-address="127.0.0.1:$PROM_PORT" \
        --log.level=warn >"$WORK/prometheus.out" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null && break
        sleep 0.1
    done
    # The grid starts 7 s into the day so that no window edge falls on a sample (they are on
    # a 15 s grid): Debian's Prometheus 2.42 closes range windows on the left, Prometheus 3
    # and we leave them open, and the answers are compared.
    GRID_START=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["day_start_ms"] / 1000 + 7)' "$WORK/ours.json")
    run_fg python3 "$HERE/query_latency.py" "$OURS" "http://127.0.0.1:$PROM_PORT" \
        "$GRID_START" "$(python3 -c "print($GRID_START + 86400 - 60)")" "$RUNS" >"$WORK/queries.json"
fi

python3 - "$WORK/ours.json" "$PROM_BYTES" "$PROM_CHUNK_BYTES" "$PROM_BLOCKS" "$OUT_DIR" "$WORK/queries.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
prom_bytes, prom_chunks, prom_blocks = (None if a == "null" else int(a) for a in sys.argv[2:5])
out = sys.argv[5]
queries = json.load(open(sys.argv[6]))
samples = ours["samples"]
result = {"ours": ours, "prometheus": None, "queries": queries}
rows = [
    "| | bytes | bytes/sample |",
    "|---|---:|---:|",
    f"| Afterglow series store (1 block, series index) | {ours['bytes']:,} | {ours['bytes'] / samples:.3f} |",
]
if prom_bytes is not None:
    result["prometheus"] = {"bytes": prom_bytes, "chunk_bytes": prom_chunks, "blocks": prom_blocks,
                            "bytes_per_sample": prom_bytes / samples, "chunk_bytes_per_sample": prom_chunks / samples}
    rows.append(f"| Prometheus TSDB, promtool ({prom_blocks} blocks: chunks, indexes, meta) | {prom_bytes:,} | {prom_bytes / samples:.3f} |")
    rows.append(f"| Prometheus TSDB, chunks only | {prom_chunks:,} | {prom_chunks / samples:.3f} |")
if queries:
    rows += ["", "| query_range, 24 h at 60 s | series × points | ours first, p50 / p99 ms | Prometheus first, p50 / p99 ms | ours / Prometheus (p50) |",
             "|---|---:|---:|---:|---:|"]
    for q in queries:
        shape = q["shape"]["ours"]
        if q["shape"]["ours"] != q["shape"]["prometheus"]:
            raise SystemExit(f"{q['query']}: the answers differ in shape: {q['shape']}")
        rows.append(f"| `{q['query']}` | {shape['series']} × {shape['points']} | {q['ours']['first_ms']}, {q['ours']['p50_ms']} / {q['ours']['p99_ms']} | "
                    f"{q['prometheus']['first_ms']}, {q['prometheus']['p50_ms']} / {q['prometheus']['p99_ms']} | {q['ratio_p50']} |")
summary = "\n".join([
    f"{ours['series']:,} series, {samples:,} samples (one day, 15 s grid); ours: ingest CPU {ours['ingest_cpu_s']} s, "
    f"{ours['blocks_before_day_end']} blocks before the day-end merge, read back in {ours['read_all_cpu_s']} s CPU",
    "", *rows, ""])
json.dump(result, open(f"{out}/results.json", "w"), indent=2)
open(f"{out}/summary.md", "w").write(summary)
print(summary)
PY
