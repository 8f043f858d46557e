"""The gate's inputs: a result file or run folder -> :class:`ResultSet`, raw samples per benchmark.

Inputs are two result sets with raw samples: pytest-benchmark JSON written with ``--benchmark-save-data``
(``benchmarks[i].stats.data``, seconds per call) or an edgebench run (``reports/<run-id>/`` or its
``report.json``: ``backends[label].latency.samples_ns``), each benchmark named by its pytest ``fullname``
(name and parameters) or its backend label. Drift records (:mod:`harness.gate.drift`) are read into the
per-turn model ÷ reference series beside the raw samples. Unusable input raises ConfigError with a message
naming the file and what to pass instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.gate import drift
from harness.numeric import FloatArray
from harness.report import RUN_SCHEMA

SAVE_DATA_HINT = "rerun pytest with --benchmark-save-data (and --benchmark-json=FILE)"


@dataclass(frozen=True)
class ResultSet:
    """One input: raw latency samples in seconds per benchmark name, and the processor that ran them."""

    source: str
    cpu_brand: str | None
    samples: Mapping[str, FloatArray]
    # per-turn model/reference ratios (harness.gate.drift) for the benchmarks whose file carries the series
    compensated: Mapping[str, FloatArray] = field(default_factory=dict)


def check_same_processor(base: ResultSet, new: ResultSet, allow_different_machines: bool = False) -> None:
    if allow_different_machines:
        return
    for side in (base, new):
        if not side.cpu_brand:
            raise ConfigError(
                f"{side.source}: no CPU brand in the results, so it cannot be checked that both sides "
                "ran on the same processor; allow it explicitly (--allow-different-machines)"
            )
    if _normalise(base.cpu_brand) != _normalise(new.cpu_brand):
        raise ConfigError(
            f"BASE ran on {base.cpu_brand!r} but NEW on {new.cpu_brand!r}: latencies from different "
            "processors are not comparable; gate against a baseline from the same processor or "
            "allow it explicitly (--allow-different-machines)"
        )


def _normalise(brand: str | None) -> str:
    return " ".join((brand or "").split()).casefold()


def load_results(path: Path, compensate: bool = True) -> ResultSet:
    """A pytest-benchmark JSON, an edgebench ``report.json``, or a run folder holding either (``compensate``
    False: drift records are not read)."""
    file = _result_file(Path(path))
    document = _read_json(file)
    if isinstance(document, dict) and document.get("schema") == RUN_SCHEMA:
        results = _from_run_report(file, document)
    elif isinstance(document, dict) and isinstance(document.get("benchmarks"), list):
        results = _from_pytest_benchmark(file, document, compensate)
    else:
        raise ConfigError(
            f"{file}: neither a pytest-benchmark JSON (no 'benchmarks' list) nor an edgebench report "
            f"(schema {RUN_SCHEMA!r}); pass --benchmark-json output or reports/<run-id>"
        )
    if not results.samples:
        raise ConfigError(
            f"{file}: no benchmarks in it (pytest-benchmark disables itself under xdist: run the "
            "benchmarks with -p no:xdist)"
        )
    return results


def _result_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    for name in ("report.json", "benchmark.json"):
        if (path / name).is_file():
            return path / name
    raise ConfigError(f"{path}: no report.json or benchmark.json in this folder; pass a run folder or a JSON file")


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{file}: not a readable JSON result ({exc}); pass a pytest-benchmark JSON or a run folder"
        ) from None


def _from_pytest_benchmark(file: Path, document: dict[str, Any], compensate: bool = True) -> ResultSet:
    samples: dict[str, FloatArray] = {}
    compensated: dict[str, FloatArray] = {}
    for index, bench in enumerate(document["benchmarks"]):
        name = bench.get("fullname") or bench.get("name") if isinstance(bench, dict) else None
        if not name:
            raise ConfigError(f"{file}: benchmark #{index} has no name; pass an unmodified --benchmark-json file")
        data = (bench.get("stats") or {}).get("data")
        if data is None:
            raise ConfigError(f"{file}: benchmark {name!r} has no raw samples (stats.data); {SAVE_DATA_HINT}")
        if name in samples:
            raise ConfigError(f"{file}: benchmark {name!r} appears twice; gate one run per file")
        samples[name] = _as_samples(file, name, data, scale=1.0)
        record = _get(bench, "extra_info", drift.FIELD) if compensate else None
        if record is not None:
            try:
                compensated[name] = drift.compensated_series(record)
            except ValueError as exc:
                raise ConfigError(
                    f"{file}: benchmark {name!r}: extra_info.{drift.FIELD} is unusable ({exc}); pass "
                    "an unmodified result file, or gate without it (--no-compensation)"
                ) from None
    machine = document.get("machine_info") or {}
    brand = _get(machine, "edgebench", "cpu_brand") or _get(machine, "cpu", "brand_raw")
    return ResultSet(str(file), brand, samples, compensated)


def pool_results(earlier: ResultSet, later: ResultSet, names: Iterable[str]) -> ResultSet:
    """``later`` with the samples (raw and compensated) of ``names`` preceded by ``earlier``'s: re-measurements
    of an inconclusive benchmark are merged by concatenating samples, never by averaging results."""
    samples, compensated = dict(later.samples), dict(later.compensated)
    for name in names:
        if name in earlier.samples and name in later.samples:
            samples[name] = np.concatenate([earlier.samples[name], later.samples[name]])
        if name in earlier.compensated and name in later.compensated:
            compensated[name] = np.concatenate([earlier.compensated[name], later.compensated[name]])
    return ResultSet(later.source, later.cpu_brand, samples, compensated)


def _from_run_report(file: Path, document: dict[str, Any]) -> ResultSet:
    samples: dict[str, FloatArray] = {}
    for label, backend in (document.get("backends") or {}).items():
        data = _get(backend, "latency", "samples_ns")
        if data is None:
            raise ConfigError(
                f"{file}: backend {label!r} has no raw samples (latency.samples_ns); rerun edgebench "
                f"to record them (for pytest-benchmark files: {SAVE_DATA_HINT})"
            )
        samples[label] = _as_samples(file, label, data, scale=1e-9)
    return ResultSet(str(file), _get(document, "machine", "cpu_brand"), samples)


def _as_samples(file: Path, name: str, data: Any, scale: float) -> FloatArray:
    try:
        values = np.asarray(data, dtype=np.float64) * scale
    except (TypeError, ValueError):
        values = np.asarray([np.nan])
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError(
            f"{file}: raw samples of {name!r} are not a list of non-negative numbers; pass an unmodified result file"
        )
    return values


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document
