#!/usr/bin/env python3
"""Appends Dask lines to a file the agent follows and times each line until it is searchable
and until the live tail shows it.

Usage: measure.py --http HOST:PORT --file PATH [--lines 120] [--interval-ms 200]
                  [--poll-ms 10] [--label L] [--run N] [--load X] > one JSON line

A thread holds `GET /api/v1/logs/tail?q=<run marker>` open and notes when each line's event
arrives; another polls `GET /api/v1/logs/search?q=<run marker>` every POLL_MS and notes when
each line is first among the hits. The main thread writes one line per INTERVAL_MS with one
`write` and notes the time the write returned. A first line, not counted, shows that the
agent follows the file before the clock starts. Times are time.monotonic(); the latencies
are (seen - written) in milliseconds. Prints one JSON object per run.
"""

import argparse
import http.client
import json
import math
import os
import statistics
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

PATIENCE_S = 30


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def dask_line(number, marker):
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"
    return f"{stamp} - distributed.worker - INFO - {marker} line {number:05d} done\n"


def number_of(message, marker):
    prefix = f"{marker} line "
    at = message.find(prefix)
    if at < 0:
        return None
    return int(message[at + len(prefix):at + len(prefix) + 5])


def follow_tail(host, marker, seen, ready, stop):
    connection = http.client.HTTPConnection(host, timeout=PATIENCE_S)
    query = urllib.parse.urlencode({"q": marker})
    connection.request("GET", f"/api/v1/logs/tail?{query}", headers={"Accept": "text/event-stream"})
    response = connection.getresponse()
    if response.status != 200:
        sys.exit(f"tail answered {response.status}: {response.read()[:300]!r}")
    ready.set()
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            return
        if line.startswith(b"data:"):
            at = time.monotonic()
            hit = json.loads(line[5:])
            number = number_of(hit.get("message", ""), marker)
            if number is not None:
                seen.setdefault(number, at)


def poll_search(host, marker, seen, poll_s, stop):
    connection = http.client.HTTPConnection(host, timeout=PATIENCE_S)
    query = urllib.parse.urlencode({"q": marker, "limit": "1000", "order": "desc"})
    while not stop.is_set():
        connection.request("GET", f"/api/v1/logs/search?{query}")
        response = connection.getresponse()
        body = response.read()
        at = time.monotonic()
        if response.status != 200:
            sys.exit(f"search answered {response.status}: {body[:300]!r}")
        for hit in json.loads(body)["hits"]:
            number = number_of(hit["message"], marker)
            if number is not None:
                seen.setdefault(number, at)
        time.sleep(poll_s)


def wait_until(condition, what):
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {what}")
        time.sleep(0.01)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--lines", type=int, default=120)
    parser.add_argument("--interval-ms", type=int, default=200)
    parser.add_argument("--poll-ms", type=int, default=10)
    parser.add_argument("--label", default="working-tree")
    parser.add_argument("--run", type=int, default=1)
    parser.add_argument("--load", default="")
    args = parser.parse_args()
    # "http://host:port" as the collector prints it, or "host:port".
    args.http = urllib.parse.urlsplit(args.http).netloc or args.http

    marker = f"latencyprobe{os.getpid()}"
    tail_seen, search_seen, written = {}, {}, {}
    stop, tail_ready = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=follow_tail, args=(args.http, marker, tail_seen, tail_ready, stop), daemon=True),
        threading.Thread(target=poll_search, args=(args.http, marker, search_seen, args.poll_ms / 1000, stop), daemon=True),
    ]
    threads[0].start()
    tail_ready.wait(PATIENCE_S)
    threads[1].start()

    descriptor = os.open(args.file, os.O_WRONLY | os.O_APPEND)
    # Line 0 is not counted: it shows that the agent follows the file.
    os.write(descriptor, dask_line(0, marker).encode())
    wait_until(lambda: 0 in search_seen and 0 in tail_seen, "the first line")
    next_at = time.monotonic()
    for number in range(1, args.lines + 1):
        next_at += args.interval_ms / 1000
        time.sleep(max(0.0, next_at - time.monotonic()))
        os.write(descriptor, dask_line(number, marker).encode())
        written[number] = time.monotonic()
    os.close(descriptor)
    wait_until(lambda: len(search_seen) > args.lines and len(tail_seen) > args.lines, "every line")
    stop.set()

    numbers = range(1, args.lines + 1)
    searchable = [(search_seen[n] - written[n]) * 1000 for n in numbers]
    tailed = [(tail_seen[n] - written[n]) * 1000 for n in numbers]
    result = {
        "label": args.label,
        "run": args.run,
        "lines": args.lines,
        "interval_ms": args.interval_ms,
        "poll_ms": args.poll_ms,
        "loadavg_start": args.load,
        "searchable_p50_ms": statistics.median(searchable),
        "searchable_p99_ms": percentile(searchable, 0.99),
        "searchable_max_ms": max(searchable),
        "tail_p50_ms": statistics.median(tailed),
        "tail_p99_ms": percentile(tailed, 0.99),
        "tail_max_ms": max(tailed),
    }
    print(json.dumps(result))
    print(
        f"{args.label} run {args.run}: searchable p50 {result['searchable_p50_ms']:.0f} ms, "
        f"p99 {result['searchable_p99_ms']:.0f} ms; tail p50 {result['tail_p50_ms']:.0f} ms, "
        f"p99 {result['tail_p99_ms']:.0f} ms",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
