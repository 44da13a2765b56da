"""A dask-jobqueue cluster on SLURM whose workers run under the Afterglow agent.

Every worker job runs `afterglow-agent run --role worker -- python -m distributed.cli.dask_worker
…`: dask-jobqueue writes `python` in front of the worker's module, so the agent goes there. The
job name is the cluster's name; the agent takes it from SLURM_JOB_NAME in the job. Run this
script itself under the agent on the login node, which ships the scheduler's log (the scheduler
runs inside this process):

    AFTERGLOW_COLLECTOR=http://collector.internal:7701 AFTERGLOW_CLUSTER=nightly-etl \\
        afterglow-agent run --role scheduler -- python slurm_cluster.py

and start one agent beside it for the metrics (login-node.toml: `[dask]` discovery).
"""

import os
import shutil
import sys

from dask.distributed import Client
from dask_jobqueue import SLURMCluster

CLUSTER_NAME = "nightly-etl"
COLLECTOR = os.environ.get("AFTERGLOW_COLLECTOR", "http://collector.internal:7701")
# The compute nodes must see the same path (a shared file system, or the same install).
AGENT = shutil.which("afterglow-agent") or "/opt/afterglow/bin/afterglow-agent"


def make_cluster() -> SLURMCluster:
    return SLURMCluster(
        job_name=CLUSTER_NAME,
        queue="compute",
        account="data-eng",
        cores=8,
        memory="32GB",
        processes=2,
        walltime="04:00:00",
        python=f"{AGENT} run --role worker -- {sys.executable}",
        job_script_prologue=[
            f"export AFTERGLOW_COLLECTOR={COLLECTOR}",
            'export AFTERGLOW_CLUSTER="$SLURM_JOB_NAME"',
        ],
        # The dashboard (and /metrics) where login-node.toml's `[dask]` looks for it.
        scheduler_options={"dashboard_address": ":8787"},
    )


def main() -> None:
    with make_cluster() as cluster, Client(cluster) as client:
        print(cluster.job_script())
        cluster.scale(jobs=4)
        client.wait_for_workers(8)
        total = client.submit(sum, range(1_000_000)).result()
        print(f"sum: {total}")


if __name__ == "__main__":
    main()
