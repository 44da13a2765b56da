#!/usr/bin/env python3
"""Turns run.sh's results.jsonl into Markdown: every run, then each agent's medians side by
side.

Usage: summarize.py RESULTS_JSONL
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, med  # noqa: E402


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    labels = list(dict.fromkeys(run["label"] for run in runs))
    print(f"{runs[0]['files']:,} one-line files, all there when the agent starts.")
    print()
    print("| agent | run | wall s | files/s | agent CPU s | most files open | load avg at start |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run['label']} | {run['run']} | {fmt(run['wall_s'])} | {fmt(run['files_per_s'], 0)} | "
            f"{fmt(run['cpu_s'])} | {run['most_files_open']} | {run['loadavg_start']} |"
        )
    print()
    print("Medians:")
    print()
    print("| agent | runs | wall s | files/s | agent CPU s |")
    print("|---|---:|---:|---:|---:|")
    for label in labels:
        mine = [run for run in runs if run["label"] == label]
        print(
            f"| {label} | {len(mine)} | {fmt(med(mine, 'wall_s'))} | "
            f"{fmt(med(mine, 'files_per_s'), 0)} | {fmt(med(mine, 'cpu_s'))} |"
        )


if __name__ == "__main__":
    main()
