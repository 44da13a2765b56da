"""query_range latency, ours beside Prometheus, over the day benches/series/run.sh simulated.

Each query (a Dask cluster dashboard's key series over 24 h at a 60 s step) is sent once to
warm caches (its time is reported as "first_ms"), then RUNS times to each server, alternating
between them, each on its own keep-alive HTTP connection. Wall time per request from the
first byte sent to the last byte read. Prints JSON: per query, the first, median and p99 in ms
of each side, the ratio of the medians, and the number of series and points each answered.
The first answers must agree (same series and timestamps, values equal to 1e-9 relative; for
topk, the same values kept at each step), or the run stops.

usage: query_latency.py OURS_URL PROMETHEUS_URL START END RUNS
"""

import http.client
import json
import math
import statistics
import sys
import time
import urllib.parse

QUERIES = [
    "sum by (state) (dask_scheduler_tasks)",
    "dask_scheduler_workers",
    "sum by (type) (dask_worker_memory_bytes)",
    "sum(rate(dask_worker_tick_count_total[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(dask_worker_task_duration_seconds_bucket[5m])))",
    "topk(5, max_over_time(dask_worker_memory_bytes{type=\"managed\"}[10m]))",
]


def connect(url):
    parsed = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)


def query_range(connection, query, start, end):
    path = "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": query, "start": start, "end": end, "step": "60"}
    )
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed_ms = (time.perf_counter() - started) * 1000
    answer = json.loads(body)
    if answer.get("status") != "success":
        raise SystemExit(f"{query!r} failed: {answer}")
    return elapsed_ms, answer["data"]["result"]


def differences(query, ours, theirs):
    """Where two query_range results differ: labels, timestamps, or values beyond float
    rounding (relative 1e-9)."""
    keyed = [
        {tuple(sorted(s["metric"].items())): s["values"] for s in result}
        for result in (ours, theirs)
    ]
    if keyed[0].keys() != keyed[1].keys() and not query.startswith(("topk", "bottomk")):
        return [f"{query}: series differ: {sorted(keyed[0].keys() ^ keyed[1].keys())[:3]}"]
    found = []
    if query.startswith(("topk", "bottomk")):
        # Which of several equal values are kept depends on the heap moves, which changed
        # after Prometheus 2.42 (see collector/src/promql/top_k.rs): compare the kept values.
        kept = [{}, {}]
        for side, result in zip(kept, (ours, theirs)):
            for series in result:
                for t, v in series["values"]:
                    side.setdefault(t, []).append(float(v))
        for t in sorted(kept[0].keys() | kept[1].keys()):
            if sorted(kept[0].get(t, [])) != sorted(kept[1].get(t, [])):
                found.append(f"{query} at {t}: ours keep {sorted(kept[0].get(t, []))}, Prometheus {sorted(kept[1].get(t, []))}")
        return found
    for labels, values in keyed[0].items():
        other = keyed[1][labels]
        if [t for t, _ in values] != [t for t, _ in other]:
            found.append(f"{query} {labels}: timestamps differ")
            continue
        for (t, a), (_, b) in zip(values, other):
            a, b = float(a), float(b)
            same = a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
            if not same:
                found.append(f"{query} {labels} at {t}: ours {a}, Prometheus {b}")
                break
    return found


def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main():
    ours_url, prometheus_url, start, end, runs = sys.argv[1:6]
    runs = int(runs)
    sides = {"ours": connect(ours_url), "prometheus": connect(prometheus_url)}
    results = []
    for query in QUERIES:
        times = {side: [] for side in sides}
        shape = {}
        first = {}
        answers = {}
        for side, connection in sides.items():
            first[side], answers[side] = query_range(connection, query, start, end)
            shape[side] = {
                "series": len(answers[side]),
                "points": sum(len(series["values"]) for series in answers[side]),
            }
        mismatches = differences(query, answers["ours"], answers["prometheus"])
        if mismatches:
            raise SystemExit("the answers differ:\n" + "\n".join(mismatches[:10]))
        for _ in range(runs):
            for side, connection in sides.items():
                elapsed, _ = query_range(connection, query, start, end)
                times[side].append(elapsed)
        row = {"query": query, "shape": shape}
        for side in sides:
            row[side] = {
                "first_ms": round(first[side], 2),
                "p50_ms": round(statistics.median(times[side]), 2),
                "p99_ms": round(p99(times[side]), 2),
            }
        row["ratio_p50"] = round(row["ours"]["p50_ms"] / row["prometheus"]["p50_ms"], 3)
        results.append(row)
    print(json.dumps(results, indent=2))


main()
