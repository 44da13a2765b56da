#!/usr/bin/env python3
"""Turns run.sh's results.jsonl into Markdown: the per-run table, the medians per side, the
collector's figures against the ceiling's, and the target.

Usage: summarize.py RESULTS_JSONL
"""

import json
import sys
import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, med  # noqa: E402

# The target of the issue this benchmark answers: MB/s of raw log (10^6 bytes) per collector
# core (CPU-second) with durability on (fsync = "always").
TARGET_MB_PER_CORE = 15.0


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    collector = [run for run in runs if run["side"] == "collector"]
    ceiling = [run for run in runs if run["side"] == "ceiling"]
    modes = list(dict.fromkeys(run["mode"] for run in collector))
    wal_key = bool(collector) and all(run["wal_key"] == 1 for run in collector)
    first = runs[0]
    print(
        f"Corpus: 8 files, {first['bytes']:,} bytes ({first['bytes'] / 1e6:,.1f} MB), "
        f"{first['records']:,} records, from 4 agents (2 files each). "
        f"MB = 10^6 bytes of raw log; \"per core\" = per CPU-second of the collector "
        f"(utime + stime, all threads) or of the ceiling process."
    )
    print()
    if collector and not wal_key:
        print(
            "**WAL_KEY=0: the collector's config had no `[wal]` table, so the runs labelled "
            "fsync=always and fsync=interval ran the same configuration, the collector's "
            "default** (a collector without a WAL acks at the tantivy commit); the labels only "
            "say which slot of the round they filled."
        )
        print()
    print("Per run (in the order they ran):")
    print()
    print(
        "| # | side | fsync | wall s | MB/s | CPU-s | MB/s per core | records/s per core | "
        "peak RSS MiB | agents' CPU-s / ceiling's parse CPU-s | index MB | data dir MB | partitions | "
        "load avg at start |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        other = run.get("agents_cpu_s", run.get("parse_cpu_s"))
        print(
            f"| {run['run']} | {run['side']} | {run['mode']} | {fmt(run['wall_s'])} | "
            f"{fmt(run['mb_per_s'])} | {fmt(run['cpu_s'])} | {fmt(run['mb_per_cpu_s'])} | "
            f"{fmt(run['records_per_cpu_s'])} | {fmt(run['peak_rss_mib'], 1)} | {fmt(other)} | "
            f"{fmt(run['index_bytes'] / 1e6, 1)} | {fmt(run['data_bytes'] / 1e6, 1)} | "
            f"{run['partitions']} | {run['loadavg_start']} |"
        )
    print()

    columns = [(f"collector, fsync={mode}", [r for r in collector if r["mode"] == mode]) for mode in modes]
    columns.append(("ceiling (tantivy alone)", ceiling))
    rows = [
        ("wall time, s", "wall_s", 2),
        ("MB/s (wall)", "mb_per_s", 2),
        ("records/s (wall)", "records_per_s", 0),
        ("CPU-s", "cpu_s", 2),
        ("**MB/s per core**", "mb_per_cpu_s", 2),
        ("**records/s per core**", "records_per_cpu_s", 0),
        ("peak RSS (VmHWM), MiB", "peak_rss_mib", 1),
        ("agents' CPU-s (4 agents)", "agents_cpu_s", 2),
        ("ceiling: parse CPU-s (agent's work)", "parse_cpu_s", 2),
        ("ceiling: parse share of its CPU", "parse_share", 3),
        ("ceiling: MB/s per indexing core (CPU minus parse)", "mb_per_index_cpu_s", 2),
        ("ceiling: records/s per indexing core", "records_per_index_cpu_s", 0),
    ]
    print(f"Medians over the rounds ({', '.join(f'{name}: {len(c)}' for name, c in columns)} runs):")
    print()
    print("| metric | " + " | ".join(name for name, _ in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for label, key, digits in rows:
        print(f"| {label} | " + " | ".join(fmt(med(c, key), digits) for _, c in columns) + " |")
    print()

    ceiling_total = med(ceiling, "mb_per_cpu_s")
    ceiling_index = med(ceiling, "mb_per_index_cpu_s")
    if ceiling_total and collector:
        print("Collector against the ceiling (medians of MB/s per core):")
        print()
        print("| collector | ÷ ceiling, whole process | ÷ ceiling, indexing only (parse excluded) |")
        print("|---|---:|---:|")
        for name, column in columns[:-1]:
            value = med(column, "mb_per_cpu_s")
            print(f"| {name} | {value / ceiling_total:.3f} | {value / ceiling_index:.3f} |")
        print()

    durable = [run for run in collector if run["mode"] == "always"]
    if durable:
        value = med(durable, "mb_per_cpu_s")
        met = "yes" if value >= TARGET_MB_PER_CORE else "NO"
        if not wal_key:
            met += " (WAL_KEY=0: fsync mode not set, the collector's default ran)"
        print("Target:")
        print()
        print("| target | measured (median, fsync=always) | met? |")
        print("|---|---|---|")
        print(f"| ≥ {TARGET_MB_PER_CORE:g} MB/s of raw log per collector core, durability on | {value:.2f} MB/s per core | {met} |")

    warnings = []
    counts = {run["records"] for run in runs}
    if len(counts) > 1:
        warnings.append(f"record counts differ between runs: {sorted(counts)}")
    reconnects = [run for run in collector if run.get("reconnects")]
    if reconnects:
        warnings.append(f"{len(reconnects)} collector run(s) had agent reconnects (records may have been resent)")
    for warning in warnings:
        print()
        print(f"WARNING: {warning}")


if __name__ == "__main__":
    main()
