#!/usr/bin/env python3
"""Writes the shipping benchmark's corpus: 8 Dask log files built from the real fixture logs.

Usage: make_corpus.py OUT_DIR [--mb 1000]
       make_corpus.py OUT_DIR --nodes 50 --days 7 --lines 20000000 [--start-date 2026-11-20]
                      [--rare WORD:COUNT] [--nanny-errors COUNT]

The output is deterministic: the same options always give byte-identical files. Without
--nodes the output is the 8-file corpus described below (the shipping and ingest benchmarks');
--nodes selects the cluster layout described at the end.

- Templates: tests/fixtures/dask/logs/scheduler.log, worker-1.log and worker-2.log (Dask's
  default format, `%(asctime)s - %(name)s - %(levelname)s - %(message)s`). They hold tracebacks
  (one chained), a `Compute Failed` block, task print() lines and bare warnings.
- Files: scheduler.log (from scheduler.log) and worker-1.log … worker-7.log (odd numbers from
  worker-1.log, even from worker-2.log). Each is --mb / 8 megabytes (10^6 bytes) at most.
- Each template is cut into blocks: a header line with every line up to the next header line
  (the traceback, the Compute Failed block, print() lines, blank lines, exactly as they appear).
  Blocks are written in the template's order, the template repeated whole, until the next
  block would not fit.
- Timestamps: every header line gets a new one, strictly increasing within a file. File i
  (0-7) starts at 2026-11-27 08:00:00 UTC + 11·i ms and advances by 1 to 9 ms per header line
  (a fixed cycle), so the files interleave like the nodes of one cluster and stay within one
  UTC day. The distinct start times also make every file's first line, hence its content,
  unique: files with the same first line and prefix would look to the agent like copies of
  one another (copytruncate) and be read once.
- The last line of every file is a unique header line, the end marker:
  `… - afterglow.bench - INFO - corpus end marker benchendmarker file=<name> lines=<n>`.
- A manifest, manifest.json, records per file and in total: bytes, lines, header lines
  (= records for a reader that starts a record at each header line and joins everything else
  to it, as rsyslog's imfile with startmsg.regex does) and empty lines (imfile skips them in
  line mode).

Cluster layout (--nodes N, for the search benchmark): one file per node spanning --days UTC
days from --start-date: node-01-scheduler.log (from scheduler.log), node-NN-worker.log for
the others (odd NN from worker-1.log, even from worker-2.log), each with --lines / N lines
(and --mb / N megabytes) at most. Header timestamps follow the same step cycle, stretched so
that each file's headers spread evenly from 00:00:00 + 11·i ms of the first day to the last
minute of the last one. Planted records, inserted between template blocks at evenly spaced
places and counted in the manifest:
- --rare WORD:COUNT: COUNT records `… - distributed.worker - INFO - Run out-of-band function
  'WORD'` (Dask's message for client.run), the plants spread over the nodes (plant k on file
  7k mod N, or a stride coprime with N) and, within a file, evenly over its days. WORD should
  occur nowhere else.
- --nanny-errors COUNT: COUNT records `… - distributed.nanny - ERROR - Failed to restart worker
  after its process exited` with a traceback, as distributed/nanny.py logs it, on worker files
  only. The fixtures hold no ERROR record of distributed.nanny, so these are synthetic.
"""

import argparse
import datetime
import json
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "dask", "logs")

HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ")
TS_LEN = len("2026-11-27 13:56:41,714")
DATE = "2026-11-27"
START_MS = 8 * 3600 * 1000  # 08:00:00,000 UTC
STEPS_MS = [3, 1, 7, 2, 9, 4, 1, 5, 8, 2, 6, 3]  # cycled; mean 4.25 ms
MARKER_WORD = "benchendmarker"
FILES = [
    ("scheduler.log", "scheduler.log"),
    ("worker-1.log", "worker-1.log"),
    ("worker-2.log", "worker-2.log"),
    ("worker-3.log", "worker-1.log"),
    ("worker-4.log", "worker-2.log"),
    ("worker-5.log", "worker-1.log"),
    ("worker-6.log", "worker-2.log"),
    ("worker-7.log", "worker-1.log"),
]


def blocks_of(template_path):
    """The template as blocks: (header rest after the timestamp, continuation text, lines)."""
    with open(template_path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    blocks = []
    for line in lines:
        if HEADER.match(line):
            blocks.append([line[TS_LEN:] + "\n", []])
        elif blocks:
            blocks[-1][1].append(line + "\n")
        else:
            sys.exit(f"{template_path}: first line has no Dask header")
    result = []
    for rest, cont in blocks:
        cont = "".join(cont)
        nbytes = TS_LEN + len(rest.encode()) + len(cont.encode())
        empty = sum(1 for line in cont.split("\n")[:-1] if not line)
        result.append((rest, cont, 1 + cont.count("\n"), nbytes, empty))
    return result


def timestamp(ms, dates=(DATE,)):
    """The Dask timestamp `ms` milliseconds after 00:00 UTC of dates[0]; dates are consecutive."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    day, hours = divmod(hours, 24)
    if day >= len(dates):
        sys.exit("corpus too large: timestamps would leave the day")
    return f"{dates[day]} {hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


RARE_TEMPLATE = " - distributed.worker - INFO - Run out-of-band function '{word}'\n"
NANNY_ERROR_REST = " - distributed.nanny - ERROR - Failed to restart worker after its process exited\n"
NANNY_ERROR_CONT = (
    "Traceback (most recent call last):\n"
    '  File "/opt/dask-env/lib/python3.11/site-packages/distributed/nanny.py", line 587, in _on_worker_exit\n'
    "    await self.instantiate()\n"
    '  File "/opt/dask-env/lib/python3.11/site-packages/distributed/nanny.py", line 452, in instantiate\n'
    "    result = await self.process.start()\n"
    "             ^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/opt/dask-env/lib/python3.11/site-packages/distributed/nanny.py", line 752, in start\n'
    "    await self.process.start()\n"
    "TimeoutError: worker process did not start within 60 s\n"
)


def planted_block(rest, cont):
    """A planted record in the shape blocks_of gives."""
    nbytes = TS_LEN + len(rest.encode()) + len(cont.encode())
    return (rest, cont, 1 + cont.count("\n"), nbytes, 0)


def fitting_blocks(blocks, limit_bytes, limit_lines, reserve_bytes, reserve_lines):
    """How many template blocks (the template repeated whole) fit in a file, with room kept
    for the end marker and the planted records."""
    size = lines = count = 0
    while True:
        for _, _, block_lines, text_len, _ in blocks:
            if (
                size + text_len + reserve_bytes > limit_bytes
                or lines + block_lines + reserve_lines > limit_lines
            ):
                if count == 0:
                    sys.exit("corpus too small to hold one block per file")
                return count
            size += text_len
            lines += block_lines
            count += 1


def write_file(path, name, index, blocks, limit_bytes, limit_lines=None, plants=(),
               dates=(DATE,), start_ms=START_MS, span_ms=None):
    """Writes one file. plants: (fraction of the file, planted block) pairs, each inserted
    before the first template block at or after that fraction. span_ms: stretch the step
    cycle so that the last header falls at most span_ms after the first."""
    marker_reserve = 200
    reserve_bytes = marker_reserve + sum(block[3] for _, block in plants)
    reserve_lines = 1 + sum(block[2] for _, block in plants)
    if limit_lines is None:
        limit_lines = float("inf")
    count = fitting_blocks(blocks, limit_bytes, limit_lines, reserve_bytes, reserve_lines)
    inserts = {}
    for fraction, block in sorted(plants, key=lambda plant: plant[0]):
        inserts.setdefault(min(count - 1, int(fraction * count)), []).append(block)
    # Header k is at base + cum_k · num // den, cum_k the sum of the first k steps: with
    # num = den = 1 this is the plain step cycle.
    num = den = 1
    if span_ms is not None:
        headers = count + len(plants) + 1
        den = sum(STEPS_MS[k % len(STEPS_MS)] for k in range(headers - 1))
        num = span_ms - 11 * index
        if num < den:
            sys.exit("corpus too large: headers would be less than 1 ms apart")
    base = start_ms + 11 * index
    cum = 0
    step = 0
    size = lines = headers = empty = planted = 0
    out = []
    out_bytes = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        written = 0
        while written < count:
            for block in blocks:
                if written == count:
                    break
                for rest, cont, block_lines, text_len, block_empty in (
                    inserts.get(written, []) + [block]
                ):
                    out.append(timestamp(base + cum * num // den, dates))
                    out.append(rest)
                    out.append(cont)
                    cum += STEPS_MS[step]
                    step = (step + 1) % len(STEPS_MS)
                    size += text_len
                    lines += block_lines
                    empty += block_empty
                    headers += 1
                    out_bytes += text_len
                planted += len(inserts.get(written, []))
                written += 1
                if out_bytes >= 1 << 22:
                    handle.write("".join(out))
                    out.clear()
                    out_bytes = 0
        lines += 1
        headers += 1
        marker = (
            f"{timestamp(base + cum * num // den, dates)} - afterglow.bench - INFO - corpus end marker "
            f"{MARKER_WORD} file={name} lines={lines}\n"
        )
        out.append(marker)
        size += len(marker.encode())
        handle.write("".join(out))
    return {
        "name": name,
        "bytes": size,
        "lines": lines,
        "header_lines": headers,
        "empty_lines": empty,
        "planted": planted,
        "first_ts": timestamp(base, dates),
        "last_ts": timestamp(base + cum * num // den, dates),
    }


def cluster_files(args, templates):
    """The --nodes layout: (file name, template, plants) per node."""
    nodes = args.nodes
    files = []
    for n in range(1, nodes + 1):
        if n == 1:
            files.append([f"node-{n:02d}-scheduler.log", "scheduler.log", []])
        else:
            template = "worker-1.log" if n % 2 else "worker-2.log"
            files.append([f"node-{n:02d}-worker.log", template, []])
    if args.rare:
        word, _, count = args.rare.partition(":")
        block = planted_block(RARE_TEMPLATE.format(word=word), "")
        spread(files, range(len(files)), int(count), block)
    if args.nanny_errors:
        workers = [i for i, (name, _, _) in enumerate(files) if "worker" in name]
        spread(files, workers, args.nanny_errors, planted_block(NANNY_ERROR_REST, NANNY_ERROR_CONT))
    return files


def spread(files, candidates, count, block):
    """Plant k goes to candidates[stride·k mod len], stride the first number from 7 on that
    is coprime with len (so every candidate gets plants); a file's plants are evenly spaced."""
    stride = 7
    while math.gcd(stride, len(candidates)) != 1:
        stride += 1
    per_file = {}
    for k in range(count):
        per_file.setdefault(candidates[(stride * k) % len(candidates)], []).append(k)
    for i, plants in per_file.items():
        for j in range(len(plants)):
            files[i][2].append(((j + 0.5) / len(plants), block))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--mb", type=int, default=None, help="total size, 10^6 bytes (default 1000)")
    parser.add_argument("--nodes", type=int, help="cluster layout: one file per node")
    parser.add_argument("--days", type=int, default=7, help="cluster layout: UTC days spanned")
    parser.add_argument("--start-date", default="2026-11-20", help="cluster layout: first day")
    parser.add_argument("--lines", type=int, help="cluster layout: total lines at most")
    parser.add_argument("--rare", help="cluster layout: plant WORD:COUNT records")
    parser.add_argument("--nanny-errors", type=int, default=0, help="cluster layout: plant COUNT")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    templates = {}

    def template_blocks(template):
        if template not in templates:
            templates[template] = blocks_of(os.path.join(FIXTURES, template))
        return templates[template]

    files = []
    extra = {}
    if args.nodes is None:
        if args.lines or args.rare or args.nanny_errors:
            sys.exit("--lines, --rare and --nanny-errors need --nodes")
        args.mb = 1000 if args.mb is None else args.mb
        limit = args.mb * 1_000_000 // len(FILES)
        for index, (name, template) in enumerate(FILES):
            files.append(
                write_file(
                    os.path.join(args.out_dir, name), name, index, template_blocks(template), limit
                )
            )
    else:
        if args.mb is None and args.lines is None:
            sys.exit("--nodes needs --lines or --mb")
        first = datetime.date.fromisoformat(args.start_date)
        dates = [(first + datetime.timedelta(days=d)).isoformat() for d in range(args.days)]
        limit_bytes = float("inf") if args.mb is None else args.mb * 1_000_000 // args.nodes
        limit_lines = None if args.lines is None else args.lines // args.nodes
        for index, (name, template, plants) in enumerate(cluster_files(args, templates)):
            files.append(
                write_file(
                    os.path.join(args.out_dir, name), name, index, template_blocks(template),
                    limit_bytes, limit_lines, plants, dates, start_ms=0,
                    span_ms=args.days * 86_400_000 - 60_000,
                )
            )
        word, _, count = (args.rare or "").partition(":")
        extra = {
            "nodes": args.nodes,
            "days": args.days,
            "start_date": args.start_date,
            "lines_limit": args.lines,
            "rare_word": word or None,
            "rare_count": int(count or 0),
            "nanny_errors": args.nanny_errors,
            "first_ts": min(f["first_ts"] for f in files),
            "last_ts": max(f["last_ts"] for f in files),
        }
    if args.nodes is None:
        for f in files:
            for key in ("planted", "first_ts", "last_ts"):
                del f[key]
    manifest = {
        "mb": args.mb,
        "marker_word": MARKER_WORD,
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "lines": sum(f["lines"] for f in files),
        "header_lines": sum(f["header_lines"] for f in files),
        "empty_lines": sum(f["empty_lines"] for f in files),
        **extra,
    }
    with open(os.path.join(args.out_dir, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    print(
        f"corpus: {len(files)} files, {manifest['bytes']:,} bytes, "
        f"{manifest['lines']:,} lines, {manifest['header_lines']:,} header lines"
    )


if __name__ == "__main__":
    main()
