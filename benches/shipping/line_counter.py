#!/usr/bin/env python3
"""The receiving end of the rsyslog pipeline: a TCP server on 127.0.0.1 that counts
newline-terminated lines (rsyslog's omfwd frames each message with a newline).

Usage: line_counter.py --expected N --port-file F --done-file D [--keep-file K]

- Listens on 127.0.0.1 on a free port and writes the port to --port-file.
- When the count first reaches --expected, writes `<unix time> <count>` to --done-file.
  It keeps reading (and counting) after that, so that rsyslog's connection stays up and its
  idle CPU is measured as in normal operation; SIGTERM or SIGINT stops it, and the final count
  is written to --done-file's sibling `<done-file>.final`.
- With --keep-file, every received byte is also written there (to look at what rsyslog sent;
  off by default, it costs CPU).
"""

import argparse
import asyncio
import os
import signal
import time


class Counter:
    def __init__(self, expected, done_file, keep):
        self.expected = expected
        self.done_file = done_file
        self.keep = keep
        self.lines = 0
        self.bytes = 0
        self.done = False

    def add(self, data):
        self.lines += data.count(b"\n")
        self.bytes += len(data)
        if self.keep is not None:
            self.keep.write(data)
        if not self.done and self.lines >= self.expected:
            self.done = True
            now = time.time()
            tmp = self.done_file + ".tmp"
            with open(tmp, "w") as handle:
                handle.write(f"{now:.6f} {self.lines}\n")
            os.replace(tmp, self.done_file)


class LineProtocol(asyncio.Protocol):
    def __init__(self, counter):
        self.counter = counter

    def data_received(self, data):
        self.counter.add(data)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--done-file", required=True)
    parser.add_argument("--keep-file")
    args = parser.parse_args()
    keep = open(args.keep_file, "wb") if args.keep_file else None
    counter = Counter(args.expected, args.done_file, keep)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: LineProtocol(counter), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    with open(args.done_file + ".final", "w") as handle:
        handle.write(f"{counter.lines} {counter.bytes}\n")
    if keep is not None:
        keep.close()


if __name__ == "__main__":
    asyncio.run(main())
