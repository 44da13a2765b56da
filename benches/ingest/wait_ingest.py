#!/usr/bin/env python3
"""Waits until the last record of every corpus file is searchable on the collector.

Usage: wait_ingest.py --search URL --marker WORD --files F --lines N --collector-pid PID
                      --metrics URL [--metrics URL ...] [--timeout S] [--interval S]

Done means, at one poll, that the collector's search API finds the end marker of all F files.
The marker is the last line of each file, so its record is the last one of its stream, and a
collector commits the records of one stream in order: when it is found, all are searchable.
Until the agents (their /metrics, summed) have read all N lines, only their metrics are
polled, so that searches cost the measured collector nothing while records are still coming.

At the poll that sees it done, reads the collector's CPU time (utime + stime of
/proc/PID/stat, all threads) and prints one JSON object: that moment (Unix time), the CPU
seconds, and the agents' counters summed. Exits 1 on timeout or when the collector is gone.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import markers_found, metrics, poll  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNTERS = [
    "afterglow_agent_lines_read_total",
    "afterglow_agent_bytes_read_total",
    "afterglow_agent_records_sent_total",
    "afterglow_agent_batches_acked_total",
    "afterglow_agent_reconnects_total",
]


def summed(urls):
    totals = dict.fromkeys(COUNTERS, 0)
    for url in urls:
        values = metrics(url)
        for name in COUNTERS:
            totals[name] += int(values.get(name, 0))
    return totals


def cpu_seconds(pid):
    """utime + stime of /proc/PID/stat (fields 14 and 15), all threads."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--search", required=True)
    parser.add_argument("--marker", required=True)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--lines", type=int, required=True)
    parser.add_argument("--collector-pid", type=int, required=True)
    parser.add_argument("--metrics", action="append", required=True)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    readings = poll(
        lambda: summed(args.metrics), args.collector_pid, "collector", args.timeout, args.interval
    )
    for last in readings:
        lines = last["afterglow_agent_lines_read_total"]
        if lines > args.lines:
            print(f"agents read {lines} lines, more than the corpus's {args.lines}", file=sys.stderr)
            sys.exit(1)
        if lines == args.lines and markers_found(args.search, args.marker) == args.files:
            now = time.time()
            cpu = cpu_seconds(args.collector_pid)
            print(json.dumps({"t_done": now, "collector_cpu_s": cpu, "agents": last}))
            return

if __name__ == "__main__":
    main()
