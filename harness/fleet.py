"""The edge suite on many nodes through Dask, each node's results under ``s3://BUCKET/runs/<run-id>/<node-id>/``.

One Dask worker is one node. The parent submits one task per worker, pinned to it; the task runs the edge
suite (``pytest -m edge`` with ``--benchmark-json`` and the parity check) against one artifact in S3 in a
child process, then publishes the node's files and, last, ``manifest.json``: a node folder without a
manifest is never complete, whatever else it holds. Clusters: a ``LocalCluster`` whose worker processes
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import report
from harness.errors import ConfigError, EdgebenchError, StoreError
from harness.store import S3Location, S3Store, sha256_file

NODE_SCHEMA = "edgebench.node/1"
MANIFEST_SCHEMA = "edgebench.manifest/1"
FLEET_SCHEMA = "edgebench.fleet/1"
MANIFEST, FAILURE = "manifest.json", "failure.json"
NODE_FILES = ("benchmark.json", "report.json", "junit.xml", "log.txt")
LOG_TAIL_LINES = 20
_LOCK_DIR = Path(tempfile.gettempdir()) / "edgebench-node-locks"


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
    return command + list(spec.pytest_args)


def run_suite(spec: NodeSpec, out: Path) -> tuple[dict[str, Path], str]:
    """Run the edge suite in a child process; returns the files made and a failure reason ("" if none).
    Pytest exit 0 (all passed) and 1 (some tests failed: parity out of tolerance, say) both give results."""
    env = {**node_environment(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if spec.results.endpoint_url:
        env["AWS_ENDPOINT_URL"] = spec.results.endpoint_url
    if spec.credentials:
        env.update({"AWS_ACCESS_KEY_ID": spec.credentials["aws_access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": spec.credentials["aws_secret_access_key"]})
    env.setdefault("AWS_DEFAULT_REGION", spec.results.region)
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
        return files, f"the edge suite exited with code {code} ({_PYTEST_EXIT.get(code, 'error')})"
    missing = [name for name in ("benchmark.json", "report.json") if name not in files]
    if missing:
        return files, f"the edge suite wrote no {' or '.join(missing)}: {_first_failure(files)}"
    try:
        complete_report(files, spec.run_id, spec.node_id, files["report.json"], artifact=spec.artifact_uri)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        return files, f"results unreadable: {exc}"
    return files, ""


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
        failed = report.read_json_file(files["report.json"]).get("failed_tests") or []
    except (KeyError, ConfigError):
        failed = []
    if failed:
        return f"{failed[0]['test']}: {failed[0]['reason']}"
    return "no test failed; were the latency benchmarks deselected (--pytest-args)?"


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
# Node results: what the suite wrote, summarised


def node_summary(processor: dict[str, Any], parity: list[dict], outcomes: Mapping[str, list[dict]],
                 exitstatus: int) -> dict[str, Any]:
    """What conftest writes with --edgebench-node-report: the part of report.json pytest knows."""
    return {"schema": NODE_SCHEMA, "machine": processor, "exitstatus": exitstatus,
            "parity": {figure["case"]: figure for figure in parity},
            "tests": {outcome: len(items) for outcome, items in outcomes.items()},
            "failed_tests": outcomes.get("failed", [])}


def complete_report(files: Mapping[str, Path], run_id: str, node_id: str, out: Path, **extra: Any) -> Path:
    """report.json as published: the pytest summary (if any) plus latency from benchmark.json, node and run."""
    summary = (report.read_json_file(files["report.json"]) if "report.json" in files else
               node_summary({}, [], {"passed": [], "failed": [], "skipped": []}, 0))
    benchmark = report.read_json_file(files["benchmark.json"])
    if not summary.get("machine"):
        summary["machine"] = (benchmark.get("machine_info") or {}).get("edgebench") or {}
    summary.update({**node_results(benchmark), "node_id": node_id, "run_id": run_id, **extra})
    return report.write_json(out, summary)


def node_results(benchmark: dict[str, Any]) -> dict[str, Any]:
    """Latency per backend from a pytest-benchmark JSON (``test_infer_latency_batch1[<backend>]``), in the
    run report's shape (``backends.<label>.latency`` in ms with raw samples, ``describe``)."""
    backends, throughput = {}, {}
    for bench in benchmark.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        stats = bench["stats"]
        if "images_per_second" in info:
            throughput[info.get("backend", bench["name"])] = info["images_per_second"]
            continue
        label = (bench.get("params") or {}).get("latency_backend")
        if not label:
            continue
        samples = stats.get("data") or []
        backends[label] = {"describe": {**info, "backend": info.get("backend", label)}, "latency": {
            "n": len(samples) or stats["rounds"], "median_ms": stats["median"] * 1e3,
            "p90_ms": float(np.percentile(samples, 90)) * 1e3 if samples else stats["max"] * 1e3, "min_ms": stats["min"] * 1e3, "mean_ms": stats["mean"] * 1e3,
            "samples_ns": [round(s * 1e9) for s in samples]}}
    return {"backends": backends, "throughput_images_per_s": throughput}


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
        s3.upload_file(report.write_json(Path(tmp) / MANIFEST, manifest), s3.location.key(MANIFEST))
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
        s3.upload_file(report.write_json(Path(tmp) / FAILURE, document), s3.location.key(FAILURE))


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
              on_update: Callable[[NodeOutcome], None] | None = None) -> FleetResult:
    """Run ``spec`` once on every worker of ``client``'s cluster (``spec.node_id`` is set per worker) and wait
    for all: a node that fails, times out or loses its worker is recorded; the others' results stay."""
    start = time.monotonic()
    workers = client.scheduler_info()["workers"]
    if not workers:
        raise ConfigError("the cluster has no workers; start some (or check the job queue) and run again")
    hostnames = client.run(socket.gethostname)
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
            if outcome.status == "failed" and not outcome.seconds:  # the node could not record it itself
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
        return {"schema": FLEET_SCHEMA, "run_id": self.run_id, "processors": processor_rows(rows), "nodes": rows,
                "failed": self.failures, "openvino_ok": sum(1 for row in rows if row["openvino_ok"])}


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
                failure = report.read_json_file(node_dir / FAILURE)
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
    manifest = report.read_json_file(node_dir / MANIFEST)
    for name, entry in manifest.get("files", {}).items():
        path = node_dir / name
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            raise ConfigError(f"{node_dir.name}: {name} listed in the manifest is missing or truncated")
    document = report.read_json_file(node_dir / "report.json")
    document.setdefault("node_id", node_dir.name)
    return document


def _median_ms(document: dict[str, Any], backend: str) -> float | None:
    result = document.get("backends", {}).get(backend)
    return result["latency"]["median_ms"] if result else None


def node_row(document: dict[str, Any]) -> dict[str, Any]:
    machine = document.get("machine", {})
    tf, ov = _median_ms(document, "tf"), _median_ms(document, "openvino")
    parity = document.get("parity", {})  # case id (model-backend-device-precision-batch) -> figures
    ov_parity = [p for case, p in parity.items() if "-openvino-" in f"-{case}-"]
    parity_ok = all(p.get("within_tolerance") for p in parity.values()) if parity else None
    return {"node_id": document.get("node_id"), "cpu": machine.get("cpu_brand", "?"),
            "isa": [f for f in machine.get("isa_flags", []) if f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")],
            "openvino_device": machine.get("openvino_devices", {}).get("CPU", ""),
            "tf_ms": tf, "openvino_ms": ov, "speedup": tf / ov if tf and ov else None,
            "parity_ok": parity_ok, "tests": document.get("tests", {}),
            "openvino_ok": ov is not None and bool(ov_parity) and all(p.get("within_tolerance") for p in ov_parity)}


def processor_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Node rows grouped by CPU brand: nodes, ISA, OpenVINO device name, median TF / OpenVINO latency and
    speedup over the group's nodes."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["cpu"], []).append(row)
    return [{"cpu": cpu, "nodes": len(members), "isa": members[0]["isa"],
             "openvino_device": members[0]["openvino_device"], "tf_ms": _median_of(members, "tf_ms"),
             "openvino_ms": _median_of(members, "openvino_ms"), "speedup": _median_of(members, "speedup"),
             "parity_ok": all(m["parity_ok"] is not False for m in members)}
            for cpu, members in sorted(groups.items())]


def _median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return float(np.median(values)) if values else None


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
    with report.staged_dir(dest) as staging:
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
    from harness.html_report import render_fleet_html

    json_path = report.write_json(out_dir / "fleet-report.json", merged.to_json())
    return json_path, render_fleet_html(merged, out_dir / "report.html")


def fleet_table(merged: MergedRun) -> Any:
    from rich.table import Table

    summary = merged.to_json()
    table = Table(title=f"edgebench fleet {merged.run_id}: {len(merged.nodes)} complete, "
                        f"{summary['openvino_ok']} ran OpenVINO within tolerance, {len(merged.failures)} failed")
    for column in ("processor", "nodes", "ISA", "OpenVINO CPU device", "TF ms", "OV ms", "OV÷TF speedup",
                   "parity"):
        table.add_column(column, justify="left" if column in ("processor", "ISA", "OpenVINO CPU device")
                         else "right", overflow="fold")
    for row in summary["processors"]:
        table.add_row(row["cpu"], str(row["nodes"]), " ".join(row["isa"]), row["openvino_device"],
                      _fmt(row["tf_ms"]), _fmt(row["openvino_ms"]),
                      "–" if row["speedup"] is None else f"{row['speedup']:.2f}×",
                      "ok" if row["parity_ok"] else "[red]out of tolerance[/red]")
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
