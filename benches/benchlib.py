"""Helpers shared by the benchmark scripts in benches/*/: polling a process until a condition
holds, reading an agent's /metrics, finding end markers through the collector's search API,
and formatting medians."""

import json
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request


def alive(pid):
    """Whether process PID is running (a zombie, exited but not reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def poll(read, pid, what, timeout, interval):
    """Yields `read()` every `interval` seconds, for the caller to stop at the reading it waits
    for. Exits the script with status 1 when `timeout` seconds pass or process `pid` (named
    `what`) is gone, printing the last reading. A reading that fails with OSError (the endpoint
    is not up yet) is retried."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not alive(pid):
            print(f"{what} (pid {pid}) exited; last reading: {last}", file=sys.stderr)
            sys.exit(1)
        try:
            last = read()
        except OSError as error:
            print(f"not readable yet: {error}", file=sys.stderr)
        else:
            yield last
        time.sleep(interval)
    print(f"timed out; last reading: {last}", file=sys.stderr)
    sys.exit(1)


def metrics(url):
    values = {}
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            values[name.split("{")[0]] = float(value)
    return values


def markers_found(search_url, word):
    query = urllib.parse.urlencode({"q": word, "limit": "100"})
    with urllib.request.urlopen(f"{search_url}?{query}", timeout=30) as response:
        hits = json.load(response)["hits"]
    return len({hit["source"] for hit in hits if word in hit["message"]})


def fmt(value, digits=2):
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def med(runs, key):
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None
