"""The edge suite on many nodes through Dask, each node's results under ``s3://BUCKET/runs/<run-id>/<node-id>/``.

One Dask worker is one node. The parent submits one task per worker, pinned to it; the task runs the edge
suite (``pytest -m edge`` with ``--benchmark-json`` and the parity check) in a child process against one
artifact in S3, with the held-out test images and the INT8 calibration images (training images) from prefixes
beside it, then publishes the node's files and, last, ``manifest.json``: a node folder without a manifest is
never complete, whatever else it holds. Clusters: a ``LocalCluster`` whose worker processes
act as nodes (default, what the tests use), ``SSHCluster`` over a list of hosts, or PBS / Slurm through
dask-jobqueue (:mod:`harness.clusters`).

Faults: a node whose suite errors or times out uploads its log and ``failure.json`` (never a manifest); a
node whose worker dies is recorded as failed by the parent; the run completes with the others. Running a
run id again skips nodes that have a manifest (``force`` re-runs them). Nodes that share a host take turns
(a file lock on that host), so that one node's benchmark never runs beside another's.

The merge (:func:`merge_run`) reads a run folder (downloaded from S3, or written by ``edgebench upload``):
it does not care how results arrived.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import data, edge, fileio
from harness.backends import PRECISIONS, result_label
from harness.errors import ConfigError, EdgebenchError, StoreError
from harness.store import S3Location, S3Store, sha256_file
from harness.workflow import REFERENCE_BACKEND

NODE_SCHEMA = "edgebench.node/2"
MANIFEST_SCHEMA = "edgebench.manifest/1"
FLEET_SCHEMA = "edgebench.fleet/2"
MANIFEST, FAILURE = "manifest.json", "failure.json"
NODE_FILES = ("benchmark.json", "report.json", "junit.xml", "log.txt")
LOG_TAIL_LINES = 20
_LOCK_DIR = Path(tempfile.gettempdir()) / "edgebench-node-locks"
# INT8 calibration images a fleet run uploads from a local folder (the training split by default), the classes
# taking turns. Measured on the suite MobileNetV2 (5 classes, 200 parity images), 3 balanced subsets per size:
# INT8 top-1 agreement with TF FP32 was 0.955-0.965 at 5 images, 0.955-0.98 at 25, 0.96-0.975 at 100, 0.965-0.97
# at 200 (0.985 for one set of 300): the spread between subsets of one size is as wide as any trend from 10 to
# 200. Quantizing took 12 s at 25, 20 s at 100 and 34 s at NNCF's default of 300 (2 cores), per node and per
# INT8 model. 100 is 20 images per class here, at under two thirds of the 300-image time.
CALIBRATION_IMAGES = 100
REFERENCE = result_label(REFERENCE_BACKEND, "FP32")  # the ladder's bottom rung: stock TF at FP32
NOT_A_MODEL = ("null",)  # backends that compute nothing (the harness's own cost): no rung of the ladder
VERDICTS = ("pass", "not run", "fail")  # per node; it passes only if everything ran and every check held
MIN_CI_SAMPLES = 10  # raw latency samples per side below which a node's speedup gets no interval (as the gate)


# ------------------------------------------------------------------------------------------------
# What one node runs


@dataclass(frozen=True)
class NodeSpec:
    """Everything a node needs: where the artifact is, where results go, how to run the suite."""

    run_id: str
    node_id: str
    artifact_uri: str
    results: S3Location  # results go under <prefix>/runs/<run_id>/<node_id>/
    test_images_uri: str | None = None
    calibration_uri: str | None = None  # INT8 calibration images ({class}/{image} training images) in S3
    suite_dir: str = str(Path(__file__).resolve().parent.parent)  # a checkout holding suites/ and conftest.py
    pytest_args: tuple[str, ...] = ()  # extra selection, e.g. ("-k", "latency")
    timeout_s: float = 1800.0
    force: bool = False
    credentials: Mapping[str, str] | None = None  # None: the standard AWS chain on the node


@dataclass(frozen=True)
class NodeOutcome:
    node_id: str
    status: str  # "complete" | "skipped" | "failed"
    reason: str = ""
    seconds: float = 0.0
    worker: str = ""


def run_prefix(location: S3Location, run_id: str) -> str:
    return location.key("runs", run_id)


def node_store(spec: NodeSpec) -> S3Store:
    return S3Store(spec.results, dict(spec.credentials) if spec.credentials else None).under("runs", spec.run_id,
                                                                                           spec.node_id)


def run_node(spec: NodeSpec) -> NodeOutcome:
    """The task a Dask worker runs: skip if complete, else run the suite and publish (manifest last)."""
    start = time.monotonic()
    s3 = node_store(spec)
    if has_manifest(s3):
        if not spec.force:
            return NodeOutcome(spec.node_id, "skipped", "complete in an earlier attempt (manifest present)")
        s3.delete(s3.location.key(MANIFEST))  # incomplete until this attempt publishes, whatever happens
    with _host_turn(), tempfile.TemporaryDirectory(prefix=f"edgebench-{spec.node_id}-") as tmp:
        files, failure = run_suite(spec, Path(tmp))
        if failure:
            publish_failure(s3, spec.node_id, failure, files.get("log.txt"))
            return NodeOutcome(spec.node_id, "failed", failure, time.monotonic() - start)
        publish_node(s3, spec.run_id, spec.node_id, files)
    return NodeOutcome(spec.node_id, "complete", "", time.monotonic() - start)


def suite_command(spec: NodeSpec, out: Path) -> list[str]:
    command = [sys.executable, "-m", "pytest", str(Path(spec.suite_dir) / "suites"), "-m", "edge", "-p", "no:xdist",
               "-p", "no:cacheprovider", "-q", f"--rootdir={spec.suite_dir}", "--benchmark-save-data",
               f"--benchmark-json={out / 'benchmark.json'}", f"--junitxml={out / 'junit.xml'}",
               f"--edgebench-node-report={out / 'report.json'}", f"--edgebench-artifact={spec.artifact_uri}"]
    if spec.test_images_uri:
        command.append(f"--edgebench-test-images={spec.test_images_uri}")
    if spec.calibration_uri:
        command.append(f"--edgebench-calibration={spec.calibration_uri}")
    return command + list(spec.pytest_args)


def run_suite(spec: NodeSpec, out: Path) -> tuple[dict[str, Path], str]:
    """Run the edge suite in a child process; returns the files made and a failure reason ("" if none).
    Pytest exit 0 (all passed) and 1 (some tests failed: parity out of tolerance, say) both give results."""
    env = {**node_environment(), **job_environment(spec.results, spec.credentials)}
    log_path = out / "log.txt"
    with log_path.open("w") as log:
        child = subprocess.Popen(suite_command(spec, out), stdout=log, stderr=subprocess.STDOUT, cwd=spec.suite_dir,
                                 env=env, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            code = child.wait(timeout=spec.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return {"log.txt": log_path}, f"timed out after {spec.timeout_s:g} s (per-node timeout)"
    files = {name: out / name for name in NODE_FILES if (out / name).is_file()}
    if code not in (0, 1):
        return files, (f"the edge suite exited with code {code} ({_PYTEST_EXIT.get(code, 'error')})"
                       + _usage_error(log_path))
    missing = [name for name in ("benchmark.json", "report.json") if name not in files]
    if missing:
        return files, f"the edge suite wrote no {' or '.join(missing)}: {_first_failure(files)}"
    try:
        complete_report(files, spec.run_id, spec.node_id, files["report.json"], artifact=spec.artifact_uri)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        return files, f"results unreadable: {exc}"
    return files, ""


def job_environment(location: S3Location, credentials: Mapping[str, str] | None) -> dict[str, str]:
    """What a node's processes need beyond their own environment: TF's log level, the results' S3 region and
    endpoint, and the credentials the run was given (the embedded S3's dummy ones; None: the node's standard
    AWS chain, nothing written here). Set for the suite's child process, and exported by each PBS/Slurm job."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "AWS_DEFAULT_REGION": location.region}
    if location.endpoint_url:
        env["AWS_ENDPOINT_URL"] = location.endpoint_url
    if credentials:
        env.update({"AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"]})
    return env


def node_environment() -> dict[str, str]:
    """This worker's environment without what the Dask nanny sets for its own processes: it pins OpenMP,
    MKL and OpenBLAS to one thread (``distributed.nanny.pre-spawn-environ``), which would make the node's
    TF and OpenVINO measure single-threaded inference. Nor what a pytest that started the cluster leaves
    (an xdist worker's ``PYTEST_XDIST_WORKER`` turns pytest-benchmark off in the node's own session)."""
    import dask

    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    for name, value in (dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}).items():
        if env.get(name) == str(value):
            env.pop(name)
    return env


def _first_failure(files: Mapping[str, Path]) -> str:
    """Why the suite made no results: the first failed test's last error line, from the node summary."""
    try:
        failed = fileio.read_json_file(files["report.json"]).get("failed_tests") or []
    except (KeyError, ConfigError):
        failed = []
    if failed:
        return f"{failed[0]['test']}: {failed[0]['reason']}"
    return "no test failed; were the latency benchmarks deselected (--pytest-args)?"


def _usage_error(log: Path) -> str:
    """pytest's own ``ERROR: ...`` line (a bad option, an artifact the session could not import), if any."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("ERROR: ")]
    return f": {lines[0].removeprefix('ERROR: ')}" if lines else ""


_PYTEST_EXIT = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}


def _load_prctl() -> Callable[..., int] | None:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl  # Linux; elsewhere the child may outlive a dead worker
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved here: the function below runs between fork and exec, where importing could
_PR_SET_PDEATHSIG = 1   # deadlock on a lock another of the worker's threads held at fork time


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the worker dies, so no orphan publishes results after its node failed."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _host_turn() -> Any:
    """Nodes on one host take turns: a benchmark must not share the cores with another node's."""
    from filelock import FileLock

    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    return FileLock(_LOCK_DIR / "node.lock")


# ------------------------------------------------------------------------------------------------
# Inputs beside the artifact: INT8 calibration images


@dataclass(frozen=True)
class CalibrationSubset:
    """Training images to calibrate INT8 with on every node: a capped subset of a local folder."""

    folder: Path
    images: tuple[data.LabeledImage, ...]
    available: int

    def describe(self) -> str:
        classes = len({image.label for image in self.images})
        return f"{len(self.images)} of the {self.available} images in {self.folder}, spread over {classes} classes"


def calibration_subset(folder: Path, limit: int = CALIBRATION_IMAGES) -> CalibrationSubset:
    """A local ``{class}/{image}`` folder of training images, validated (a one-line DatasetError naming it),
    and at most ``limit`` of its images, the classes taking turns."""
    edge.import_calibration(str(folder), folder)  # validation only: a local folder stays where it is
    images = data.load_dataset(folder, check_images=False).images
    return CalibrationSubset(Path(folder), data.spread_over_classes(images, limit), len(images))


def upload_images(s3: S3Store, images: tuple[data.LabeledImage, ...], key_prefix: str) -> str:
    """Upload labelled images as ``<key_prefix>/<class>/<file name>``; returns the prefix's s3:// URI."""
    for image in images:
        s3.upload_file(image.path, f"{key_prefix}/{image.label}/{image.path.name}")
    return s3.location.uri(key_prefix)


# ------------------------------------------------------------------------------------------------
# Node results: what the suite wrote, summarised


def node_summary(processor: dict[str, Any], parity: list[dict], outcomes: Mapping[str, list[dict]],
                 exitstatus: int) -> dict[str, Any]:
    """What conftest writes with --edgebench-node-report: the part of report.json pytest knows.

    ``parity``: the figures parity tests recorded (``ParityResult.to_json()`` plus ``backend``, ``precision``
    and ``case``, an opaque id). ``outcomes``: ``passed``/``failed``/``skipped`` -> ``[{"test", "reason"}]``.
    A skipped test is published as not run, with its reason: never counted with the passed ones."""
    failed, not_run = list(outcomes.get("failed", [])), list(outcomes.get("skipped", []))
    return {"schema": NODE_SCHEMA, "machine": processor, "exitstatus": exitstatus,
            "parity": {str(figure.get("case", index)): figure for index, figure in enumerate(parity)},
            "tests": {"passed": len(outcomes.get("passed", [])), "failed": len(failed), "not_run": len(not_run)},
            "failed_tests": failed, "not_run_tests": not_run}


def complete_report(files: Mapping[str, Path], run_id: str, node_id: str, out: Path, **extra: Any) -> Path:
    """report.json as published: the pytest summary (if any) plus latency from benchmark.json, node and run.
    Without the pytest summary the test outcomes are unknown (``tests`` is empty), not zero failures."""
    summary = (fileio.read_json_file(files["report.json"]) if "report.json" in files else
               {**node_summary({}, [], {}, 0), "tests": {}})
    benchmark = fileio.read_json_file(files["benchmark.json"])
    if not summary.get("machine"):
        summary["machine"] = (benchmark.get("machine_info") or {}).get("edgebench") or {}
    results = node_results(benchmark)
    summary.update({**results, "speedup_ci": speedup_intervals(results["backends"]), "node_id": node_id,
                    "run_id": run_id, **extra})
    return fileio.write_json(out, summary)


def speedup_intervals(backends: Mapping[str, dict[str, Any]], confidence: float = 0.95) -> dict[str, list[float]]:
    """Per rung, the percentile-bootstrap interval of its speedup over TF FP32 on this node (TF median ÷ rung
    median, each side's raw samples resampled on their own; the gate's statistics). Computed once where the
    samples are, so a merge of many nodes reads intervals instead of bootstrapping. Rungs with fewer than
    ``MIN_CI_SAMPLES`` samples on either side get none."""
    from harness.gate import median_ratio_ci

    reference = np.asarray(backends.get(REFERENCE, {}).get("latency", {}).get("samples_ns") or [], dtype=float)
    intervals = {}
    for label, result in backends.items():
        samples = np.asarray(result["latency"].get("samples_ns") or [], dtype=float)
        if label == REFERENCE or result["describe"].get("backend") in NOT_A_MODEL or \
                min(reference.size, samples.size) < MIN_CI_SAMPLES:
            continue
        intervals[label] = list(median_ratio_ci(samples, reference, confidence))  # median(TF) / median(rung)
    return intervals


def node_results(benchmark: dict[str, Any]) -> dict[str, Any]:
    """Latency per backend x precision from a pytest-benchmark JSON, keyed by the ``label`` the latency
    benchmark puts in ``extra_info`` (``result_label(backend, precision)``; older files: the
    ``latency_backend`` parameter). Each label keeps the backend's ``describe``, the ``precision`` in
    effect, the top-1 ``accuracy`` on the labelled parity images, ``parity`` against TF FP32 (candidates)
    and ``latency`` in ms with the raw samples, as in the run report's ``backends``."""
    backends, throughput = {}, {}
    for bench in benchmark.get("benchmarks", []):
        info = dict(bench.get("extra_info") or {})
        if "images_per_second" in info:
            throughput[info.get("label") or info.get("backend", bench["name"])] = info["images_per_second"]
            continue
        label = info.pop("label", None) or (bench.get("params") or {}).get("latency_backend")
        if not label:
            continue
        accuracy, parity = info.pop("accuracy", None), info.pop("parity", None)
        backends[label] = {"describe": {**info, "backend": info.get("backend", label)},
                           "precision": info.get("precision"), "accuracy": accuracy, "parity": parity,
                           "latency": _latency(bench["stats"])}
    return {"backends": backends, "throughput_images_per_s": throughput}


def _latency(stats: dict[str, Any]) -> dict[str, Any]:
    samples = stats.get("data") or []
    return {"n": len(samples) or stats["rounds"], "median_ms": stats["median"] * 1e3,
            "p90_ms": float(np.percentile(samples, 90)) * 1e3 if samples else stats["max"] * 1e3,
            "min_ms": stats["min"] * 1e3, "mean_ms": stats["mean"] * 1e3,
            "samples_ns": [round(s * 1e9) for s in samples]}


# ------------------------------------------------------------------------------------------------
# Publishing: files first, manifest last


def has_manifest(s3: S3Store) -> bool:
    return s3.location.key(MANIFEST) in s3.list_keys(s3.location.prefix)


def publish_node(s3: S3Store, run_id: str, node_id: str, files: Mapping[str, Path]) -> dict[str, Any]:
    """Upload the node's files, then the manifest naming each with its SHA-256 and size. An upload failure
    (after boto3's own retries) raises before the manifest, so a node is never complete without its files."""
    for name, path in sorted(files.items()):
        s3.upload_file(path, s3.location.key(name))
    manifest = manifest_for(run_id, node_id, files)
    with tempfile.TemporaryDirectory() as tmp:
        s3.upload_file(fileio.write_json(Path(tmp) / MANIFEST, manifest), s3.location.key(MANIFEST))
    return manifest


def manifest_for(run_id: str, node_id: str, files: Mapping[str, Path]) -> dict[str, Any]:
    entries = {name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for name, path in sorted(files.items())}
    return {"schema": MANIFEST_SCHEMA, "run_id": run_id, "node_id": node_id, "files": entries,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def publish_failure(s3: S3Store, node_id: str, reason: str, log: Path | None = None) -> None:
    """failure.json (reason and log tail) and the log, never a manifest: the node stays incomplete."""
    with tempfile.TemporaryDirectory() as tmp:
        if log is not None and log.is_file():
            s3.upload_file(log, s3.location.key("log.txt"))
        document = {"node_id": node_id, "reason": reason, "log_tail": log_tail(log),
                    "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        s3.upload_file(fileio.write_json(Path(tmp) / FAILURE, document), s3.location.key(FAILURE))


def log_tail(log: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if log is None or not log.is_file():
        return ""
    return "\n".join(log.read_text(errors="replace").rstrip().splitlines()[-lines:])


def upload_results(location: S3Location, run_id: str, node_id: str, files: Mapping[str, Path],
                   credentials: Mapping[str, str] | None = None) -> str:
    """``edgebench upload``: a node that ran ``pytest -m edge`` by hand publishes like a fleet node."""
    for name, path in files.items():
        if name not in NODE_FILES:
            raise ConfigError(f"{name}: not a node result file; upload {', '.join(NODE_FILES)}")
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such file; pass the files pytest wrote")
    if "benchmark.json" not in files:
        raise ConfigError("no benchmark.json: run `pytest -m edge --benchmark-save-data --benchmark-json=FILE` "
                          "and pass FILE with --benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        files = {**files, "report.json": complete_report(files, run_id, node_id, Path(tmp) / "report.json")}
        s3 = S3Store(location, dict(credentials) if credentials else None).under("runs", run_id, node_id)
        publish_node(s3, run_id, node_id, files)
        return s3.location.uri(s3.location.prefix) + "/"


# ------------------------------------------------------------------------------------------------
# The parent: one task per worker


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


def run_fleet(client: Any, spec: NodeSpec, poll_s: float = 0.5,
              on_update: Callable[[NodeOutcome], None] | None = None,
              job_ended: Callable[[str, bool], str | None] | None = None) -> FleetResult:
    """Run ``spec`` once on every worker of ``client``'s cluster (``spec.node_id`` is set per worker) and wait
    for all: a node that fails, times out or loses its worker is recorded; the others' results stay.

    ``job_ended(job_id, worker_gone)``: for workers in batch jobs, the scheduler's reason a failed node's job
    ended (None while it runs); it becomes the node's failure reason (a walltime kill, a cancelled job)."""
    from harness.clusters import batch_job_id

    start = time.monotonic()
    workers = client.scheduler_info()["workers"]
    if not workers:
        raise ConfigError("the cluster has no workers; start some (or check the job queue) and run again")
    hostnames = client.run(socket.gethostname)
    jobs = client.run(batch_job_id) if job_ended else {}
    pending = {}
    for address, info in workers.items():
        node_id = node_id_for(hostnames.get(address, info.get("host", address)), info.get("name", address))
        node_spec = dataclasses.replace(spec, node_id=node_id)
        future = client.submit(run_node, node_spec, workers=[address], allow_other_workers=False, pure=False,
                               key=f"edgebench-node-{spec.run_id}-{node_id}-{uuid.uuid4().hex[:8]}")
        pending[future] = (node_spec, address)
    result = FleetResult(spec.run_id)
    deadline = time.monotonic() + spec.timeout_s + 120  # the node enforces its own timeout; this is a backstop
    while pending:
        time.sleep(poll_s)
        alive = set(client.scheduler_info()["workers"])
        for future, (node_spec, address) in list(pending.items()):
            outcome = _check(future, node_spec, address, alive, deadline)
            if outcome is None:
                continue
            del pending[future]
            if not future.done():
                future.cancel()
            scheduler = (job_ended(jobs[address], address not in alive) if outcome.status == "failed"
                         and jobs.get(address) else None)
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
        return future.result()
    except EdgebenchError as exc:
        return NodeOutcome(spec.node_id, "failed", str(exc))
    except Exception as exc:  # KilledWorker, CommClosedError...: the node's worker went away
        return NodeOutcome(spec.node_id, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                           .rstrip(": "))


def _record_parent_failure(spec: NodeSpec, reason: str) -> None:
    try:
        publish_failure(node_store(spec), spec.node_id, reason)
    except StoreError:
        pass  # the fleet result still reports it; S3 is what failed


# ------------------------------------------------------------------------------------------------
# Merge: one folder per node


@dataclass
class MergedRun:
    run_id: str
    nodes: list[dict[str, Any]]  # report.json of each complete node
    failures: list[dict[str, Any]]  # node_id, reason, log_tail

    def to_json(self) -> dict[str, Any]:
        rows = [node_row(n) for n in self.nodes]
        rungs = ladder_rungs(rows)
        for row in rows:  # a rung another node ran and this one did not is visible on this node's row
            row["rungs_not_run"] = [label for label in rungs if label not in row["ladder"]]
            row["verdict"] = node_verdict(row)
        return {"schema": FLEET_SCHEMA, "run_id": self.run_id, "rungs": rungs,
                "processors": processor_rows(rows, rungs), "nodes": rows, "not_run": not_run_summary(rows),
                "failed": self.failures, "openvino_ok": sum(1 for row in rows if row["openvino_ok"]),
                "verdicts": {v: sum(1 for row in rows if row["verdict"] == v) for v in VERDICTS}}


def merge_run(run_dir: Path) -> MergedRun:
    """Read ``run_dir/<node-id>/``: complete nodes have a manifest whose files match; the rest are failed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder; pass s3://BUCKET/runs/<run-id>/ or a local copy")
    nodes, failures = [], []
    for node_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        try:
            if (node_dir / MANIFEST).is_file():
                nodes.append(_complete_node(node_dir))
            elif (node_dir / FAILURE).is_file():
                failure = fileio.read_json_file(node_dir / FAILURE)
                failures.append({"node_id": node_dir.name, "reason": failure.get("reason", "?"),
                                 "log_tail": failure.get("log_tail") or log_tail(node_dir / "log.txt")})
            else:
                failures.append({"node_id": node_dir.name, "reason": "incomplete: no manifest (the node did not "
                                 "finish publishing)", "log_tail": log_tail(node_dir / "log.txt")})
        except ConfigError as exc:
            failures.append({"node_id": node_dir.name, "reason": str(exc), "log_tail": ""})
    if not nodes and not failures:
        raise ConfigError(f"{run_dir}: no node folders in it; is this s3://BUCKET/runs/<run-id>/?")
    return MergedRun(run_dir.name, nodes, failures)


def _complete_node(node_dir: Path) -> dict[str, Any]:
    manifest = fileio.read_json_file(node_dir / MANIFEST)
    for name, entry in manifest.get("files", {}).items():
        path = node_dir / name
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            raise ConfigError(f"{node_dir.name}: {name} listed in the manifest is missing or truncated")
    document = fileio.read_json_file(node_dir / "report.json")
    document.setdefault("node_id", node_dir.name)
    return document


def node_ladder(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each backend x precision the node measured (the null backend is no rung): median latency, speedup over
    TF FP32 on this node, top-1 agreement with TF FP32 and parity verdict (candidates; None for TF itself),
    top-1 accuracy on the labelled parity images."""
    backends = document.get("backends", {})
    reference = backends.get(REFERENCE, {}).get("latency", {}).get("median_ms")
    ladder = {}
    for label, result in backends.items():
        describe = result.get("describe", {})
        if describe.get("backend") in NOT_A_MODEL:
            continue
        parity, median = result.get("parity") or {}, result["latency"]["median_ms"]
        ladder[label] = {"backend": describe.get("backend", label),
                         "precision": result.get("precision") or describe.get("precision"), "median_ms": median,
                         "speedup": reference / median if reference and median else None,
                         "speedup_ci": (document.get("speedup_ci") or {}).get(label),
                         "top1_agreement": parity.get("top1_agreement"), "accuracy": result.get("accuracy"),
                         "within_tolerance": parity.get("within_tolerance") if result.get("parity") else None}
    return ladder


def node_row(document: dict[str, Any]) -> dict[str, Any]:
    """One node: processor identity, its ladder, parity over every figure it published (the parity tests'
    and each rung's), and its test outcomes with passed, failed and not run apart (None: unknown)."""
    machine, ladder = document.get("machine", {}), node_ladder(document)
    verdicts = [(f.get("backend"), f.get("within_tolerance") is True) for f in document.get("parity", {}).values()]
    verdicts += [(rung["backend"], rung["within_tolerance"] is True) for rung in ladder.values()
                 if rung["within_tolerance"] is not None]
    openvino = [ok for backend, ok in verdicts if backend == "openvino"]
    tests = document.get("tests") or {}
    return {"node_id": document.get("node_id"), "cpu": machine.get("cpu_brand", "?"),
            "isa": [f for f in machine.get("isa_flags", []) if f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")],
            "openvino_device": machine.get("openvino_devices", {}).get("CPU", ""), "ladder": ladder,
            "parity_ok": all(ok for _, ok in verdicts) if verdicts else None,
            "openvino_ok": result_label("openvino", "FP32") in ladder and bool(openvino) and all(openvino),
            "tests": {"passed": tests.get("passed"), "failed": tests.get("failed"),
                      "not_run": tests.get("not_run", tests.get("skipped"))},
            "not_run_tests": document.get("not_run_tests", [])}


def node_verdict(row: dict[str, Any]) -> str:
    """One of VERDICTS. Fail: a check out of tolerance or a failed test. Pass: no test failed, every rung the
    fleet measured ran here, and parity was measured and held. Not run: anything else (a missing rung, no
    parity figure, unknown outcomes): never passing by absence. Tests a node skips for what its processor
    lacks (FP16 on a CPU without it, a runtime with no wheel) are counted and listed as not run beside the
    verdict; demoting every such node would make "pass" unreachable on most processors."""
    tests = row["tests"]
    if row["parity_ok"] is False or tests["failed"]:
        return "fail"
    ran_everything = tests["passed"] is not None and not row["rungs_not_run"]
    return "pass" if ran_everything and row["parity_ok"] else "not run"


def ladder_rungs(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every rung any node measured, in ladder order (TF FP32 first, then each backend by precision)."""
    rungs = {label: {"backend": r["backend"], "precision": r["precision"]} for row in rows
             for label, r in row["ladder"].items()}
    order = {p: i for i, p in enumerate(PRECISIONS)}
    return dict(sorted(rungs.items(), key=lambda item: (item[0] != REFERENCE, item[1]["backend"],
                                                         order.get(item[1]["precision"], len(order)), item[0])))


def processor_rows(rows: list[dict[str, Any]], rungs: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Node rows grouped by CPU brand: ISA, OpenVINO device name, node verdicts, tests not run, and the
    precision ladder over the group's nodes (a rung no node of the group ran shows 0 nodes)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["cpu"], []).append(row)
    return [{"cpu": cpu, "nodes": len(members), "isa": members[0]["isa"],
             "openvino_device": members[0]["openvino_device"], "parity_ok": _all_ok(m["parity_ok"] for m in members),
             "verdicts": {v: sum(1 for m in members if m["verdict"] == v) for v in VERDICTS},
             "not_run": sum(m["tests"]["not_run"] or 0 for m in members),
             "ladder": [_rung(label, rung, members) for label, rung in rungs.items()]}
            for cpu, members in sorted(groups.items())]


def _rung(label: str, rung: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    """One rung over a processor's nodes: medians of latency and speedup, the worst node's top-1 agreement
    and accuracy, and how many of the nodes that ran it held parity."""
    ran = [m["ladder"][label] for m in members if label in m["ladder"]]
    judged = [r["within_tolerance"] for r in ran if r["within_tolerance"] is not None]
    return {"label": label, **rung, "nodes_ran": len(ran), "median_ms": _median_of(ran, "median_ms"),
            "speedup": _median_of(ran, "speedup"), "top1_agreement": _min_of(ran, "top1_agreement"),
            "accuracy": _min_of(ran, "accuracy"), "within_tolerance": sum(judged), "judged": len(judged)}


def not_run_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tests not run, by test and reason, with how many nodes did not run them (most first)."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        for item in row["not_run_tests"]:
            key = (item.get("test", "?"), item.get("reason", ""))
            counts[key] = counts.get(key, 0) + 1
    return [{"test": test, "reason": reason, "nodes": n}
            for (test, reason), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _all_ok(values: Iterable[bool | None]) -> bool | None:
    """False if any is False, None if any is unknown, True only if every one is True."""
    values = list(values)
    return False if False in values else (None if None in values or not values else True)


def _median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return float(np.median(values)) if values else None


def _min_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return min(values) if values else None


# ------------------------------------------------------------------------------------------------
# Getting results to the merge


@contextmanager
def results_store(location: S3Location | None) -> Iterator[tuple[S3Location, Mapping[str, str] | None]]:
    """The given bucket (standard credential chain), or the embedded offline S3 for as long as the run lasts:
    a moto server on 127.0.0.1 that the local cluster's workers reach like any endpoint."""
    from harness.store import FAKE_CREDENTIALS, embedded_s3

    if location is not None:
        S3Store(location).ensure_bucket()
        yield location, None
        return
    with embedded_s3() as endpoint:
        embedded = S3Location("edgebench", "", "us-east-1", endpoint)
        S3Store(embedded, FAKE_CREDENTIALS).ensure_bucket(create=True)
        yield embedded, FAKE_CREDENTIALS


def download_run(location: S3Location, run_id: str, dest: Path,
                 credentials: Mapping[str, str] | None = None) -> Path:
    """Copy ``runs/<run_id>/`` to ``dest`` (fresh), node folders as they are in S3."""
    s3 = S3Store(location, dict(credentials) if credentials else None)
    with fileio.staged_dir(dest) as staging:
        s3.download_tree(run_prefix(location, run_id), staging)
    return dest


def parse_run_uri(uri: str) -> tuple[str, str, str]:
    """``s3://BUCKET/[PREFIX/]runs/<run-id>/`` -> (bucket, prefix, run id)."""
    from harness.store import parse_s3_uri

    bucket, key = parse_s3_uri(uri)
    parts = [p for p in key.split("/") if p]
    if len(parts) < 2 or parts[-2] != "runs":
        raise ConfigError(f"{uri}: expected s3://BUCKET/runs/<run-id>/ (optionally with a prefix before runs/)")
    return bucket, "/".join(parts[:-2]), parts[-1]


def write_merged(merged: MergedRun, out_dir: Path) -> tuple[Path, Path]:
    """``fleet-report.json`` and ``report.html`` in ``out_dir``."""
    from harness.fleet_html import render_fleet_html

    summary = merged.to_json()
    json_path = fileio.write_json(out_dir / "fleet-report.json", summary)
    return json_path, render_fleet_html(summary, out_dir / "report.html")


def openvino_headline(summary: dict[str, Any]) -> str:
    """The seed's count, read from results instead of logs: nodes that ran OpenVINO FP32 with every OpenVINO
    parity check held, out of every node of the run (failed ones included)."""
    total = len(summary["nodes"]) + len(summary["failed"])
    return f"{summary['openvino_ok']} out of {total} nodes ran on OpenVINO"


def headline(summary: dict[str, Any]) -> str:
    verdicts = summary["verdicts"]
    return (f"{openvino_headline(summary)} (FP32 measured, every OpenVINO parity check held). "
            f"{len(summary['nodes'])} node(s) complete: {verdicts['pass']} passed, {verdicts['not run']} with tests "
            f"not run, {verdicts['fail']} failing; {len(summary['failed'])} failed to finish")


def report_tables(summary: dict[str, Any]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The fleet report's tables as (header, rows of text), shared by the terminal and the HTML renderers."""
    processors = [[p["cpu"], str(p["nodes"]), " ".join(p["isa"]), p["openvino_device"], _ok(p["parity_ok"]),
                   " / ".join(f"{p['verdicts'][v]} {v}" for v in VERDICTS), str(p["not_run"])]
                  for p in summary["processors"]]
    ladder = [[p["cpu"], r["label"], r["precision"] or "?", f"{r['nodes_ran']}/{p['nodes']}", _fmt(r["median_ms"]),
               _times(r["speedup"]), "reference" if r["label"] == REFERENCE else _fraction(r["top1_agreement"]),
               _fraction(r["accuracy"]), f"{r['within_tolerance']}/{r['judged']}" if r["judged"] else "–"]
              for p in summary["processors"] for r in p["ladder"]]
    nodes = [[r["node_id"], r["cpu"], r["verdict"], " ".join(r["ladder"]), " ".join(r["rungs_not_run"]) or "–",
              _ok(r["parity_ok"]), *(_count(r["tests"][k]) for k in ("passed", "failed", "not_run"))]
             for r in summary["nodes"]]
    not_run = [[item["test"], item["reason"], str(item["nodes"])] for item in summary["not_run"]]
    return {"Per processor": (["CPU", "nodes", "ISA", "OpenVINO CPU device", "parity", "node verdicts",
                               "tests not run"], processors),
            "Precision ladder": (["CPU", "rung", "in effect", "nodes ran", "median ms", "× TF FP32",
                                  "top-1 vs TF (worst node)", "accuracy (worst node)", "within tolerance"], ladder),
            "Per node": (["node", "CPU", "verdict", "rungs run", "rungs not run", "parity", "passed", "failed",
                          "not run"], nodes),
            "Not run": (["test", "reason", "nodes"], not_run)}


def fleet_table(merged: MergedRun, not_run_rows: int = 10) -> Any:
    """The terminal summary: per processor, the precision ladder, and the most common tests not run."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = merged.to_json()
    tables = []
    for title, (header, rows) in report_tables(summary).items():
        if title == "Per node" or not rows:
            continue
        shown = rows[:not_run_rows] if title == "Not run" else rows
        more = f" (the {len(shown)} most common of {len(rows)})" if len(shown) < len(rows) else ""
        table = Table(title=f"{title}{more}", title_justify="left")
        for column in header:
            table.add_column(column, overflow="fold", no_wrap=column == "rung")
        for row in shown:
            table.add_row(*map(Text, row))  # plain text: test ids hold brackets rich would read as markup
        tables.append(table)
    return Group(Text(f"edgebench fleet {merged.run_id}: {headline(summary)}"), *tables)


def _ok(value: bool | None) -> str:
    return {True: "within tolerance", False: "OUT OF TOLERANCE", None: "not measured"}[value]


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
