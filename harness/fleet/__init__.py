"""The edge suite on many nodes through Dask, each node's results under ``s3://BUCKET/runs/<run-id>/<node-id>/``.

One Dask worker is one node. The parent submits one task per worker, pinned to it; the task runs the edge
suite (``pytest -m edge`` with ``--benchmark-json`` and the parity check) in a child process against one
artifact in S3, with the held-out test images and the INT8 calibration images (training images) from prefixes
beside it, then publishes the node's files and, last, ``manifest.json``: a node folder without a manifest is
never complete, whatever else it holds. Clusters: a ``LocalCluster`` whose worker processes
act as nodes (default, what the tests use), ``SSHCluster`` over a list of hosts, or PBS / Slurm through
dask-jobqueue (:mod:`harness.fleet.clusters`).

Faults: a node whose suite errors or times out uploads its log and ``failure.json`` (never a manifest); a
node whose worker dies is recorded as failed by the parent; the run completes with the others. Running a
run id again skips nodes that have a manifest (``force`` re-runs them). Nodes that share a host take turns
(a file lock on that host), so that one node's benchmark never runs beside another's.

The merge (:func:`merge.merge_run`) reads a run folder (downloaded from S3, or written by ``edgebench upload``):
it does not care how results arrived.

Modules, in the order a run goes through them:
- ``inputs``: the artifact, test and calibration images checked, then in S3 beside each other;
- ``orchestrate``: the parent (one task per worker, outcomes);
- ``node``: what one node runs (the edge suite in a child process) and its environment;
- ``results``: the node report and ``report.json`` as published (latency from structured ``extra_info``);
- ``publish``: files then manifest to S3, failures, and downloading a run back;
- ``merge``: a run folder into one summary (ladders, verdicts per node and per processor);
- ``present``: ``fleet-report.json``, ``report.html`` (``html_report``) and the terminal tables;
- ``clusters``: LocalCluster, SSHCluster, PBS/Slurm; ``slurm_local``: a one-machine Slurm for the tests.

The names below are the fleet's public API (the CLI, the pytest plugin and the suites use them as ``fleet.<name>``).
"""

from __future__ import annotations

from harness.edge import CALIBRATION_IMAGES
from harness.fleet.inputs import (
    CalibrationSubset,
    FleetInputs,
    StagedInputs,
    TrainedInputs,
    calibration_subset,
    stage_inputs,
)
from harness.fleet.merge import (
    FLEET_SCHEMA,
    VERDICTS,
    MergedRun,
    merge_run,
    node_row,
    node_verdict,
)
from harness.fleet.node import (
    NodeOutcome,
    NodeSpec,
    job_environment,
    node_environment,
    run_node,
    suite_command,
)
from harness.fleet.orchestrate import (
    FleetResult,
    node_id_for,
    run_fleet,
)
from harness.fleet.present import (
    fleet_table,
    headline,
    openvino_headline,
    report_tables,
    write_merged,
)
from harness.fleet.publish import (
    FAILURE,
    MANIFEST,
    NODE_FILES,
    download_run,
    has_manifest,
    manifest_for,
    parse_run_uri,
    publish_failure,
    publish_node,
    results_store,
    run_prefix,
    upload_results,
)
from harness.fleet.results import (
    NODE_SCHEMA,
    REFERENCE,
    complete_report,
    node_results,
    node_summary,
)

__all__ = [
    "CALIBRATION_IMAGES",
    "FAILURE",
    "FLEET_SCHEMA",
    "MANIFEST",
    "NODE_FILES",
    "NODE_SCHEMA",
    "REFERENCE",
    "VERDICTS",
    "CalibrationSubset",
    "FleetInputs",
    "FleetResult",
    "MergedRun",
    "NodeOutcome",
    "NodeSpec",
    "StagedInputs",
    "TrainedInputs",
    "calibration_subset",
    "complete_report",
    "download_run",
    "fleet_table",
    "has_manifest",
    "headline",
    "job_environment",
    "manifest_for",
    "merge_run",
    "node_environment",
    "node_id_for",
    "node_results",
    "node_row",
    "node_summary",
    "node_verdict",
    "openvino_headline",
    "parse_run_uri",
    "publish_failure",
    "publish_node",
    "report_tables",
    "results_store",
    "run_fleet",
    "run_node",
    "run_prefix",
    "stage_inputs",
    "suite_command",
    "upload_results",
    "write_merged",
]
