"""dask-gateway server configuration: every scheduler and worker runs under the Afterglow agent.

Load it with `dask-gateway-server -f dask_gateway_config.py` (or paste the lines below the
imports into the Helm chart's `gateway.extraConfig`, see values.yaml). The settings are on
ClusterConfig, which every backend's cluster configuration class inherits, so they apply to
the local, jobqueue and Kubernetes backends alike.
"""

c = get_config()  # noqa: F821 - defined by traitlets when it loads this file

AGENT_CONFIG_DIR = "/etc/afterglow/gateway"

# The backend appends its own arguments (scheduler address, TLS, ports) to these lists; they
# land after `--` and so reach the Dask command unchanged.
c.ClusterConfig.scheduler_cmd = [
    "afterglow-agent",
    "--config",
    f"{AGENT_CONFIG_DIR}/agent-scheduler.toml",
    "run",
    "--role",
    "scheduler",
    "--",
    "dask-scheduler",
]
c.ClusterConfig.worker_cmd = [
    "afterglow-agent",
    "--config",
    f"{AGENT_CONFIG_DIR}/agent-worker.toml",
    "run",
    "--role",
    "worker",
    "--",
    "dask-worker",
]

# Set in both the scheduler's and the workers' environment, beside the variables dask-gateway
# sets itself (DASK_GATEWAY_CLUSTER_NAME, which the agent configs use as the cluster name).
c.ClusterConfig.environment = {
    "AFTERGLOW_COLLECTOR": "http://afterglow-collector.afterglow.svc.cluster.local:7701",
}
