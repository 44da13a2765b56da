#!/usr/bin/env python3
"""Writes the shipping benchmark's corpus: 8 Dask log files built from the real fixture logs.

Usage: make_corpus.py OUT_DIR [--mb 1000]

The output is deterministic: the same --mb always gives byte-identical files.

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
"""

import argparse
import json
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


def timestamp(ms):
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        sys.exit("corpus too large: timestamps would leave the day")
    return f"{DATE} {hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def write_file(path, name, index, blocks, limit_bytes):
    marker_reserve = 200
    ms = START_MS + 11 * index
    step = 0
    size = lines = headers = empty = 0
    out = []
    out_bytes = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        done = False
        while not done:
            for rest, cont, block_lines, text_len, block_empty in blocks:
                if size + text_len + marker_reserve > limit_bytes:
                    done = True
                    break
                out.append(timestamp(ms))
                out.append(rest)
                out.append(cont)
                ms += STEPS_MS[step]
                step = (step + 1) % len(STEPS_MS)
                size += text_len
                lines += block_lines
                empty += block_empty
                headers += 1
                out_bytes += text_len
                if out_bytes >= 1 << 22:
                    handle.write("".join(out))
                    out.clear()
                    out_bytes = 0
            if headers == 0:
                sys.exit("corpus too small to hold one block per file")
        lines += 1
        headers += 1
        marker = (
            f"{timestamp(ms)} - afterglow.bench - INFO - corpus end marker "
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
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--mb", type=int, default=1000, help="total size, 10^6 bytes")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    limit = args.mb * 1_000_000 // len(FILES)
    templates = {}
    files = []
    for index, (name, template) in enumerate(FILES):
        if template not in templates:
            templates[template] = blocks_of(os.path.join(FIXTURES, template))
        files.append(
            write_file(
                os.path.join(args.out_dir, name), name, index, templates[template], limit
            )
        )
    manifest = {
        "mb": args.mb,
        "marker_word": MARKER_WORD,
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "lines": sum(f["lines"] for f in files),
        "header_lines": sum(f["header_lines"] for f in files),
        "empty_lines": sum(f["empty_lines"] for f in files),
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
