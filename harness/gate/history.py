"""``edgebench history DIR|s3://…``: every stored node result, grouped per machine, with change points and creep.

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

The machine key (:class:`MachineKey`): CPU brand, usable CPUs, ISA flags, OpenVINO device names, and the
versions of the packages that decide the kernels (openvino, tensorflow). The processor identity comes from
``machine_info.edgebench`` (benchmark JSON) or ``machine`` (report.json), both
:func:`harness.measure.processor_identity`; a pytest-benchmark file without it is keyed by pytest-benchmark's
own ``machine_info.cpu`` (brand, flags) with the versions unknown. Usable CPUs are in the key although the
brief of issue 12 did not name them: the same processor with 2 or 8 usable CPUs is two latency regimes.

Series: per (machine key, kind, benchmark) the runs in time order; per run the median latency of its raw
samples and, where the benchmark stored the drift-compensation record of :mod:`harness.gate.drift`
(``extra_info["edgebench_drift"]``, schema ``edgebench.drift/1``), the median of its per-turn
model ÷ reference ratios. ``metric="auto"`` analyses the compensated series when every run of the series has
one and the raw medians otherwise (the page shows both).

Change points: Apache Otava (``apache-otava``, formerly Datastax's *hunter*, now an Apache incubator project
with releases in 2025), :func:`otava.analysis.compute_change_points`: e-divisive means (Matteson & James)
over sliding windows, then a merge step that keeps only change points whose Student's t-test p-value is below
``max_pvalue`` (Fleming et al., ICPE 2023, "Hunter: Using Change Point Detection to Hunt for Performance
Regressions"). Chosen over MongoDB's ``signal-processing-algorithms`` (the e-divisive of its CI) because that
one cannot be installed beside this project: it requires ``numpy<2`` and ``setuptools<71`` and ships as a
source distribution with a C extension, while this project needs numpy 2 (TensorFlow 2.21, OpenVINO 2026).
Otava's cost: it pins numpy (``==2.2.*`` on Python < 3.14) and scipy (``<1.17``) and brings client libraries
for its own data sources (BigQuery, Postgres, Slack) that edgebench never imports; only
``otava.analysis`` is used. Otava is deterministic (no permutation test), fast (about 2 ms for 30 runs)
and handles the short series a node's history has (it works with fewer than 10 points).

Creep (:func:`creep`): over the last ``creep_window`` runs, Kendall's tau trend test and the Theil–Sen slope
(:mod:`scipy.stats`). Flagged when the trend is significant (p < ``creep_alpha``) and the cumulative change
over the window (slope × runs, relative to the window's fitted start) reaches the gate's minimum effect
(``threshold``, default :class:`harness.gate.GateOptions`'s 5 %), and a straight line fits the window better
than any single step (a step inside the window is a change point, not creep). The finding says how large the largest
run-to-run step in the window was: a creep of 1 %/run over 15 runs never moves two consecutive runs apart by
5 %, so a pairwise gate passes every step. Each change point likewise says whether the run-to-run step across
it reached the threshold; ``missed_by_pairwise`` marks the ones a pairwise gate on consecutive runs would not
have flagged (the step hidden in run-to-run noise, or spread over several runs).

Pure analysis (:func:`analyse`, :func:`creep`, :func:`change_points`) has no I/O; reading is
:func:`read_results`; :func:`build_series` groups; :func:`render_table` is the terminal summary.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.gate.verdicts import GateOptions

RUN_KIND, BENCH_KIND = "edgebench run", "pytest-benchmark"
KEY_PACKAGES = (("openvino", ("openvino",)), ("tensorflow", ("tensorflow-cpu", "tensorflow")))
MANIFEST, FAILURE = "manifest.json", "failure.json"  # harness.fleet's node bookkeeping
_PRUNED_DIRS = {".git", ".venv", "__pycache__", "node_modules", ".cache", ".pytest_cache"}


# ------------------------------------------------------------------------------------------------
# Machine key


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
        versions = tuple((name, next((str(packages[p]) for p in spellings if packages.get(p)), "unknown"))
                         for name, spellings in KEY_PACKAGES)
        cpus = machine.get("usable_cpus") or machine.get("logical_cpus")
        return cls(str(machine.get("cpu_brand") or "unknown"), int(cpus) if isinstance(cpus, int) else None,
                   tuple(sorted(str(f) for f in machine.get("isa_flags") or ())),
                   tuple(sorted((str(k), str(v)) for k, v in (machine.get("openvino_devices") or {}).items())),
                   versions)

    @classmethod
    def from_pytest_cpu(cls, cpu: Mapping[str, Any]) -> MachineKey:
        """From pytest-benchmark's own ``machine_info.cpu`` (py-cpuinfo) where edgebench's identity is absent."""
        from harness.measure import ISA_FLAGS

        flags = set(cpu.get("flags") or ())
        count = cpu.get("count")
        return cls(str(cpu.get("brand_raw") or "unknown"), count if isinstance(count, int) else None,
                   tuple(sorted(f for f in ISA_FLAGS if f in flags)), (),
                   tuple((name, "unknown") for name, _ in KEY_PACKAGES))

    def label(self) -> str:
        isa = " ".join(f for f in self.isa_flags if f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                                          "avx512_fp16", "amx_tile")) or "no AVX2"
        devices = "; ".join(f"{k}: {v}" for k, v in self.openvino_devices) or "OpenVINO devices unknown"
        versions = ", ".join(f"{k} {v}" for k, v in self.versions)
        cpus = f"{self.usable_cpus} CPUs" if self.usable_cpus else "CPUs unknown"
        return f"{self.cpu_brand}, {cpus}, {isa} | {devices} | {versions}"

    def slug(self) -> str:
        """A folder name: the brand, readable, and a hash of the whole key."""
        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:8]
        return f"{safe_name(self.cpu_brand)[:40]}-{digest}"

    def to_json(self) -> dict[str, Any]:
        return {"cpu_brand": self.cpu_brand, "usable_cpus": self.usable_cpus, "isa_flags": list(self.isa_flags),
                "openvino_devices": dict(self.openvino_devices), "versions": dict(self.versions)}


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


# ------------------------------------------------------------------------------------------------
# Reading stored results


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


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    problem: bool = True  # False: bookkeeping read elsewhere (a manifest, a node report beside its benchmark)


@dataclass
class Collection:
    results: list[StoredResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def read_results(sources: Sequence[str], endpoint_url: str | None = None,
                 region: str = "us-east-1") -> Collection:
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
                raise ConfigError(f"{source}: no such folder or file; pass a folder of stored results (reports/, "
                                  ".benchmarks/, a fleet run) or s3://BUCKET/PREFIX")
            _read_tree(path, collection, str)
        if len(collection.results) == before:
            problems = [s for s in collection.skipped if s.source.startswith(str(source))][:3]
            why = "; ".join(f"{s.source}: {s.reason}" for s in problems)
            raise ConfigError(f"{source}: no stored results in it (edgebench run report.json, pytest-benchmark "
                              f"JSON, fleet node folders){' - skipped ' + why if why else ''}; pass the folder "
                              "`edgebench run`, pytest --benchmark-json/--benchmark-autosave or a fleet run wrote")
    collection.results = _deduplicate(collection.results, collection.skipped)
    return collection


@contextmanager
def _s3_copy(uri: str, endpoint_url: str | None, region: str) -> Iterator[tuple[Path, Any]]:
    """The ``.json`` objects under an S3 prefix, downloaded (checksums checked) into a temporary folder with
    their key layout; yields it and a function naming a local file by its S3 URI."""
    from harness.store import S3Location, S3Store, parse_s3_uri

    bucket, prefix = parse_s3_uri(uri)
    s3 = S3Store(S3Location(bucket, "", region, endpoint_url))
    prefix = prefix.strip("/")
    keys = [k for k in s3.list_keys(prefix) if k.endswith(".json")]
    if not keys:
        raise ConfigError(f"{uri}: no .json objects under this prefix; pass s3://BUCKET/PREFIX of stored results "
                          "(e.g. s3://BUCKET/runs/ or s3://BUCKET/runs/<run-id>/)")
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
    for folder, dirs, files in _walk(root):
        if MANIFEST in files or FAILURE in files or (folder.parent.parent.name in ("runs", "fleet") and
                                                     {"benchmark.json", "report.json"} & set(files)):
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
        broken = [f for f, entry in listed.items() if f.endswith(".json") and
                  (not (folder / f).is_file() or (folder / f).stat().st_size != entry["bytes"])]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        collection.skipped.extend(Skipped(name(folder / f), "fleet node whose manifest.json is unreadable; "
                                          "re-publish the node (edgebench fleet run --force)") for f in jsons)
        return
    if broken:
        collection.skipped.extend(Skipped(name(folder / f), f"fleet node with {', '.join(broken)} missing or "
                                          "truncated against its manifest; re-download or re-publish it")
                                  for f in jsons)
        return
    chosen = "benchmark.json" if "benchmark.json" in listed else "report.json" if "report.json" in listed else None
    for file in jsons:
        if file == chosen:
            _read_file(folder / file, collection, name)
        elif file == MANIFEST:
            collection.skipped.append(Skipped(name(folder / file), "fleet manifest (bookkeeping)", problem=False))
        elif file == "report.json" and chosen == "benchmark.json":
            collection.skipped.append(Skipped(name(folder / file), "the node's summary of the benchmark.json "
                                              "beside it (read that instead)", problem=False))
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
    machine = document.get("machine_info") if isinstance(document.get("machine_info"), dict) else {}
    identity = machine.get("edgebench")
    if isinstance(identity, dict):
        key = MachineKey.from_identity(identity)
    elif isinstance(machine.get("cpu"), dict):
        key = MachineKey.from_pytest_cpu(machine["cpu"])
    else:
        raise ValueError("pytest-benchmark JSON without machine_info (no processor to key it by); pass an "
                         "unmodified --benchmark-json file")
    when = _when(document.get("datetime"), "datetime")
    entries = [b for b in document["benchmarks"] if isinstance(b, dict)]
    labels = [_label(b) for b in entries]
    benchmarks: dict[str, Point] = {}
    for bench, label in zip(entries, labels, strict=True):
        name = label if label and labels.count(label) == 1 else str(bench.get("fullname") or bench.get("name") or "")
        stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
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
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat() if match \
        else None


def _fingerprint(kind: str, key: MachineKey, benchmarks: Mapping[str, Point]) -> str:
    """Equal for the same measurements stored twice. Not the timestamp: pytest-benchmark stamps its
    --benchmark-json and its autosave a few milliseconds apart."""
    items = sorted((name, p.digest or repr(p.median_ms), repr(p.compensated)) for name, p in benchmarks.items())
    return hashlib.sha256(repr((kind, key, items)).encode()).hexdigest()


def _deduplicate(results: list[StoredResult], skipped: list[Skipped]) -> list[StoredResult]:
    """The same measurements stored twice (``--benchmark-json`` and ``.benchmarks/`` autosave) count once."""
    seen: dict[str, StoredResult] = {}
    for result in sorted(results, key=lambda r: (r.when, r.source)):
        first = seen.setdefault(result.fingerprint, result)
        if first is not result:
            skipped.append(Skipped(result.source, f"the same results as {first.source}", problem=False))
    return list(seen.values())


# ------------------------------------------------------------------------------------------------
# Series and their analysis (pure functions)


@dataclass(frozen=True)
class Series:
    key: MachineKey
    kind: str
    name: str
    when: tuple[datetime, ...]
    sources: tuple[str, ...]
    points: tuple[Point, ...]

    @property
    def raw(self) -> np.ndarray:
        return np.array([p.median_ms for p in self.points])

    @property
    def compensated(self) -> np.ndarray | None:
        values = [p.compensated for p in self.points]
        return None if any(v is None for v in values) else np.array(values, dtype=float)


def build_series(results: Iterable[StoredResult]) -> list[Series]:
    """One series per (machine key, kind, benchmark), runs in time order."""
    grouped: dict[tuple[MachineKey, str, str], list[tuple[datetime, str, Point]]] = {}
    for result in results:
        for name, point in result.benchmarks.items():
            grouped.setdefault((result.key, result.kind, name), []).append((result.when, result.source, point))
    series = []
    for (key, kind, name), entries in sorted(grouped.items(), key=lambda item: item[0]):
        entries.sort(key=lambda e: (e[0], e[1]))
        series.append(Series(key, kind, name, tuple(e[0] for e in entries), tuple(e[1] for e in entries),
                             tuple(e[2] for e in entries)))
    return series


@dataclass(frozen=True)
class HistoryOptions:
    """How sure and how large; see the module docstring."""

    max_pvalue: float = 0.001  # Otava's default: a change point's t-test p-value must be below it
    min_magnitude: float = 0.0  # Otava: drop change points smaller than this relative change
    window_len: int = 30  # Otava's sliding window (runs)
    threshold: float = GateOptions.threshold  # the pairwise gate's minimum effect
    creep_window: int = 15  # runs at the end of a series tested for a trend
    creep_alpha: float = 0.01  # Kendall's tau p-value below which a trend counts
    min_points: int = 6  # fewer runs: too short to analyse
    metric: str = "auto"  # auto | raw | compensated

    def __post_init__(self) -> None:
        if self.metric not in ("auto", "raw", "compensated"):
            raise ConfigError(f"--metric {self.metric!r}: choose auto, raw or compensated")
        if not 0 < self.max_pvalue < 0.5:
            raise ConfigError(f"--max-pvalue {self.max_pvalue}: choose a p-value between 0 and 0.5 (e.g. 0.001)")
        if not 0 < self.threshold < 10:
            raise ConfigError(f"--threshold {self.threshold}: give a fraction > 0 (0.05 means 5 %)")
        if self.creep_window < 4 or self.min_points < 4:
            raise ConfigError("--creep-window and the minimum history length need at least 4 runs")


@dataclass(frozen=True)
class ChangePoint:
    index: int  # first run after the change
    before: float  # mean of the segment before (Otava's t-test stats)
    after: float
    p_value: float
    step: float  # run-to-run relative change across the change point: values[index] / values[index-1] - 1
    threshold: float

    @property
    def change(self) -> float:
        return self.after / self.before - 1 if self.before else 0.0

    @property
    def missed_by_pairwise(self) -> bool:
        """The consecutive runs across it differ by less than the gate's minimum effect (in its direction)."""
        return (self.step if self.change > 0 else -self.step) < self.threshold

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "before": self.before, "after": self.after, "change": self.change,
                "p_value": self.p_value, "run_to_run_step": self.step, "missed_by_pairwise": self.missed_by_pairwise}


@dataclass(frozen=True)
class Creep:
    start: int  # first run of the window
    runs: int
    slope: float  # relative change per run (Theil–Sen slope ÷ fitted value at the window's start)
    total: float  # cumulative relative change over the window
    p_value: float  # Kendall's tau
    max_step: float  # largest |run-to-run| relative change inside the window
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "runs": self.runs, "slope_per_run": self.slope, "total": self.total,
                "p_value": self.p_value, "max_run_to_run_step": self.max_step, "flagged": self.flagged}


@dataclass(frozen=True)
class Analysis:
    series: Series
    metric: str  # "raw" (median ms) or "compensated" (model ÷ reference)
    values: np.ndarray
    change_points: tuple[ChangePoint, ...]
    creep: Creep | None
    threshold: float = HistoryOptions.threshold  # the pairwise gate's minimum effect the findings compare with
    note: str = ""  # why there is no analysis (too short, metric missing)

    @property
    def findings(self) -> list[str]:
        unit = "latency" if self.metric == "raw" else "compensated latency"
        lines = [f"{'regression' if cp.change > 0 else 'improvement'}: {unit} {cp.change:+.1%} from run "
                 f"{cp.index + 1} ({self.series.when[cp.index]:%Y-%m-%d %H:%M}; p={cp.p_value:.1g}; run-to-run "
                 f"step {cp.step:+.1%}" + (", missed by a pairwise gate" if cp.missed_by_pairwise else "") + ")"
                 for cp in self.change_points]
        if self.creep and self.creep.flagged:
            c = self.creep
            lines.append(f"creep: {unit} {c.total:+.1%} over the last {c.runs} runs ({c.slope:+.2%}/run, Kendall "
                         f"p={c.p_value:.1g}); largest run-to-run step {c.max_step:.1%}"
                         + (f" < the gate's {self.threshold:.0%}: a pairwise gate passes every step"
                            if c.max_step < self.threshold else ""))
        return lines

    @property
    def status(self) -> str:
        if self.note:
            return "not analysed"
        if self.creep and self.creep.flagged and self.creep.total > 0:
            return "creep"
        latest = self.change_points[-1] if self.change_points else None
        if latest is None:
            return "stable"
        return "regression" if latest.change > 0 else "improvement"

    def to_json(self) -> dict[str, Any]:
        s = self.series
        return {"machine": s.key.to_json(), "machine_label": s.key.label(), "kind": s.kind, "benchmark": s.name,
                "metric": self.metric, "status": self.status, "note": self.note, "findings": self.findings,
                "runs": [{"when": w.isoformat(), "source": src, "median_ms": p.median_ms, "n": p.n,
                          "compensated": p.compensated} for w, src, p in zip(s.when, s.sources, s.points, strict=True)],
                "change_points": [cp.to_json() for cp in self.change_points],
                "creep": self.creep.to_json() if self.creep else None}


def change_points(values: Sequence[float], options: HistoryOptions = HistoryOptions()) -> list[ChangePoint]:
    """Otava's change points of one series (values > 0), each with the run-to-run step across it."""
    try:
        from otava.analysis import compute_change_points
    except ImportError:
        raise ConfigError("edgebench history needs Apache Otava for change points: pip install 'edgebench[history]'") \
            from None

    values = np.asarray(values, dtype=float)
    found, _ = compute_change_points(values.tolist(), window_len=options.window_len, max_pvalue=options.max_pvalue,
                                     min_magnitude=options.min_magnitude)
    return [ChangePoint(int(cp.index), float(cp.stats.mean_1), float(cp.stats.mean_2), float(cp.stats.pvalue),
                        float(values[cp.index] / values[cp.index - 1] - 1), options.threshold)
            for cp in found if 0 < cp.index < values.size]


def creep(values: Sequence[float], options: HistoryOptions = HistoryOptions()) -> Creep | None:
    """Trend over the last ``creep_window`` runs: Kendall's tau (significance) and Theil–Sen (size)."""
    from scipy.stats import kendalltau, theilslopes

    values = np.asarray(values, dtype=float)
    window = values[-options.creep_window:]
    if window.size < 4:
        return None
    runs = np.arange(window.size, dtype=float)
    slope, intercept, _, _ = theilslopes(window, runs)
    p_value = float(kendalltau(runs, window).pvalue)
    start = intercept if intercept > 0 else float(np.median(window))
    total = slope * (window.size - 1) / start
    steps = np.abs(window[1:] / window[:-1] - 1)
    flagged = bool(p_value < options.creep_alpha and abs(total) >= options.threshold
                   and _line_beats_one_step(window))
    return Creep(int(values.size - window.size), int(window.size), float(slope / start), float(total), p_value,
                 float(steps.max()), flagged)


def _line_beats_one_step(window: np.ndarray) -> bool:
    """A trend, not a step: a straight line (least squares) fits the window better than the best single step
    (two means, the split anywhere). Both models have two levels of freedom; a step inside the window (which
    the change points report) makes a significant trend too, and is not called creep."""
    runs = np.arange(window.size, dtype=float)
    line = np.polyval(np.polyfit(runs, window, 1), runs)
    line_sse = float(((window - line) ** 2).sum())
    step_sse = min(float(((window[:k] - window[:k].mean()) ** 2).sum() + ((window[k:] - window[k:].mean()) ** 2).sum())
                   for k in range(1, window.size))
    return line_sse < step_sse


def analyse(series: Series, options: HistoryOptions = HistoryOptions()) -> Analysis:
    compensated = series.compensated
    if options.metric == "compensated" or (options.metric == "auto" and compensated is not None):
        metric, values = "compensated", compensated
    else:
        metric, values = "raw", series.raw
    if values is None:
        return Analysis(series, metric, series.raw, (), None, options.threshold, note="no drift-compensated series in every run "
                        "(extra_info['edgebench_drift']); use --metric raw or auto")
    if values.size < options.min_points:
        return Analysis(series, metric, values, (), None, options.threshold,
                        note=f"{values.size} run(s): too short for change points (needs {options.min_points})")
    if np.any(values <= 0):
        return Analysis(series, metric, values, (), None, options.threshold, note="a run's median is 0: nothing to compare")
    return Analysis(series, metric, values, tuple(change_points(values, options)), creep(values, options),
                    options.threshold)


# ------------------------------------------------------------------------------------------------
# Terminal summary


_STATUS_STYLE = {"regression": "bold red", "creep": "bold red", "improvement": "green", "not analysed": "yellow"}


def render_tables(analyses: Sequence[Analysis]) -> list[Any]:
    """One table per machine key (its label the title): each benchmark's runs, status and findings."""
    from rich.table import Table
    from rich.text import Text

    tables: dict[MachineKey, Any] = {}
    for a in analyses:
        table = tables.get(a.series.key)
        if table is None:
            table = tables[a.series.key] = Table(title=a.series.key.label(), title_justify="left")
            for column in ("kind", "benchmark", "runs", "metric", "latest", "status", "findings"):
                table.add_column(column, overflow="fold")
        latest = a.values[-1] if a.values.size else float("nan")
        table.add_row(a.series.kind, a.series.name, str(len(a.series.points)), a.metric,
                      f"{latest:.4g}" + (" ms" if a.metric == "raw" else ""),
                      Text(a.status, style=_STATUS_STYLE.get(a.status, "")),
                      "\n".join(a.findings) or a.note or "no change point")
    return list(tables.values())


def skipped_lines(skipped: Sequence[Skipped]) -> list[str]:
    """One line per file skipped for a problem; the expected ones (bookkeeping, duplicates) counted."""
    lines = [f"skipped {s.source}: {s.reason}" for s in skipped if s.problem]
    expected = [s for s in skipped if not s.problem]
    if expected:
        reasons: dict[str, int] = {}
        for s in expected:
            kind = s.reason.split(" (")[0] if not s.reason.startswith("the same results") else "stored twice"
            reasons[kind] = reasons.get(kind, 0) + 1
        lines.append(f"not read again ({len(expected)}): " + "; ".join(f"{n} {k}" for k, n in reasons.items()))
    return lines


# ------------------------------------------------------------------------------------------------
# The whole command


@dataclass(frozen=True)
class HistoryResult:
    analyses: tuple[Analysis, ...]
    skipped: tuple[Skipped, ...]
    index: Path  # the trend pages' index.html
    json_path: Path

    @property
    def regressions(self) -> tuple[Analysis, ...]:
        return tuple(a for a in self.analyses if a.status in ("regression", "creep"))


def run_history(sources: Sequence[str], out_dir: Path, options: HistoryOptions = HistoryOptions(),
                endpoint_url: str | None = None, region: str = "us-east-1") -> HistoryResult:
    """Read, group, analyse; write ``out_dir/history.json`` and the trend pages (``out_dir/index.html``)."""
    from harness.fileio import write_json
    from harness.gate.history_html import page_path, render_history

    collection = read_results(sources, endpoint_url, region)
    analyses = tuple(analyse(series, options) for series in build_series(collection.results))
    index = render_history(list(analyses), Path(out_dir))
    json_path = write_json(Path(out_dir) / "history.json", {
        "schema": "edgebench.history/1", "sources": [str(s) for s in sources],
        "series": [{**a.to_json(), "page": page_path(a).as_posix()} for a in analyses],
        "skipped": [{"source": s.source, "reason": s.reason} for s in collection.skipped]})
    return HistoryResult(analyses, tuple(collection.skipped), index, json_path)
