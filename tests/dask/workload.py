"""The story of a Dask job that dies, told against a real cluster: the acceptance test and the
demo both run it.

usage: workload.py SCHEDULER_ADDRESS WORKERS VICTIM
       workload.py SCHEDULER_ADDRESS --shutdown

Waits for WORKERS workers, then:

1. every worker runs three tasks that each print one line, "afterglow-print N from NAME";
2. one task raises ValueError("afterglow: this task fails on purpose");
3. one task holds the GIL for about 6 s (Dask warns "Event loop was unresponsive" past 3 s;
   the margin is for a loaded machine, where the hold's calibration is rough);
4. one task SIGKILLs the worker process named VICTIM running it; its nanny starts a new one
   under the same name, and the task ends in KilledWorker (start the scheduler with
   DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0, so that one death is enough);
5. waits for VICTIM to come back under its new address.

With --shutdown, it only shuts the whole cluster down (scheduler, nannies and workers).

Prints one JSON object on its last line: the printed lines and the worker each came from,
the failure and KilledWorker messages, and VICTIM's old and new addresses.
"""

import json
import os
import signal
import sys
import time

from distributed import Client, get_worker
from distributed.scheduler import KilledWorker


def shout(number):
    name = get_worker().name
    line = f"afterglow-print {number} from {name}"
    print(line, flush=True)
    return line, name


def fail():
    raise ValueError("afterglow: this task fails on purpose")


def hold_gil(seconds):
    # sum() over a range runs in C without letting the GIL go: the worker's event loop
    # cannot run meanwhile. Calibrated on this machine first, at its fastest of five tries:
    # one slow try on a loaded machine would make the hold too short to be warned about.
    per_item = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(range(2_000_000))
        per_item = min(per_item, (time.perf_counter() - started) / 2_000_000)
    started = time.perf_counter()
    sum(range(int(seconds / per_item)))
    return time.perf_counter() - started


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def worker_addresses(client):
    return {info["name"]: address for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}


def main():
    if sys.argv[2:] == ["--shutdown"]:
        Client(sys.argv[1], timeout="60s").shutdown()
        print("workload: the cluster is shut down", flush=True)
        return
    address, workers, victim = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = Client(address, timeout="60s")
    client.wait_for_workers(workers, timeout=120)
    addresses = worker_addresses(client)
    print(f"workload: workers {sorted(addresses)}", flush=True)

    futures = [
        client.submit(shout, f"{index}-{round_}", workers=[worker_address], pure=False)
        for index, (name, worker_address) in enumerate(sorted(addresses.items()))
        for round_ in range(3)
    ]
    prints = dict(client.gather(futures))
    print(f"workload: {len(prints)} tasks printed", flush=True)

    failed = client.submit(fail, pure=False)
    failure = repr(failed.exception())
    print(f"workload: a task failed: {failure}", flush=True)

    held = client.submit(hold_gil, 6.0, pure=False).result()
    print(f"workload: a task held the GIL for {held:.1f} s", flush=True)

    old_address = addresses[victim]
    try:
        client.submit(die, workers=[old_address], pure=False).result()
        raise SystemExit("the task that kills its worker returned")
    except KilledWorker as error:
        killed = repr(error)
    print(f"workload: {killed}", flush=True)

    deadline = time.monotonic() + 120
    while True:
        new_address = worker_addresses(client).get(victim)
        if new_address not in (None, old_address):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{victim} did not come back")
        time.sleep(0.2)
    print(f"workload: {victim} restarted at {new_address}", flush=True)
    client.close()
    print(
        json.dumps(
            {
                "prints": prints,
                "failure": failure,
                "killed": killed,
                "victim": victim,
                "old_address": old_address,
                "new_address": new_address,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
