"""The parent of a fleet run (its inputs staged by :mod:`harness.fleet.inputs`): one task per
Dask worker (``run_fleet``), each node's outcome collected as it ends; a node whose worker dies or whose
batch job ends is recorded as failed (with the scheduler's reason), the others' results stay."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError, EdgebenchError, StoreError
from harness.fleet.node import NodeOutcome, NodeSpec, node_store, run_node
from harness.fleet.publish import publish_failure


@dataclass
class FleetResult:
    run_id: str
    nodes: list[NodeOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[NodeOutcome]:
        return [node for node in self.nodes if node.status == "failed"]


def node_id_for(hostname: str, worker_name: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{hostname}-{worker_name}").strip("-")


def run_fleet(
    client: Any,
    spec: NodeSpec,
    poll_s: float = 0.5,
    on_update: Callable[[NodeOutcome], None] | None = None,
    job_ended: Callable[[str, bool], str | None] | None = None,
) -> FleetResult:
    """Run ``spec`` once on every worker of ``client``'s cluster (``spec.node_id`` is set per worker) and wait
    for all: a node that fails, times out or loses its worker is recorded; the others' results stay.

    ``job_ended(job_id, worker_gone)``: for workers in batch jobs, the scheduler's reason a failed node's job
    ended (None while it runs); it becomes the node's failure reason (a walltime kill, a cancelled job)."""
    from harness.fleet.clusters import batch_job_id

    start = time.monotonic()
    workers = client.scheduler_info()["workers"]
    if not workers:
        raise ConfigError("the cluster has no workers; start some (or check the job queue) and run again")
    hostnames = client.run(socket.gethostname)
    jobs = client.run(batch_job_id) if job_ended else {}
    pending = _submit(client, spec, workers, hostnames)
    result = FleetResult(spec.run_id)
    deadline = time.monotonic() + spec.timeout_s + 120  # the node enforces its own timeout; this is a backstop
    while pending:
        time.sleep(poll_s)
        alive = set(client.run_on_scheduler(_scheduler_workers))
        for future, (node_spec, address) in list(pending.items()):
            outcome = _check(future, node_spec, address, alive, deadline)
            if outcome is None:
                continue
            del pending[future]
            if not future.done():
                future.cancel()
            scheduler = _scheduler_reason(outcome, job_ended, jobs.get(address), address not in alive)
            if scheduler:  # the scheduler's account replaces the worker's (KilledWorker, a killed suite)
                outcome = dataclasses.replace(outcome, reason=f"{scheduler}; the node's Dask worker ended with its job")
            if outcome.status == "failed" and (scheduler or not outcome.seconds):  # the node could not know
                _record_parent_failure(node_spec, outcome.reason)
            outcome = dataclasses.replace(outcome, worker=address)
            result.nodes.append(outcome)
            if on_update:
                on_update(outcome)
    result.seconds = time.monotonic() - start
    result.nodes.sort(key=lambda node: node.node_id)
    return result


def _submit(
    client: Any, spec: NodeSpec, workers: dict[str, dict[str, Any]], hostnames: dict[str, str]
) -> dict[Any, tuple[NodeSpec, str]]:
    """``spec`` submitted to each worker, named after its host: future -> (the node's spec, worker address)."""
    pending = {}
    for address, info in workers.items():
        node_id = node_id_for(hostnames.get(address, info.get("host", address)), info.get("name", address))
        node_spec = dataclasses.replace(spec, node_id=node_id)
        future = client.submit(
            run_node,
            node_spec,
            workers=[address],
            allow_other_workers=False,
            pure=False,
            key=f"edgebench-node-{spec.run_id}-{node_id}-{uuid.uuid4().hex[:8]}",
        )
        pending[future] = (node_spec, address)
    return pending


def _scheduler_reason(
    outcome: NodeOutcome, job_ended: Callable[[str, bool], str | None] | None, job: str | None, worker_gone: bool
) -> str | None:
    """Why the batch scheduler ended a failed node's job (None: no batch job, or it still runs)."""
    if job_ended is None or outcome.status != "failed" or not job:
        return None
    return job_ended(job, worker_gone)


def _scheduler_workers(dask_scheduler: Any) -> list[str]:
    """The workers the scheduler has now, asked on each poll: the client's cached ``scheduler_info()`` is
    refreshed in the background, and on a loaded machine it lacked both live workers at the first poll (both
    nodes failed as lost at once while the scheduler's log showed no worker leaving)."""
    return list(dask_scheduler.workers)


def _check(future: Any, spec: NodeSpec, address: str, alive: set[str], deadline: float) -> NodeOutcome | None:
    """The node's outcome once there is one: its result, its worker gone, or the backstop deadline passed."""
    if future.done():
        return _outcome(future, spec)
    if address not in alive:
        return NodeOutcome(spec.node_id, "failed", "its Dask worker died or left the cluster mid-run")
    if time.monotonic() > deadline:
        return NodeOutcome(spec.node_id, "failed", "no answer from the node within the per-node timeout")
    return None


def _outcome(future: Any, spec: NodeSpec) -> NodeOutcome:
    try:
        outcome: NodeOutcome = future.result()  # run_node's
        return outcome
    except EdgebenchError as exc:
        return NodeOutcome(spec.node_id, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - KilledWorker, CommClosedError...: the node's worker went away
        return NodeOutcome(
            spec.node_id, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        )


def _record_parent_failure(spec: NodeSpec, reason: str) -> None:
    with contextlib.suppress(StoreError):  # the fleet result still reports it; S3 is what failed
        publish_failure(node_store(spec), spec.node_id, reason)
