"""Python peer for the `assemble_dask_fixture_logs` benchmark (benches/benches/parse.rs).

Builds the same input as `afterglow_benches::dask_fixture_input`: scheduler.log, worker-1.log and
worker-2.log from tests/fixtures/dask/logs concatenated, the concatenation repeated whole until it
is at least 1 MiB. Then parses it the way Python users usually do: one compiled `re` per line; a
line that matches starts a record, any other line is appended to the record before it (or starts
a header-less record if there is none yet). Timestamps stay strings; nothing is converted.

Prints the median time of --iterations timed runs (after --warmup untimed ones) and the throughput
in MB/s (10^6 bytes per second, the same unit divan prints by default).

Usage: python3 benches/peer/python_dask_parse.py [--iterations N] [--warmup N]
"""

import argparse
import math
import re
import statistics
import time
from pathlib import Path

LOGS = Path(__file__).resolve().parent.parent.parent / "tests" / "fixtures" / "dask" / "logs"
FIXTURES = ["scheduler.log", "worker-1.log", "worker-2.log"]
MIN_BYTES = 1 << 20

HEADER = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (\S+) - ([A-Z]+) - (.*)$")


def build_input() -> str:
    once = "".join((LOGS / name).read_bytes().decode("utf-8") for name in FIXTURES)
    copies = max(1, math.ceil(MIN_BYTES / len(once.encode("utf-8"))))
    return once * copies


def parse(text: str) -> list:
    records = []
    current = None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    match = HEADER.match
    for line in lines:
        m = match(line)
        if m is not None:
            current = [m.group(1), m.group(2), m.group(3), [m.group(4)]]
            records.append(current)
        elif current is not None:
            current[3].append(line)
        else:
            current = ["", "", "", [line]]
            records.append(current)
    for record in records:
        record[3] = "\n".join(record[3])
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    text = build_input()
    size = len(text.encode("utf-8"))
    for _ in range(args.warmup):
        parse(text)
    times = []
    records = 0
    for _ in range(args.iterations):
        start = time.perf_counter()
        records = len(parse(text))
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"python_dask_parse: input {size} bytes, {records} records, "
        f"{args.iterations} iterations: median {median * 1e3:.3f} ms, "
        f"fastest {min(times) * 1e3:.3f} ms, median throughput {size / median / 1e6:.1f} MB/s"
    )


if __name__ == "__main__":
    main()
