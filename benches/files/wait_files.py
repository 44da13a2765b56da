#!/usr/bin/env python3
"""Waits until an agent has read, sent and had acknowledged one record per file.

Usage: wait_files.py --metrics URL --files N --pid PID [--timeout S] [--interval S]

Done means, at one poll of the agent's /metrics: `afterglow_agent_lines_read_total` and
`afterglow_agent_records_sent_total` have both reached N (one one-line file is one line and one
record) and `afterglow_agent_unacked_batches` is 0 (the collector acknowledged every batch).
Also tracks the highest `afterglow_agent_files_open` seen (descriptors of log files). Prints one
JSON object: the Unix time of the poll that saw it done, and what it saw. Exits 1 on timeout or
when the agent process is gone.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import metrics, poll  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    most_open = 0
    for last in poll(lambda: metrics(args.metrics), args.pid, "agent", args.timeout, args.interval):
        most_open = max(most_open, int(last.get("afterglow_agent_files_open", 0)))
        lines = int(last.get("afterglow_agent_lines_read_total", 0))
        sent = int(last.get("afterglow_agent_records_sent_total", 0))
        unacked = int(last.get("afterglow_agent_unacked_batches", -1))
        if lines >= args.files and sent >= args.files and unacked == 0:
            print(
                json.dumps(
                    {
                        "t_done": time.time(),
                        "lines_read": lines,
                        "records_sent": sent,
                        "most_files_open": most_open,
                    }
                )
            )
            return

if __name__ == "__main__":
    main()
