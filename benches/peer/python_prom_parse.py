#!/usr/bin/env python3
"""The Python peer of benches/benches/prom_parse.rs: the official prometheus_client parser
(`text_string_to_metric_families`) over the same pages, fully consumed (every family and
sample built). Prints the median MB/s (10^6 bytes/s) per page over timed passes.

Usage: python_prom_parse.py [--passes N]   (needs `pip install prometheus_client`)
"""

import argparse
import os
import statistics
import time

from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PAGES = {
    "dask_worker_load": "tests/fixtures/dask/metrics/worker-1-metrics-t2-load.prom",
    "dask_scheduler_load": "tests/fixtures/dask/metrics/scheduler-metrics-t2-load.prom",
    "node_exporter": "tests/fixtures/node_exporter/metrics.prom",
}


def parse_all(text):
    samples = 0
    for family in text_string_to_metric_families(text):
        samples += len(family.samples)
    return samples


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=200)
    args = parser.parse_args()
    for name, path in PAGES.items():
        with open(os.path.join(ROOT, path), encoding="utf-8") as page:
            text = page.read()
        for _ in range(20):
            parse_all(text)
        times = []
        for _ in range(args.passes):
            start = time.perf_counter()
            parse_all(text)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        size = len(text.encode())
        print(f"{name}: {size} bytes, median {median * 1e6:.1f} µs, {size / median / 1e6:.1f} MB/s")


if __name__ == "__main__":
    main()
