#!/usr/bin/env python3
"""Writes the search benchmark's summary (markdown) from measure.py's results and the sizes.

Usage: summarize.py RESULTS_JSON RUN_JSON

RUN_JSON holds the run's facts: corpus bytes, lines and records, index bytes, data dir bytes,
partitions, ingest wall seconds, agents, load average before measuring.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt  # noqa: E402

# (case name, target p50 ms or None, target speed-up over the raw side or None)
TARGETS = {
    "rare term, newest 100": (50, 100),
    "everything, newest 100": (50, None),
    "histogram of everything, 7 days, 1h step": (150, None),
}
STORED_TARGET = 0.3


def met(ok):
    return "**met**" if ok else "**missed**"


def main():
    results = json.load(open(sys.argv[1]))
    run = json.load(open(sys.argv[2]))
    print(
        f"Corpus: {run['files']} files (one per node, {run['days']} UTC days), "
        f"{run['bytes']:,} bytes, {run['lines']:,} lines, {run['header_lines']:,} header lines; "
        f"ingested by {run['agents']} agents in {run['ingest_wall_s']:.0f} s. "
        f"Range of every query: [{results['start']}, {results['end']}). Partitions: "
        f"{run['partitions']}. Load average (1 min) before measuring: {run['loadavg_before_measure']}."
    )
    print()
    print("| query | Afterglow p50 ms | p99 ms | found | raw-file counterpart | p50 ms | p99 ms | found | raw / Afterglow (p50) |")
    print("|---|---:|---:|---|---|---:|---:|---|---:|")
    for case in results["cases"]:
        ours, raw = case["collector"], case["raw_timing"]
        if "collector_buckets" in case:
            found = f"{case['collector_buckets']} buckets, {case['collector_count']:,} records"
        elif "collector_count" in case:
            found = f"{case['collector_hits']} hits of {case['collector_count']:,}"
        else:
            found = f"{case['collector_hits']} records"
        raw_found = (
            f"{case['raw_count']:,} lines counted" if "raw_count" in case
            else f"{case['raw_lines']:,} lines"
        )
        ratio = raw["p50_ms"] / ours["p50_ms"] if raw else None
        label = case["raw_label"].replace("|", "\\|")  # a table cell
        print(
            f"| {case['name']} | {fmt(ours['p50_ms'])} | {fmt(ours['p99_ms'])} | {found} "
            f"| `{label}` | {fmt(raw['p50_ms']) if raw else '–'} "
            f"| {fmt(raw['p99_ms']) if raw else '–'} | {raw_found} | {fmt(ratio, 1)}× |"
        )
    print()
    stored = run["index_bytes"] / run["bytes"]
    print("| size | bytes | / raw |")
    print("|---|---:|---:|")
    print(f"| raw corpus | {run['bytes']:,} | 1.00 |")
    print(f"| index (data_dir/logs) | {run['index_bytes']:,} | {stored:.3f} |")
    print(f"| whole data dir (with the WAL left) | {run['data_bytes']:,} | {run['data_bytes'] / run['bytes']:.3f} |")
    print()
    print("| target | measured | |")
    print("|---|---|---|")
    by_name = {case["name"]: case for case in results["cases"]}
    for name, (p50_target, speedup_target) in TARGETS.items():
        case = by_name[name]
        p50 = case["collector"]["p50_ms"]
        print(f"| {name}: p50 ≤ {p50_target} ms | {fmt(p50)} ms | {met(p50 <= p50_target)} |")
        if speedup_target:
            ratio = case["raw_timing"]["p50_ms"] / p50
            print(f"| {name}: ≥ {speedup_target}× faster than rg | {fmt(ratio, 1)}× | {met(ratio >= speedup_target)} |")
    print(f"| stored size ≤ {STORED_TARGET} × raw | {stored:.3f} × | {met(stored <= STORED_TARGET)} |")


if __name__ == "__main__":
    main()
