#!/usr/bin/env python3
"""Turns run.sh's results.jsonl into Markdown: every run, then each agent's medians over its
runs side by side.

Usage: summarize.py RESULTS_JSONL
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, med  # noqa: E402

KEYS = ["searchable_p50_ms", "searchable_p99_ms", "tail_p50_ms", "tail_p99_ms"]


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    labels = list(dict.fromkeys(run["label"] for run in runs))
    first = runs[0]
    print(
        f"{first['lines']} Dask lines per run, one every {first['interval_ms']} ms; "
        f"search polled every {first['poll_ms']} ms. Milliseconds from the write to the line "
        "being found by search, and to its live-tail event."
    )
    print()
    print("| agent | run | searchable p50 | searchable p99 | tail p50 | tail p99 | load avg at start |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        cells = " | ".join(fmt(run[key], 0) for key in KEYS)
        print(f"| {run['label']} | {run['run']} | {cells} | {run['loadavg_start']} |")
    print()
    print("Medians of the runs:")
    print()
    print("| agent | searchable p50 | searchable p99 | tail p50 | tail p99 |")
    print("|---|---:|---:|---:|---:|")
    for label in labels:
        mine = [run for run in runs if run["label"] == label]
        cells = " | ".join(fmt(med(mine, key), 0) for key in KEYS)
        print(f"| {label} | {cells} |")


if __name__ == "__main__":
    main()
