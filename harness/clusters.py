"""Dask clusters for ``edgebench fleet run``: local worker processes, SSH hosts, or PBS / Slurm jobs.

Each worker is one edge node, so every cluster starts single-threaded workers, one per node. PBS and Slurm
select the processor kind the way the seed's DevCloud did: a node property in the resource request
(``-l nodes=1:ppn=2:skylake`` for PBS/Torque, ``--constraint=skylake`` for Slurm).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

KINDS = ("local", "ssh", "pbs", "slurm")
QUIET_WORKERS = {
    "distributed.scheduler.allowed-failures": 0,  # a worker that dies fails its node, never retried elsewhere
    # A node's worker only waits for its suite's child process; its own sampling (stack profiler every 10 ms,
    # GIL and system monitors) would take CPU from the benchmark running beside it.
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@dataclass(frozen=True)
class ClusterOptions:
    kind: str = "local"
    nodes: int = 2  # local: worker processes; pbs/slurm: jobs (one worker each)
    hosts: tuple[str, ...] = ()  # ssh: the scheduler's host first, then one worker per host
    ssh_port: int = 22
    ssh_key: str | None = None
    ssh_known_hosts: str | None = None  # None: do not check host keys (a throwaway fleet); give a file otherwise
    remote_python: str | None = None  # python on the nodes (default: the same path as here)
    queue: str | None = None
    walltime: str = "01:00:00"
    cores: int = 2
    memory: str = "8GB"
    processor: str | None = None  # node property that selects the processor kind (e.g. skylake, icelake)
    resource_spec: str | None = None  # PBS -l request verbatim (overrides --processor)
    account: str | None = None
    job_extra: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"--cluster {self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.nodes < 1:
            raise ConfigError(f"--nodes {self.nodes}: need at least one node")
        if self.kind == "ssh" and len(self.hosts) < 2:
            raise ConfigError("--cluster ssh needs --hosts SCHEDULER,NODE[,NODE...]: the first host runs the "
                              "scheduler, each further host is one node")


def jobqueue_cluster(options: ClusterOptions) -> Any:
    """A PBSCluster or SLURMCluster (not started: jobs are submitted by ``scale``), one worker per job."""
    python = options.remote_python or sys.executable
    common: dict[str, Any] = {"cores": options.cores, "processes": 1, "memory": options.memory,
                              "walltime": options.walltime, "queue": options.queue, "account": options.account,
                              "python": python, "job_name": "edgebench-node", "scheduler_options":
                              {"dashboard_address": ":0"}}
    if options.kind == "pbs":
        from dask_jobqueue import PBSCluster

        resource_spec = options.resource_spec or (f"nodes=1:ppn={options.cores}:{options.processor}"
                                                  if options.processor else None)
        return PBSCluster(**common, resource_spec=resource_spec, job_extra_directives=list(options.job_extra))
    if options.kind == "slurm":
        from dask_jobqueue import SLURMCluster

        extra = list(options.job_extra) + ([f"--constraint={options.processor}"] if options.processor else [])
        return SLURMCluster(**common, job_extra_directives=extra)
    raise ConfigError(f"--cluster {options.kind}: not a batch scheduler; job scripts exist for pbs and slurm")


def job_script(options: ClusterOptions) -> str:
    """``--dry-run``: the script each PBS/Slurm job would run, without submitting anything."""
    cluster = jobqueue_cluster(options)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


@contextmanager
def open_cluster(options: ClusterOptions) -> Iterator[Any]:
    """Start the cluster, wait for its workers, yield a connected Client; close everything afterwards."""
    import dask
    from distributed import Client

    with dask.config.set(QUIET_WORKERS):
        cluster = _start(options)
        try:
            with Client(cluster) as client:
                expected = len(options.hosts) - 1 if options.kind == "ssh" else options.nodes
                if options.kind in ("pbs", "slurm"):
                    cluster.scale(jobs=options.nodes)
                client.wait_for_workers(expected, timeout=None if options.kind in ("pbs", "slurm") else 300)
                yield client
        finally:
            cluster.close()


def _start(options: ClusterOptions) -> Any:
    if options.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(n_workers=options.nodes, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=40)  # any free port
    if options.kind == "ssh":
        from distributed import SSHCluster

        connect = {"port": options.ssh_port, "known_hosts": options.ssh_known_hosts}
        if options.ssh_key:
            connect["client_keys"] = [options.ssh_key]
        return SSHCluster(list(options.hosts), connect_options=connect,
                          worker_options={"nthreads": 1, "n_workers": 1},
                          scheduler_options={"port": 0, "dashboard_address": ":0"},
                          remote_python=options.remote_python or sys.executable)
    return jobqueue_cluster(options)
