"""Where ``edgebench history`` finds stored results, and which files it skips (each file read is parsed by
:mod:`harness.gate.history_records`).

What it reads (a folder, walked recursively, or every ``.json`` under an S3 prefix, read through
:mod:`harness.store` as ``edgebench report s3://…`` does):

- ``edgebench run`` reports (``reports/<run-id>/report.json``, schema ``edgebench.run/*``): one point per
  backend label (``backends[label].latency``), timed by ``created``; the run's own ``work/`` folder is its
  inputs and is not walked;
- pytest-benchmark files (``.benchmarks/**/NNNN_*.json`` and ``--benchmark-json`` output): one point per
  benchmark, named by ``extra_info["label"]`` (a structured field; ``fullname`` where there is none), timed
  by ``datetime``; raw samples (``--benchmark-save-data``) where present, else the stored median;
- fleet node folders (``runs/<run-id>/<node-id>/`` of :mod:`harness.fleet`, or its local copy under
  ``reports/fleet/<run-id>/``; a folder with a manifest or failure.json anywhere): a node counts only with its
  ``manifest.json`` and the files it lists intact; its ``benchmark.json`` is read (its ``report.json`` holds
  the same measurements and is read only where there is no ``benchmark.json``); ``failure.json`` and nodes
  without a manifest are listed as skipped with the reason.

Anything else (unreadable, foreign or bookkeeping JSON) is listed as skipped with its reason, never a
traceback; the same results stored twice (``make test`` writes ``--benchmark-json`` and the autosaved copy
under ``.benchmarks/``) are read once.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.gate.history_records import StoredResult, parse_document

MANIFEST, FAILURE = "manifest.json", "failure.json"  # harness.fleet's node bookkeeping
_PRUNED_DIRS = {".git", ".venv", "__pycache__", "node_modules", ".cache", ".pytest_cache"}


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    problem: bool = True  # False: bookkeeping read elsewhere (a manifest, a node report beside its benchmark)


@dataclass
class Collection:
    results: list[StoredResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def read_results(sources: Sequence[str], endpoint_url: str | None = None, region: str | None = None) -> Collection:
    """Every stored result under each source (a folder, a JSON file, or ``s3://BUCKET[/PREFIX]``). A source
    that does not exist or holds no result at all is a ConfigError naming it; single files that cannot be
    read are listed in ``skipped``."""
    collection = Collection()
    for source in sources:
        before = len(collection.results)
        if str(source).startswith("s3://"):
            with _s3_copy(str(source), endpoint_url, region) as (local, to_uri):
                _read_tree(local, collection, to_uri)
        else:
            path = Path(source)
            if not path.exists():
                raise ConfigError(
                    f"{source}: no such folder or file; pass a folder of stored results (reports/, "
                    ".benchmarks/, a fleet run) or s3://BUCKET/PREFIX"
                )
            _read_tree(path, collection, str)
        if len(collection.results) == before:
            problems = [s for s in collection.skipped if s.source.startswith(str(source))][:3]
            why = "; ".join(f"{s.source}: {s.reason}" for s in problems)
            raise ConfigError(
                f"{source}: no stored results in it (edgebench run report.json, pytest-benchmark "
                f"JSON, fleet node folders){' - skipped ' + why if why else ''}; pass the folder "
                "`edgebench run`, pytest --benchmark-json/--benchmark-autosave or a fleet run wrote"
            )
    collection.results = _deduplicate(collection.results, collection.skipped)
    return collection


@contextmanager
def _s3_copy(uri: str, endpoint_url: str | None, region: str | None) -> Iterator[tuple[Path, Any]]:
    """The ``.json`` objects under an S3 prefix, downloaded (checksums checked) into a temporary folder with
    their key layout; yields it and a function naming a local file by its S3 URI. No region: the CLI's default."""
    from harness.store import S3Location, S3Store, default_region, parse_s3_uri

    bucket, prefix = parse_s3_uri(uri)
    s3 = S3Store(S3Location(bucket, "", region or default_region(), endpoint_url))
    prefix = prefix.strip("/")
    keys = [k for k in s3.list_keys(prefix) if k.endswith(".json")]
    if not keys:
        raise ConfigError(
            f"{uri}: no .json objects under this prefix; pass s3://BUCKET/PREFIX of stored results "
            "(e.g. s3://BUCKET/runs/ or s3://BUCKET/runs/<run-id>/)"
        )
    with tempfile.TemporaryDirectory(prefix="edgebench-history-") as tmp:
        root = Path(tmp)  # keys keep their whole path: a fleet node is known by its runs/<run-id>/<node-id>/
        for key in keys:
            relative = Path(key)
            if relative.is_absolute() or ".." in relative.parts:
                continue
            s3.download_file(key, root / relative)
        yield root / prefix, lambda path: f"s3://{bucket}/{Path(path).relative_to(root).as_posix()}"


def _read_tree(root: Path, collection: Collection, name: Any) -> None:
    if root.is_file():
        _read_file(root, collection, name)
        return
    for folder, _dirs, files in _walk(root):
        if (
            MANIFEST in files
            or FAILURE in files
            or (folder.parent.parent.name in ("runs", "fleet") and {"benchmark.json", "report.json"} & set(files))
        ):
            _read_node(folder, files, collection, name)
            continue
        for file in sorted(files):
            if file.endswith(".json"):
                _read_file(folder / file, collection, name)


def _walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """os.walk in sorted order; a run folder's subfolders (its ``work/`` inputs) and tool folders are pruned."""
    import os

    for folder, dirs, files in os.walk(root):
        path = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in _PRUNED_DIRS)
        if "report.json" in files and _schema(path / "report.json").startswith("edgebench.run/"):
            dirs[:] = []
        yield path, dirs, files


def _schema(path: Path) -> str:
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return ""
    return str(document.get("schema", "")) if isinstance(document, dict) else ""


def _read_node(folder: Path, files: list[str], collection: Collection, name: Any) -> None:
    """A fleet node folder: complete with a manifest whose files are intact; else every file is skipped."""
    jsons = sorted(f for f in files if f.endswith(".json"))
    if MANIFEST not in files:
        reason = _failure_reason(folder / FAILURE)
        collection.skipped.extend(Skipped(name(folder / f), reason) for f in jsons)
        return
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        listed = manifest["files"]
        broken = [
            f
            for f, entry in listed.items()
            if f.endswith(".json") and (not (folder / f).is_file() or (folder / f).stat().st_size != entry["bytes"])
        ]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        collection.skipped.extend(
            Skipped(
                name(folder / f),
                "fleet node whose manifest.json is unreadable; re-publish the node (edgebench fleet run --force)",
            )
            for f in jsons
        )
        return
    if broken:
        collection.skipped.extend(
            Skipped(
                name(folder / f),
                f"fleet node with {', '.join(broken)} missing or "
                "truncated against its manifest; re-download or re-publish it",
            )
            for f in jsons
        )
        return
    chosen = "benchmark.json" if "benchmark.json" in listed else "report.json" if "report.json" in listed else None
    for file in jsons:
        if file == chosen:
            _read_file(folder / file, collection, name)
        elif file == MANIFEST:
            collection.skipped.append(Skipped(name(folder / file), "fleet manifest (bookkeeping)", problem=False))
        elif file == "report.json" and chosen == "benchmark.json":
            collection.skipped.append(
                Skipped(
                    name(folder / file),
                    "the node's summary of the benchmark.json beside it (read that instead)",
                    problem=False,
                )
            )
        else:
            collection.skipped.append(Skipped(name(folder / file), "not listed in the node's manifest.json"))


def _failure_reason(path: Path) -> str:
    try:
        reason = json.loads(path.read_text()).get("reason")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        reason = None
    if reason:
        return f"failed fleet node: {' '.join(str(reason).split())[:200]}"
    return "fleet node without manifest.json (it did not finish publishing); re-run it (edgebench fleet run)"


def _read_file(path: Path, collection: Collection, name: Any) -> None:
    source = name(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if not isinstance(exc, RecursionError) else "nested too deeply"
        collection.skipped.append(Skipped(source, f"not readable JSON ({reason[:200]})"))
        return
    try:
        result = parse_document(document, source)
    except ValueError as exc:
        collection.skipped.append(Skipped(source, str(exc), problem=not str(exc).startswith("merged")))
        return
    collection.results.append(result)


def _deduplicate(results: list[StoredResult], skipped: list[Skipped]) -> list[StoredResult]:
    """The same measurements stored twice (``--benchmark-json`` and ``.benchmarks/`` autosave) count once."""
    seen: dict[str, StoredResult] = {}
    for result in sorted(results, key=lambda r: (r.when, r.source)):
        first = seen.setdefault(result.fingerprint, result)
        if first is not result:
            skipped.append(Skipped(result.source, f"the same results as {first.source}", problem=False))
    return list(seen.values())
