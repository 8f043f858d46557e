"""One stored result: a parsed ``report.json`` or pytest-benchmark JSON -> :class:`StoredResult`, a
:class:`Point` per benchmark, under the :class:`MachineKey` of the machine that measured them.

The machine key (:class:`MachineKey`): CPU brand, usable CPUs, ISA flags, OpenVINO device names, and the
versions of the packages that decide the kernels (openvino, tensorflow). The processor identity comes from
``machine_info.edgebench`` (benchmark JSON) or ``machine`` (report.json), both
:func:`harness.measure.processor_identity`; a pytest-benchmark file without it is keyed by pytest-benchmark's
own ``machine_info.cpu`` (brand, flags) with the versions unknown. Usable CPUs are in the key although the
brief of issue 12 did not name them: the same processor with 2 or 8 usable CPUs is two latency regimes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from harness.measure import isa_summary

RUN_KIND, BENCH_KIND = "edgebench run", "pytest-benchmark"
KEY_PACKAGES = (("openvino", ("openvino",)), ("tensorflow", ("tensorflow-cpu", "tensorflow")))


@dataclass(frozen=True, order=True)
class MachineKey:
    """What makes two results comparable: same processor, same CPUs, same ISA, same runtimes."""

    cpu_brand: str
    usable_cpus: int | None
    isa_flags: tuple[str, ...]
    openvino_devices: tuple[tuple[str, str], ...]
    versions: tuple[tuple[str, str], ...]

    @classmethod
    def from_identity(cls, machine: Mapping[str, Any]) -> MachineKey:
        """From :func:`harness.measure.processor_identity` as stored (``machine_info.edgebench``, ``machine``)."""
        packages = machine.get("packages") or {}
        versions = tuple(
            (name, next((str(packages[p]) for p in spellings if packages.get(p)), "unknown"))
            for name, spellings in KEY_PACKAGES
        )
        cpus = machine.get("usable_cpus") or machine.get("logical_cpus")
        return cls(
            str(machine.get("cpu_brand") or "unknown"),
            int(cpus) if isinstance(cpus, int) else None,
            tuple(sorted(str(f) for f in machine.get("isa_flags") or ())),
            tuple(sorted((str(k), str(v)) for k, v in (machine.get("openvino_devices") or {}).items())),
            versions,
        )

    @classmethod
    def from_pytest_cpu(cls, cpu: Mapping[str, Any]) -> MachineKey:
        """From pytest-benchmark's own ``machine_info.cpu`` (py-cpuinfo) where edgebench's identity is absent."""
        from harness.measure import ISA_FLAGS

        flags = set(cpu.get("flags") or ())
        count = cpu.get("count")
        return cls(
            str(cpu.get("brand_raw") or "unknown"),
            count if isinstance(count, int) else None,
            tuple(sorted(f for f in ISA_FLAGS if f in flags)),
            (),
            tuple((name, "unknown") for name, _ in KEY_PACKAGES),
        )

    def label(self) -> str:
        isa = isa_summary(self.isa_flags, sep=" ")
        devices = "; ".join(f"{k}: {v}" for k, v in self.openvino_devices) or "OpenVINO devices unknown"
        versions = ", ".join(f"{k} {v}" for k, v in self.versions)
        cpus = f"{self.usable_cpus} CPUs" if self.usable_cpus else "CPUs unknown"
        return f"{self.cpu_brand}, {cpus}, {isa} | {devices} | {versions}"

    def slug(self) -> str:
        """A folder name: the brand, readable, and a hash of the whole key."""
        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:8]
        return f"{safe_name(self.cpu_brand)[:40]}-{digest}"

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_brand": self.cpu_brand,
            "usable_cpus": self.usable_cpus,
            "isa_flags": list(self.isa_flags),
            "openvino_devices": dict(self.openvino_devices),
            "versions": dict(self.versions),
        }


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


@dataclass(frozen=True)
class Point:
    """One benchmark in one stored result."""

    median_ms: float
    n: int  # raw samples behind the median (0: only the stored median was there)
    compensated: float | None = None  # median of the per-turn model ÷ reference ratios (drift record)
    digest: str = ""  # of the raw samples: the same measurements stored twice are recognised by it


@dataclass(frozen=True)
class StoredResult:
    source: str  # the user's file or URI
    kind: str  # RUN_KIND or BENCH_KIND
    when: datetime
    key: MachineKey
    benchmarks: Mapping[str, Point]
    fingerprint: str  # identical measurements stored twice share it


def parse_document(document: Any, source: str) -> StoredResult:
    """One stored result from a parsed JSON document; ValueError (the reason to skip it) otherwise."""
    if not isinstance(document, dict):
        raise ValueError("not a result: a JSON object is expected")
    schema = str(document.get("schema", ""))
    if schema.startswith(("edgebench.run/", "edgebench.node/")):
        return _from_report(document, source)
    if isinstance(document.get("benchmarks"), list):
        return _from_benchmark(document, source)
    if schema.startswith(("edgebench.fleet/", "edgebench.merged/", "edgebench.history/")):
        raise ValueError("merged summary of other results (they are read from their own files)")
    hint = f"schema {schema!r}" if schema else "no 'benchmarks' list and no edgebench schema"
    raise ValueError(f"not a stored result ({hint}): neither a pytest-benchmark JSON nor an edgebench report")


def _from_benchmark(document: dict[str, Any], source: str) -> StoredResult:
    machine: dict[str, Any] = document["machine_info"] if isinstance(document.get("machine_info"), dict) else {}
    identity = machine.get("edgebench")
    if isinstance(identity, dict):
        key = MachineKey.from_identity(identity)
    elif isinstance(machine.get("cpu"), dict):
        key = MachineKey.from_pytest_cpu(machine["cpu"])
    else:
        raise ValueError(
            "pytest-benchmark JSON without machine_info (no processor to key it by); pass an "
            "unmodified --benchmark-json file"
        )
    when = _when(document.get("datetime"), "datetime")
    entries = [b for b in document["benchmarks"] if isinstance(b, dict)]
    labels = [_label(b) for b in entries]
    benchmarks: dict[str, Point] = {}
    for bench, label in zip(entries, labels, strict=True):
        name = label if label and labels.count(label) == 1 else str(bench.get("fullname") or bench.get("name") or "")
        stats: dict[str, Any] = bench["stats"] if isinstance(bench.get("stats"), dict) else {}
        point = _point(stats.get("data"), 1e3, stats.get("median"), _compensated(bench.get("extra_info")))
        if name and point is not None:
            benchmarks[name] = point
    if not benchmarks:
        raise ValueError("pytest-benchmark JSON with no usable benchmark (each needs stats.median or stats.data)")
    return StoredResult(source, BENCH_KIND, when, key, benchmarks, _fingerprint(BENCH_KIND, key, benchmarks))


def _label(bench: dict[str, Any]) -> str | None:
    info = bench.get("extra_info")
    label = info.get("label") if isinstance(info, dict) else None
    return str(label) if label else None


def _from_report(document: dict[str, Any], source: str) -> StoredResult:
    machine = document.get("machine")
    if not isinstance(machine, dict) or not machine:
        raise ValueError("edgebench report without its machine (processor identity); re-run to record it")
    when = _when(document.get("created") or _run_id_time(document.get("run_id")), "created")
    benchmarks: dict[str, Point] = {}
    for label, result in (document.get("backends") or {}).items():
        latency = result.get("latency") if isinstance(result, dict) else None
        if isinstance(latency, dict):
            point = _point(latency.get("samples_ns"), 1e-6, _ms_to_s(latency.get("median_ms")), None)
            if point is not None:
                benchmarks[str(label)] = point
    if not benchmarks:
        raise ValueError("edgebench report with no backend latency in it")
    kind = RUN_KIND if str(document.get("schema")).startswith("edgebench.run/") else BENCH_KIND
    key = MachineKey.from_identity(machine)
    return StoredResult(source, kind, when, key, benchmarks, _fingerprint(kind, key, benchmarks))


def _ms_to_s(value: Any) -> float | None:
    return value / 1e3 if isinstance(value, int | float) else None


def _point(samples: Any, to_ms: float, median_s: Any, compensated: float | None) -> Point | None:
    """Median of the raw samples (seconds × 1e3 or ns × 1e-6 -> ms), or the stored median (s) without them."""
    if isinstance(samples, list) and samples:
        try:
            values = np.asarray(samples, dtype=np.float64) * to_ms
        except (TypeError, ValueError):
            return None
        if values.ndim == 1 and np.all(np.isfinite(values)) and np.all(values >= 0):
            digest = hashlib.sha256(values.tobytes()).hexdigest()
            return Point(float(np.median(values)), int(values.size), compensated, digest)
        return None
    if isinstance(median_s, int | float) and math.isfinite(median_s) and median_s >= 0:
        return Point(float(median_s) * 1e3, 0, compensated)
    return None


def _compensated(extra_info: Any) -> float | None:
    """Median per-turn model ÷ reference ratio of the drift record (harness.gate.drift), where there is a valid one."""
    try:
        from harness.gate import drift
    except ImportError:  # a checkout without drift compensation: raw latency only
        return None
    record = extra_info.get(drift.FIELD) if isinstance(extra_info, dict) else None
    if record is None:
        return None
    try:
        ratios = drift.compensated_series(record)
    except ValueError:
        return None
    return float(np.median(ratios)) if ratios.size else None


def _when(value: Any, field_name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        raise ValueError(f"no usable timestamp ({field_name}: {str(value)[:40]!r}) to order it by") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _run_id_time(run_id: Any) -> str | None:
    """``20261126T005510Z-ea66`` (harness.workflow.new_run_id) -> ISO time; None for other ids."""
    match = re.match(r"(\d{8}T\d{6})Z", str(run_id or ""))
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat() if match else None


def _fingerprint(kind: str, key: MachineKey, benchmarks: Mapping[str, Point]) -> str:
    """Equal for the same measurements stored twice. Not the timestamp: pytest-benchmark stamps its
    --benchmark-json and its autosave a few milliseconds apart."""
    items = sorted((name, p.digest or repr(p.median_ms), repr(p.compensated)) for name, p in benchmarks.items())
    return hashlib.sha256(repr((kind, key, items)).encode()).hexdigest()
