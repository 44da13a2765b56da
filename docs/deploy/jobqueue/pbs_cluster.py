"""A dask-jobqueue cluster on PBS whose workers run under the Afterglow agent.

The same recipe as slurm_cluster.py: the agent goes in front of the worker's Python, and the
job name (PBS_JOBNAME in the job) is the cluster's name.
"""

import os
import shutil
import sys

from dask.distributed import Client
from dask_jobqueue import PBSCluster

CLUSTER_NAME = "nightly-etl"
COLLECTOR = os.environ.get("AFTERGLOW_COLLECTOR", "http://collector.internal:7701")
AGENT = shutil.which("afterglow-agent") or "/opt/afterglow/bin/afterglow-agent"


def make_cluster() -> PBSCluster:
    return PBSCluster(
        job_name=CLUSTER_NAME,
        queue="workq",
        account="data-eng",
        cores=8,
        memory="32GB",
        processes=2,
        walltime="04:00:00",
        python=f"{AGENT} run --role worker -- {sys.executable}",
        job_script_prologue=[
            f"export AFTERGLOW_COLLECTOR={COLLECTOR}",
            'export AFTERGLOW_CLUSTER="$PBS_JOBNAME"',
        ],
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
