"""Results in S3: a node publishes its files first and ``manifest.json`` last (a node folder without a
manifest is never complete, whatever else it holds), or ``failure.json`` and its log; the merge side
downloads a run folder back (``download_run``) or works in the embedded S3 (``results_store``)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import fileio
from harness.errors import ConfigError
from harness.fleet.results import complete_report
from harness.store import S3Location, S3Store, sha256_file

MANIFEST_SCHEMA = "edgebench.manifest/1"
MANIFEST, FAILURE = "manifest.json", "failure.json"
NODE_FILES = ("benchmark.json", "report.json", "junit.xml", "log.txt")
LOG_TAIL_LINES = 20


def run_prefix(location: S3Location, run_id: str) -> str:
    return location.key("runs", run_id)


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
    entries = {
        name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for name, path in sorted(files.items())
    }
    return {
        "schema": MANIFEST_SCHEMA,
        "run_id": run_id,
        "node_id": node_id,
        "files": entries,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def publish_failure(s3: S3Store, node_id: str, reason: str, log: Path | None = None) -> None:
    """failure.json (reason and log tail) and the log, never a manifest: the node stays incomplete."""
    with tempfile.TemporaryDirectory() as tmp:
        if log is not None and log.is_file():
            s3.upload_file(log, s3.location.key("log.txt"))
        document = {
            "node_id": node_id,
            "reason": reason,
            "log_tail": log_tail(log),
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        s3.upload_file(fileio.write_json(Path(tmp) / FAILURE, document), s3.location.key(FAILURE))


def log_tail(log: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if log is None or not log.is_file():
        return ""
    return "\n".join(log.read_text(errors="replace").rstrip().splitlines()[-lines:])


def upload_results(
    location: S3Location,
    run_id: str,
    node_id: str,
    files: Mapping[str, Path],
    credentials: Mapping[str, str] | None = None,
) -> str:
    """``edgebench upload``: a node that ran ``pytest -m edge`` by hand publishes like a fleet node."""
    for name, path in files.items():
        if name not in NODE_FILES:
            raise ConfigError(f"{name}: not a node result file; upload {', '.join(NODE_FILES)}")
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such file; pass the files pytest wrote")
    if "benchmark.json" not in files:
        raise ConfigError(
            "no benchmark.json: run `pytest -m edge --benchmark-save-data --benchmark-json=FILE` "
            "and pass FILE with --benchmark"
        )
    with tempfile.TemporaryDirectory() as tmp:
        files = {**files, "report.json": complete_report(files, run_id, node_id, Path(tmp) / "report.json")}
        s3 = S3Store(location, dict(credentials) if credentials else None).under("runs", run_id, node_id)
        publish_node(s3, run_id, node_id, files)
        return s3.location.uri(s3.location.prefix) + "/"


# ------------------------------------------------------------------------------------------------
# Getting results to the merge


@contextmanager
def results_store(location: S3Location | None) -> Iterator[S3Store]:
    """The given bucket (standard credential chain), or the embedded offline S3 for as long as the run lasts
    (runs and artifacts at the top of its bucket): where the nodes publish and the merge reads. The nodes
    reach it with ``.location`` and ``.credentials`` (None: their own credential chain)."""
    from harness.store import open_store

    with open_store(location, embedded_prefix="") as s3:
        yield s3


def download_run(location: S3Location, run_id: str, dest: Path, credentials: Mapping[str, str] | None = None) -> Path:
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
