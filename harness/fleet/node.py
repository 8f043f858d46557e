"""One node: the task a Dask worker runs. Skip a node already complete, else run the edge suite in a child
process (``pytest -m edge`` with ``--benchmark-json`` and the node report) against one artifact in S3, and
publish its files (manifest last) or its failure. Nodes that share a host take turns (a file lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import fileio
from harness.errors import ConfigError
from harness.fleet.publish import (
    MANIFEST,
    NODE_FILES,
    has_manifest,
    publish_failure,
    publish_node,
)
from harness.fleet.results import complete_report
from harness.store import S3Location, S3Store

_LOCK_DIR = Path(tempfile.gettempdir()) / "edgebench-node-locks"


@dataclass(frozen=True)
class NodeSpec:
    """Everything a node needs: where the artifact is, where results go, how to run the suite."""

    run_id: str
    node_id: str
    artifact_uri: str
    results: S3Location  # results go under <prefix>/runs/<run_id>/<node_id>/
    test_images_uri: str | None = None
    calibration_uri: str | None = None  # INT8 calibration images ({class}/{image} training images) in S3
    suite_dir: str = str(Path(__file__).resolve().parents[2])  # a checkout holding suites/ and conftest.py
    pytest_args: tuple[str, ...] = ()  # extra selection, e.g. ("-k", "latency")
    timeout_s: float = field(default=1800.0, metadata={"help": "seconds per node"})
    force: bool = field(default=False, metadata={"help": "re-run nodes that are already complete"})
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
    return S3Store(spec.results, dict(spec.credentials) if spec.credentials else None).under(
        "runs", spec.run_id, spec.node_id
    )


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
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(Path(spec.suite_dir) / "suites"),
        "-m",
        "edge",
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--rootdir={spec.suite_dir}",
        "--benchmark-save-data",
        f"--benchmark-json={out / 'benchmark.json'}",
        f"--junitxml={out / 'junit.xml'}",
        f"--edgebench-node-report={out / 'report.json'}",
        f"--edgebench-artifact={spec.artifact_uri}",
    ]
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
        child = subprocess.Popen(
            suite_command(spec, out),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.suite_dir,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            code = child.wait(timeout=spec.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return {"log.txt": log_path}, f"timed out after {spec.timeout_s:g} s (per-node timeout)"
    files = {name: out / name for name in NODE_FILES if (out / name).is_file()}
    if code not in (0, 1):
        return files, (
            f"the edge suite exited with code {code} ({_PYTEST_EXIT.get(code, 'error')})" + _usage_error(log_path)
        )
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
        env.update(
            {
                "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            }
        )
    return env


def node_environment() -> dict[str, str]:
    """This worker's environment without what the Dask nanny sets for its own processes: it pins OpenMP,
    MKL and OpenBLAS to one thread (``distributed.nanny.pre-spawn-environ``), which would make the node's
    TF and OpenVINO measure single-threaded inference. Nor what a pytest that started the cluster leaves
    (an xdist worker's ``PYTEST_XDIST_WORKER`` turns pytest-benchmark off in the node's own session)."""
    import dask

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))
    }
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
_PR_SET_PDEATHSIG = 1  # deadlock on a lock another of the worker's threads held at fork time


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the worker dies, so no orphan publishes results after its node failed."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _host_turn() -> Any:
    """Nodes on one host take turns: a benchmark must not share the cores with another node's."""
    from filelock import FileLock

    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    return FileLock(_LOCK_DIR / "node.lock")
