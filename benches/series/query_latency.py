"""query_range latency, ours beside Prometheus, over the day benches/series/run.sh simulated.

Each query (a Dask cluster dashboard's key series over 24 h at a 60 s step) is sent once to
warm caches (its time is reported as "first_ms"), then RUNS times to each server, alternating
between them, each on its own keep-alive HTTP connection. Wall time per request from the
first byte sent to the last byte read. Prints JSON: per query, the first, median and p99 in ms
of each side, the ratio of the medians, and the number of series and points each answered
(which must agree).

usage: query_latency.py OURS_URL PROMETHEUS_URL START END RUNS
"""

import http.client
import json
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
    result = answer["data"]["result"]
    return elapsed_ms, len(result), sum(len(series["values"]) for series in result)


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
        for side, connection in sides.items():
            first[side], series, points = query_range(connection, query, start, end)
            shape[side] = {"series": series, "points": points}
        for _ in range(runs):
            for side, connection in sides.items():
                elapsed, _, _ = query_range(connection, query, start, end)
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
