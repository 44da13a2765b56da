#!/usr/bin/env python3
"""Turns run.sh's results.jsonl into Markdown: the per-run table, the medians, and the ratios
against the targets.

Usage: summarize.py RESULTS_JSONL
"""

import json
import sys
import os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import fmt, med  # noqa: E402

# The targets of the issue this benchmark answers.
TARGET_CPU_RATIO = 1 / 5  # agent CPU-s/GB at most one fifth of rsyslog's
TARGET_RSS_MB = 20.0  # agent peak RSS, 10^6 bytes
# "Idle CPU ≈ 0", read as at most 0.5 % of one core (0.15 CPU-s over 30 s). CPU time is counted
# in clock ticks of 10 ms, so over 30 s one tick is 0.033 % of a core.
TARGET_IDLE_PCT = 0.5
EPSILON = 1e-9


def main():
    runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    agent = [run for run in runs if run["side"] == "afterglow"]
    rsys = [run for run in runs if run["side"] == "rsyslog"]
    first = runs[0]
    print(
        f"Corpus: {first['files']} files, {first['bytes']:,} bytes "
        f"({first['bytes'] / 1e9:.3f} GB), {first['lines']:,} lines. "
        f"Idle window: {first['idle_s']:g} s. rsyslog mode: {rsys[0]['mode'] if rsys else '–'}."
    )
    print()
    print("Per run (in the order they ran):")
    print()
    print(
        "| # | side | wall s | lines/s | CPU s | CPU-s/GB | peak RSS MiB | idle CPU s / "
        f"{first['idle_s']:g} s | idle % of a core | receiver CPU s | receiver peak RSS MiB | "
        "load avg (1 min) at start |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run['run']} | {run['side']} | {fmt(run['wall_s'])} | {fmt(run['lines_per_s'])} | "
            f"{fmt(run['cpu_s'])} | {fmt(run['cpu_s_per_gb'])} | {fmt(run['peak_rss_mib'], 1)} | "
            f"{fmt(run['idle_cpu_s'])} | {fmt(run['idle_cpu_pct'], 3)} | "
            f"{fmt(run['receiver_cpu_s'])} | {fmt(run['receiver_peak_rss_mib'], 1)} | "
            f"{run['loadavg_start']} |"
        )
    print()
    metrics = [
        ("wall time, s", "wall_s", 2),
        ("lines/s", "lines_per_s", 0),
        ("CPU-s (utime+stime) at catch-up", "cpu_s", 2),
        ("CPU-s per GB", "cpu_s_per_gb", 2),
        ("peak RSS (VmHWM), MiB", "peak_rss_mib", 1),
        (f"idle CPU-s over {first['idle_s']:g} s", "idle_cpu_s", 2),
        ("idle CPU, % of one core", "idle_cpu_pct", 3),
        ("receiver CPU-s (collector / line counter)", "receiver_cpu_s", 2),
        ("receiver peak RSS, MiB", "receiver_peak_rss_mib", 1),
    ]
    print(f"Medians ({len(agent)} Afterglow runs, {len(rsys)} rsyslog runs):")
    print()
    print("| metric | afterglow-agent | rsyslogd | ratio (Afterglow / rsyslog) |")
    print("|---|---:|---:|---:|")
    medians = {}
    for label, key, digits in metrics:
        a, r = med(agent, key), med(rsys, key)
        medians[key] = (a, r)
        ratio = f"{a / r:.3f}" if a is not None and r else "–"
        print(f"| {label} | {fmt(a, digits)} | {fmt(r, digits)} | {ratio} |")
    print()
    a_cpu, r_cpu = medians["cpu_s_per_gb"]
    a_rss, _ = medians["peak_rss_mib"]
    a_idle, _ = medians["idle_cpu_pct"]
    print("Targets:")
    print()
    print("| target | measured (medians) | met? |")
    print("|---|---|---|")
    if a_cpu is not None and r_cpu:
        ratio = a_cpu / r_cpu
        print(
            f"| agent CPU-s/GB ≤ 1/5 of rsyslog's | {a_cpu:.2f} / {r_cpu:.2f} = {ratio:.3f} "
            f"(limit {TARGET_CPU_RATIO:.3f}) | {'yes' if ratio <= TARGET_CPU_RATIO else 'NO'} |"
        )
    if a_rss is not None:
        a_rss_mb = a_rss * 1.048576
        print(
            f"| agent peak RSS ≤ {TARGET_RSS_MB:g} MB | {a_rss:.1f} MiB = {a_rss_mb:.1f} MB "
            f"| {'yes' if a_rss_mb <= TARGET_RSS_MB + EPSILON else 'NO'} |"
        )
    if a_idle is not None:
        print(
            f"| agent idle CPU ≈ 0 (≤ {TARGET_IDLE_PCT:g} % of a core) | {a_idle:.3f} % of a core "
            f"| {'yes' if a_idle <= TARGET_IDLE_PCT + EPSILON else 'NO'} |"
        )
    bad = [run for run in runs if not run.get("complete", True)]
    if bad:
        print()
        print(f"WARNING: {len(bad)} run(s) did not deliver everything: {bad}")


if __name__ == "__main__":
    main()
