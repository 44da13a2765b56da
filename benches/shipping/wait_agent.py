#!/usr/bin/env python3
"""Waits until the agent has shipped the whole corpus and every record is searchable.

Usage: wait_agent.py --metrics URL --search URL --lines N --files F --marker WORD
                     --pid PID [--timeout S] [--interval S]

Done means, at one poll:
1. the agent's `afterglow_agent_lines_read_total` equals the corpus's line count N,
2. its `afterglow_agent_unacked_batches` gauge is 0 (everything sent was acked; the collector
   acks a batch once it is in its WAL; condition 3 checks it is searchable), and
3. the collector's search API finds the end marker of every one of the F files (the marker is
   the last line of each file, so its record is the last one the agent sends for that file).

The agent's /metrics is polled every --interval seconds (cheap); the search API only once the
first two hold. Prints one JSON object: the Unix time of the poll that saw it done, and the
agent's counters then. Exits 1 on timeout or when the agent process is gone.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import markers_found, metrics, poll  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--search", required=True)
    parser.add_argument("--lines", type=int, required=True)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--marker", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()
    for last in poll(lambda: metrics(args.metrics), args.pid, "agent", args.timeout, args.interval):
        lines = int(last.get("afterglow_agent_lines_read_total", 0))
        unacked = int(last.get("afterglow_agent_unacked_batches", -1))
        if lines > args.lines:
            print(f"agent read {lines} lines, more than the corpus's {args.lines}", file=sys.stderr)
            sys.exit(1)
        if lines == args.lines and unacked == 0:
            found = markers_found(args.search, args.marker)
            if found == args.files:
                print(
                    json.dumps(
                        {
                            "t_done": time.time(),
                            "lines_read": lines,
                            "bytes_read": int(last.get("afterglow_agent_bytes_read_total", 0)),
                            "records_sent": int(last.get("afterglow_agent_records_sent_total", 0)),
                            "batches_acked": int(last.get("afterglow_agent_batches_acked_total", 0)),
                            "markers_found": found,
                        }
                    )
                )
                return

if __name__ == "__main__":
    main()
