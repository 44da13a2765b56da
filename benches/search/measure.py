#!/usr/bin/env python3
"""Times the search benchmark's queries on a collector and their raw-file counterparts.

Usage: measure.py --http HOST:PORT --corpus DIR [--runs 20] [--raw-runs 20] > results.json

The corpus is make_corpus.py's cluster layout (its manifest.json gives the days, the rare
word and the planted counts). Every query runs over the corpus's whole range, [00:00 UTC of
its first day, 00:00 UTC of the day after its last). Records without a header (task print()
lines) take the time of the record before them, so they fall inside it too (the histogram's
total counts them; the raw header count does not).

Each case is one collector request (keep-alive HTTP/1.1, the answer read whole) and one raw
command over the corpus files (its output read whole through a pipe: rg treats a stdout of
/dev/null as --quiet and would stop at the first match). One untimed warm-up of each, then
RUNS rounds, each timing the collector request then the raw command (the raw one only for
the first RAW_RUNS rounds). Reported per side: median and p99 (nearest rank: the largest of
20 runs) wall milliseconds, plus what each side found, so that the write-up can compare them.

Prints one JSON object: the range, the cases, and the collector's counts used as checks.
"""

import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import date, datetime, timedelta, timezone

PHRASE = "killed by signal"
NANNY_QUERY = "level:ERROR AND logger:distributed.nanny"
HEADER_REGEX = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - "


class Collector:
    def __init__(self, address):
        self.address = address
        host = urllib.parse.urlsplit(address).netloc or address  # "http://host:port" or "host:port"
        self.connection = http.client.HTTPConnection(host, timeout=120)

    def get(self, path, params):
        url = f"{path}?{urllib.parse.urlencode(params)}"
        self.connection.request("GET", url)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"GET {url}: {response.status} {body[:300]!r}")
        return body


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(times_ms):
    return {
        "p50_ms": statistics.median(times_ms),
        "p99_ms": percentile(times_ms, 0.99),
        "min_ms": min(times_ms),
        "runs": len(times_ms),
    }


def dask_ts(rfc3339):
    """`2026-11-26T23:58:06.969000Z` → `2026-11-26 23:58:06,969` (the corpus's form)."""
    moment = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"


def run_raw(argv):
    completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if completed.returncode not in (0, 1):  # rg: 1 = no match
        sys.exit(f"{argv}: exit {completed.returncode}: {completed.stderr[:300]!r}")
    return completed.stdout


def rg_count_total(output):
    """Sum of `rg -c` over several files: lines `path:count`."""
    return sum(int(line.rpartition(b":")[2]) for line in output.splitlines() if line)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--raw-runs", type=int, default=20)
    args = parser.parse_args()
    manifest = json.load(open(os.path.join(args.corpus, "manifest.json")))
    first = date.fromisoformat(manifest["start_date"])
    start = f"{first.isoformat()}T00:00:00Z"
    end = f"{(first + timedelta(days=manifest['days'])).isoformat()}T00:00:00Z"
    files = sorted(
        os.path.join(args.corpus, f["name"]) for f in manifest["files"]
    )
    rare = manifest["rare_word"]
    collector = Collector(args.http)
    search = "/api/v1/logs/search"
    in_range = {"start": start, "end": end}

    def count_of(query):
        body = collector.get(search, {"q": query, "limit": "1", "count": "true", **in_range})
        return json.loads(body)["count"]

    def newest(query):
        return {"q": query, "order": "desc", "limit": "100", **in_range}

    # The context case is around the newest rare hit; rg finds that record by its whole
    # header line, which the timestamp makes unique in the corpus (checked below).
    rare_hits = json.loads(collector.get(search, newest(rare)))["hits"]
    if not rare_hits:
        sys.exit(f"no hit for the rare word {rare!r}")
    anchor = rare_hits[0]
    anchor_line = f"{dask_ts(anchor['ts'])} - {anchor['logger']} - {anchor['level']} - {anchor['message']}"

    cases = [
        {
            "name": "rare term, newest 100",
            "path": search,
            "params": newest(rare),
            "raw": ["rg", "-c", rare, *files],
            "raw_kind": "rg_count",
            "collector_count": count_of(rare),
        },
        {
            "name": "phrase, newest 100",
            "path": search,
            "params": newest(f'"{PHRASE}"'),
            "raw": ["rg", "-c", PHRASE, *files],
            "raw_kind": "rg_count",
            "collector_count": count_of(f'"{PHRASE}"'),
        },
        {
            "name": "ERROR of distributed.nanny, newest 100",
            "path": search,
            "params": newest(NANNY_QUERY),
            "raw": ["rg", "-c", "-F", " - distributed.nanny - ERROR - ", *files],
            "raw_kind": "rg_count",
            "collector_count": count_of(NANNY_QUERY),
        },
        {
            "name": "histogram of everything, 7 days, 1h step",
            "path": "/api/v1/logs/histogram",
            "params": {"q": "*", "step": "1h", **in_range},
            "raw": ["rg", "-c", HEADER_REGEX, *files],
            "raw_kind": "rg_count",
        },
        {
            "name": "context, 20 before and after",
            "path": "/api/v1/logs/context",
            "params": {"stream": anchor["stream"], "seq": str(anchor["seq"]), "before": "20", "after": "20"},
            "raw": ["rg", "-B20", "-A20", "-F", anchor_line, *files],
            "raw_label": "rg -B20 -A20 -F '<the hit's whole first line>' <corpus files>",
            "raw_kind": "rg_lines",
        },
        {
            "name": "everything, newest 100",
            "path": search,
            "params": newest("*"),
            # No search is needed: each file is in time order, so the newest 100 lines of
            # the corpus are among the last 100 of each file.
            "raw": ["sh", "-c", 'tail -q -n 100 "$@" | LC_ALL=C sort | tail -n 100', "sh", *files],
            "raw_label": "tail -q -n 100 <corpus files> | LC_ALL=C sort | tail -n 100",
            "raw_kind": "lines",
        },
    ]

    for case in cases:
        if "raw_label" not in case:
            quoted = [f"'{arg}'" if " " in arg else arg for arg in case["raw"][: -len(files)]]
            case["raw_label"] = " ".join(quoted) + " <corpus files>"
        print(f"{case['name']}: warming up", file=sys.stderr)
        body = collector.get(case["path"], case["params"])
        answer = json.loads(body)
        output = run_raw(case["raw"])
        if case["path"] == search:
            case["collector_hits"] = len(answer["hits"])
        elif "buckets" in answer:
            case["collector_buckets"] = len(answer["buckets"])
            case["collector_count"] = sum(bucket["total"] for bucket in answer["buckets"])
        else:
            case["collector_hits"] = len(answer["before"]) + 1 + len(answer["after"])
        if case["raw_kind"] == "rg_count":
            case["raw_count"] = rg_count_total(output)
        else:
            case["raw_lines"] = len(output.splitlines())
        if case["name"].startswith("context"):
            matches = rg_count_total(run_raw(["rg", "-c", "-F", anchor_line, *files]))
            if matches != 1:
                sys.exit(f"the context anchor {anchor_line!r} is on {matches} lines, not 1")
        collector_ms, raw_ms = [], []
        for round_index in range(args.runs):
            t0 = time.perf_counter()
            collector.get(case["path"], case["params"])
            collector_ms.append((time.perf_counter() - t0) * 1000)
            if round_index < args.raw_runs:
                t0 = time.perf_counter()
                run_raw(case["raw"])
                raw_ms.append((time.perf_counter() - t0) * 1000)
        case["collector"] = summary(collector_ms)
        case["raw_timing"] = summary(raw_ms) if raw_ms else None
        print(
            f"{case['name']}: collector p50 {case['collector']['p50_ms']:.1f} ms, "
            f"raw p50 {case['raw_timing']['p50_ms'] if raw_ms else float('nan'):.1f} ms",
            file=sys.stderr,
        )
        del case["raw"]
    print(json.dumps({
        "start": start,
        "end": end,
        "rare_word": rare,
        "phrase": PHRASE,
        "nanny_query": NANNY_QUERY,
        "context_anchor": anchor_line,
        "cases": cases,
    }, indent=1))


if __name__ == "__main__":
    main()
