"""Dask clusters for ``edgebench fleet run``: local worker processes, SSH hosts, or PBS / Slurm jobs.

Each worker is one edge node, so every cluster starts single-threaded workers, one per node. PBS and Slurm
select the processor kind the way the seed's DevCloud did: a node property in the resource request
(``-l nodes=1:ppn=2:skylake`` for PBS/Torque, ``--constraint=skylake`` for Slurm).

Batch jobs are watched while their workers connect: a job script Slurm refuses (an unknown feature, more
cores than any node has) fails before anything is submitted, with Slurm's own message (``sbatch
--test-only``); a job that ends, or pends for a reason that cannot clear, before its worker connects stops
the run with the scheduler's state and reason instead of waiting forever. Jobs that are merely queued are
waited for. When a node's job ends mid-run, :func:`job_end_reason` gives the scheduler's account (Slurm:
``scontrol show job``; walltime kills read "walltime exceeded").
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
    """Where the nodes come from; ``metadata["help"]`` is the ``edgebench fleet run`` option's help."""

    kind: str = field(default="local", metadata={"help": "local, ssh, pbs or slurm"})
    nodes: int = field(default=2, metadata={"help": "local: worker processes; pbs/slurm: jobs, one worker each"})
    hosts: tuple[str, ...] = ()  # ssh: the scheduler's host first, then one worker per host
    ssh_port: int = field(default=22, metadata={"help": "ssh: port on every host"})
    ssh_key: str | None = field(
        default=None, metadata={"help": "private key for ssh (default: the ssh agent / ~/.ssh)"}
    )
    # None: do not check host keys (a throwaway fleet); give a file otherwise
    ssh_known_hosts: str | None = field(default=None, metadata={"help": "known_hosts file to check host keys against"})
    remote_python: str | None = field(
        default=None, metadata={"help": "python on the nodes (default: this interpreter's path)"}
    )
    queue: str | None = field(default=None, metadata={"help": "pbs/slurm queue or partition"})
    walltime: str = field(default="01:00:00", metadata={"help": "pbs/slurm walltime"})
    cores: int = field(default=2, metadata={"help": "pbs/slurm cores per node"})
    memory: str = field(default="8GB", metadata={"help": "pbs/slurm memory per node"})
    processor: str | None = field(
        default=None,
        metadata={
            "help": "node property selecting the processor kind, "
            "e.g. skylake (pbs: -l nodes=1:ppn=N:PROP, "
            "slurm: --constraint=PROP)"
        },
    )
    resource_spec: str | None = field(
        default=None, metadata={"help": "pbs -l request verbatim (overrides --processor)"}
    )
    account: str | None = field(default=None, metadata={"help": "pbs/slurm account"})
    job_extra: tuple[str, ...] = field(default_factory=tuple)
    # pbs/slurm: exported in each job script, so the node's environment does not depend on what the
    # scheduler copies from the submitting shell (PBS copies nothing without -V); never real credentials
    environment: tuple[tuple[str, str], ...] = ()
    log_directory: str | None = None  # pbs/slurm: the jobs' stdout/stderr (default: the scheduler's, the cwd)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"--cluster {self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.nodes < 1:
            raise ConfigError(f"--nodes {self.nodes}: need at least one node")
        if self.kind == "ssh" and len(self.hosts) < 2:
            raise ConfigError(
                "--cluster ssh needs --hosts SCHEDULER,NODE[,NODE...]: the first host runs the "
                "scheduler, each further host is one node"
            )


def jobqueue_cluster(options: ClusterOptions) -> Any:
    """A PBSCluster or SLURMCluster (not started: jobs are submitted by ``scale``), one worker per job."""
    python = options.remote_python or sys.executable
    prologue = [f"export {name}={shlex.quote(value)}" for name, value in options.environment]
    common: dict[str, Any] = {
        "cores": options.cores,
        "processes": 1,
        "memory": options.memory,
        "walltime": options.walltime,
        "queue": options.queue,
        "account": options.account,
        "python": python,
        "job_name": "edgebench-node",
        "job_script_prologue": prologue,
        "log_directory": options.log_directory,
        "scheduler_options": {"dashboard_address": ":0"},
    }
    if options.kind == "pbs":
        from dask_jobqueue.pbs import PBSCluster  # the package's __init__ re-exports it implicitly

        resource_spec = options.resource_spec or (
            f"nodes=1:ppn={options.cores}:{options.processor}" if options.processor else None
        )
        return PBSCluster(**common, resource_spec=resource_spec, job_extra_directives=list(options.job_extra))
    if options.kind == "slurm":
        from dask_jobqueue.slurm import SLURMCluster

        extra = list(options.job_extra) + ([f"--constraint={options.processor}"] if options.processor else [])
        return SLURMCluster(**common, job_extra_directives=extra)
    raise ConfigError(f"--cluster {options.kind}: not a batch scheduler; job scripts exist for pbs and slurm")


def job_script(options: ClusterOptions) -> str:
    """``--dry-run``: the script each PBS/Slurm job would run, without submitting anything."""
    cluster = jobqueue_cluster(options)
    try:
        script: str = cluster.job_script()
        return script
    finally:
        cluster.close()


@contextmanager
def open_cluster(options: ClusterOptions) -> Iterator[Any]:
    """Start the cluster, wait for its workers, yield a connected Client; close everything afterwards."""
    import dask
    from distributed import Client

    if options.kind == "slurm":
        check_job_script(options)  # before the scheduler starts: a refused job script is a one-line error
    with dask.config.set(QUIET_WORKERS):
        cluster = _start(options)
        try:
            with Client(cluster) as client:
                if options.kind in ("pbs", "slurm"):
                    if options.log_directory:
                        Path(options.log_directory).mkdir(parents=True, exist_ok=True)
                    cluster.scale(jobs=options.nodes)
                    wait_for_jobs(client, cluster, options)
                else:
                    client.wait_for_workers(
                        len(options.hosts) - 1 if options.kind == "ssh" else options.nodes, timeout=300
                    )
                yield client
        finally:
            _mark_unsubmitted_failed(cluster)
            cluster.close()


def _mark_unsubmitted_failed(cluster: Any) -> None:
    """A batch job whose submission failed never started, and distributed's close asserts that every worker it
    created has closed or failed: say it failed, so that the error the user sees is the submission's."""
    from distributed.core import Status

    for job in list(getattr(cluster, "_created", ())):
        if hasattr(job, "job_id") and not job.job_id and job.status == Status.created:
            job.status = Status.failed


def check_job_script(options: ClusterOptions) -> None:
    """``sbatch --test-only`` on the very job script the cluster submits: Slurm validates partition, constraint,
    cores, memory and walltime without queueing anything; a refusal is a ConfigError with Slurm's reason."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="edgebench-job-") as script:
        script.write(job_script(options))
        script.flush()
        try:
            result = subprocess.run(["sbatch", "--test-only", script.name], capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise ConfigError(
                "--cluster slurm: sbatch not found; run on a Slurm login node (or one with "
                "slurm-client and SLURM_CONF pointing at the cluster)"
            ) from None
    if result.returncode != 0:
        said = " ".join(result.stderr.split()) or f"exit code {result.returncode}"
        raise ConfigError(
            f"--cluster slurm: Slurm refuses the node job ({said}); requested: {_request(options)}. "
            'Check --processor (a feature `sinfo -o "%N %f"` lists), --queue, --cores, --memory '
            "and --walltime"
        )


def _request(options: ClusterOptions) -> str:
    parts = [
        f"--processor {options.processor}" if options.processor else "",
        f"--queue {options.queue}" if options.queue else "",
        f"--cores {options.cores}",
        f"--memory {options.memory}",
        f"--walltime {options.walltime}",
    ]
    return " ".join(part for part in parts if part)


# Slurm job states in which a worker can still connect, and pending reasons that clear by themselves
_WAITING = {"PENDING", "CONFIGURING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED"}
_PENDING_OK = {
    "None",
    "Priority",
    "Resources",
    "BeginTime",
    "Dependency",
    "JobHeldUser",
    "Reservation",
    "Licenses",
    "NodeDown",
    "Prolog",
    "PartitionDown",
    "QOSGrpCpuLimit",
    "AssocGrpCpuLimit",
}


def wait_for_jobs(
    client: Any,
    cluster: Any,
    options: ClusterOptions,
    poll_s: float = 1.0,
    on_connect: Callable[[int, float], None] | None = None,
) -> float:
    """Wait until every job's worker has connected; returns the seconds from submission to the last one.
    Queued jobs are waited for as long as they take; a job that ends first, pends for a reason that cannot
    clear (Slurm), or was never submitted stops the run with a ConfigError naming the job and the reason."""
    start = time.monotonic()
    while True:
        connected = len(client.scheduler_info()["workers"])
        if connected >= options.nodes:
            return time.monotonic() - start
        jobs = list(cluster.workers.values())
        submitted = [str(job.job_id) for job in jobs if getattr(job, "job_id", None)]
        if len(jobs) >= options.nodes and len(submitted) < len(jobs) and time.monotonic() - start > 30:
            raise ConfigError(
                f"--cluster {options.kind}: {len(jobs) - len(submitted)} of {len(jobs)} node jobs "
                "could not be submitted; run the --dry-run job script by hand to see why"
            )
        if options.kind == "slurm" and submitted:
            for job_id, state in slurm_job_states(submitted).items():
                problem = _stuck(job_id, state, options)
                if problem:
                    raise ConfigError(problem)
        time.sleep(poll_s)


def _stuck(job_id: str, state: Mapping[str, str], options: ClusterOptions) -> str:
    """Why a job's worker will never connect ("" if it still may)."""
    job_state, reason = state.get("JobState", "?"), state.get("Reason", "None")
    where = f" (job output: {state['StdErr']})" if state.get("StdErr") else ""
    if job_state not in _WAITING:
        return (
            f"--cluster slurm: node job {job_id} ended before its Dask worker connected: "
            f"{describe_slurm_end(job_id, state)}{where}"
        )
    if job_state == "PENDING" and reason not in _PENDING_OK:
        return (
            f"--cluster slurm: node job {job_id} cannot start: pending with reason {reason} "
            f"(requested {_request(options)}); it was cancelled"
        )
    return ""


def slurm_job_states(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """``scontrol show job -o`` per job id: its fields (``JobState``, ``Reason``, ``ExitCode``, ``TimeLimit`` …);
    jobs Slurm no longer knows are left out."""
    states = {}
    for job_id in job_ids:
        result = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            states[job_id] = dict(field.split("=", 1) for field in result.stdout.split() if "=" in field)
    return states


def describe_slurm_end(job_id: str, state: Mapping[str, str]) -> str:
    """The scheduler's account of an ended job, in words a user acts on."""
    job_state, reason = state.get("JobState", "?"), state.get("Reason", "None")
    detail = f"JobState={job_state}, Reason={reason}, ExitCode={state.get('ExitCode', '?')}"
    if job_state == "TIMEOUT":
        return (
            f"walltime exceeded: Slurm ended job {job_id} at its time limit of {state.get('TimeLimit', '?')} "
            f"after {state.get('RunTime', '?')} ({detail}); raise --walltime"
        )
    if job_state == "CANCELLED":
        return f"Slurm job {job_id} was cancelled (scancel or an administrator; {detail})"
    if job_state in ("NODE_FAIL", "BOOT_FAIL"):
        return f"Slurm job {job_id} lost its node ({detail})"
    if job_state == "OUT_OF_MEMORY":
        return f"Slurm job {job_id} ran out of memory ({detail}); raise --memory"
    return f"Slurm job {job_id} ended ({detail})"


def job_end_reason(kind: str, job_id: str | None, worker_gone: bool = True, settle_s: float = 15.0) -> str | None:
    """The scheduler's reason a node's job ended, or None while it runs (and for PBS, which is not queried
    here). A job still COMPLETING, or RUNNING although its worker is gone, is asked again for up to ``settle_s``:
    the worker can notice the end of its job before the scheduler's state says how it ended."""
    if kind != "slurm" or not job_id:
        return None
    deadline = time.monotonic() + settle_s
    while True:
        state = slurm_job_states([job_id]).get(job_id)
        if state is None:
            return f"Slurm job {job_id} is no longer known to the scheduler (ended more than MinJobAge ago)"
        job_state = state.get("JobState", "")
        if job_state not in _WAITING and job_state != "COMPLETING":
            return describe_slurm_end(job_id, state)
        if (job_state == "RUNNING" and not worker_gone) or time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def batch_job_id() -> str | None:
    """Run on a worker: the batch job it runs in (Slurm or PBS), None outside one."""
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID")


def _start(options: ClusterOptions) -> Any:
    if options.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(
            n_workers=options.nodes, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        )  # any free port
    if options.kind == "ssh":
        from distributed import SSHCluster

        connect: dict[str, object] = {"port": options.ssh_port, "known_hosts": options.ssh_known_hosts}
        if options.ssh_key:
            connect["client_keys"] = [options.ssh_key]
        return SSHCluster(
            list(options.hosts),
            connect_options=connect,
            worker_options={"nthreads": 1, "n_workers": 1},
            scheduler_options={"port": 0, "dashboard_address": ":0"},
            remote_python=options.remote_python or sys.executable,
        )
    return jobqueue_cluster(options)
