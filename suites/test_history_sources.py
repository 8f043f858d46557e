"""``edgebench history`` reading stored results: grouping by machine key, the drift-compensated series, and
real stored runs (written here by pytest-benchmark, and the repo's own)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from harness.gate import history
from harness.gate.history_records import BENCH_KIND, RUN_KIND, MachineKey
from harness.gate.history_sources import read_results
from harness.gate.history_trend import HistoryOptions, analyse, build_series
from harness.measure import processor_identity
from history_helpers import T0, benchmark_json, identity, write

# The pytester fixture restores sys.modules after its test, dropping what the test imported. OpenVINO (a C
# extension that processor_identity imports) cannot be imported twice in one process: imported here, before
# any pytester test, it stays (else every later OpenVINO test in this xdist worker failed).
pytest.importorskip("openvino", reason="OpenVINO is a dependency of edgebench")

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# Reading and grouping


def test_grouping_by_machine_key(tmp_path):
    """Another CPU brand, other ISA flags, another OpenVINO version or CPU count: separate series; another numpy:
    the same series. A run report and a benchmark of the same label stay apart (other timing, other model).
    The --benchmark-json file and its .benchmarks autosave copy count once."""
    machines = {
        "base": identity(),
        "numpy": identity(numpy="2.4.6"),
        "brand": identity(cpu_brand="AMD EPYC Test"),
        "isa": identity(isa_flags=["avx", "avx2", "fma", "sse4_2"]),
        "ov": identity(openvino="2026.5.0"),
        "cpus": identity(usable_cpus=8),
    }
    for i, (name, machine) in enumerate(machines.items()):
        document = benchmark_json(machine, T0 + timedelta(hours=i), {"tf": 10.0, "openvino": 2.0}, seed=i)
        write(tmp_path / name / "benchmark.json", document)
        if name == "base":
            write(tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit" / "0001_abc.json", document)
    run = {
        "schema": "edgebench.run/2",
        "run_id": "20261101T030000Z-ab12",
        "created": (T0 + timedelta(hours=9)).isoformat(),
        "machine": identity(),
        "backends": {"openvino": {"latency": {"median_ms": 3.0, "samples_ns": [3_000_000] * 30}}},
    }
    write(tmp_path / "reports" / "20261101T030000Z-ab12" / "report.json", run)
    write(tmp_path / "reports" / "20261101T030000Z-ab12" / "work" / "edge" / "labels.json", {"cloudy": 0})

    collection = read_results([str(tmp_path)])
    series = build_series(collection.results)
    keys = {s.key for s in series}
    assert len(keys) == 5, [k.label() for k in keys]  # base and numpy share one
    base = MachineKey.from_identity(identity())
    shared = [s for s in series if s.key == base]
    assert {(s.kind, s.name, len(s.points)) for s in shared} == {
        (BENCH_KIND, "tf", 2),
        (BENCH_KIND, "openvino", 2),
        (RUN_KIND, "openvino", 1),
    }
    [duplicate] = [s for s in collection.skipped if s.reason.startswith("the same results as")]
    assert {duplicate.source, duplicate.reason.rsplit(" ", 1)[1]} == {
        str(tmp_path / "base" / "benchmark.json"),
        str(tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit" / "0001_abc.json"),
    } and not duplicate.problem
    assert not any("work" in s.source for s in collection.skipped), "a run's work/ folder is its inputs: not walked"
    assert "2 CPUs" in base.label() and "openvino 2026.4.1" in base.label() and "tensorflow 2.21.0" in base.label()


def test_compensated_series_is_analysed_where_every_run_has_one(tmp_path):
    """Runs whose benchmarks carry the drift record (extra_info['edgebench_drift'], harness.gate.drift's schema):
    the analysed metric is the per-turn model ÷ reference ratio, which shows the 10 % step that the raw
    medians hide under a 30 % speed-regime switch of the whole machine."""
    drift = pytest.importorskip(
        "harness.gate.drift",
        reason="harness.gate.drift (drift compensation, issue 12 items 1-2) is not in this checkout",
    )
    rng = np.random.default_rng(3)
    for run in range(16):
        regime = 1.3 if run % 3 == 0 else 1.0  # the machine switches speed for the whole job
        model = 2.0 * regime * (1.10 if run >= 8 else 1.0)
        document = benchmark_json(identity(), T0 + timedelta(hours=run), {"openvino": model}, seed=run)
        record = {
            "schema": drift.SCHEMA,
            "reference": {"name": "ov-convnet"},
            "model_ns": [[int(model * 1e6 * (1 + 0.01 * rng.standard_normal()))] * 5 for _ in range(20)],
            "reference_ns": [[int(1e6 * regime * (1 + 0.01 * rng.standard_normal()))] * 5 for _ in range(20)],
        }
        document["benchmarks"][0]["extra_info"][drift.FIELD] = record
        write(tmp_path / f"run{run:02d}.json", document)
    [series] = build_series(read_results([str(tmp_path)]).results)
    compensated = analyse(series)
    raw = analyse(series, HistoryOptions(metric="raw"))
    assert compensated.metric == "compensated" and [cp.index for cp in compensated.change_points] == [8]
    assert not any(cp.index == 8 for cp in raw.change_points), raw.change_points
    from harness.gate.history_html import page_path, render_history

    render_history([compensated], tmp_path / "pages")
    page = (tmp_path / "pages" / page_path(compensated)).read_text()
    assert "Trend: drift-compensated" in page and page.count("<img") == 1 and "from run 9" in page


# ------------------------------------------------------------------------------------------------
# Real stored runs


_NULL_BENCH = """
import pytest
from harness.backends import BackendConfig
from harness.backends.null import NullBackend
import numpy as np

def test_infer_latency_batch1(benchmark):
    backend = NullBackend()
    benchmark.group = "infer-batch1"
    benchmark.extra_info.update({**backend.describe(), "label": "null"})
    benchmark.pedantic(backend.infer, args=(np.zeros((1, 4), np.float32),), warmup_rounds=5, rounds=100, iterations=1)
"""


def test_real_runs_written_by_pytest_benchmark(pytester, tmp_path, monkeypatch):
    """Three real pytest-benchmark sessions (the null backend timed as the latency suite times it, this
    machine's identity put in machine_info by the edgebench pytest plugin, which its entry point loads), each
    writing --benchmark-json and an autosave under .benchmarks/: history reads 3 runs of one series keyed by
    this machine."""
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed (the [test] extra)")
    pytester.makepyfile(test_null=_NULL_BENCH)
    for run in range(3):
        # pytest-benchmark disables itself wherever PYTEST_XDIST_WORKER is set (make test runs this under -n 2).
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
        result = pytester.runpytest_inprocess(
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "--benchmark-save-data",
            f"--benchmark-json={pytester.path / f'run{run}.json'}",
            "--benchmark-autosave",
            f"--benchmark-storage=file://{pytester.path}/.benchmarks",
        )
        result.assert_outcomes(passed=1)
    collection = read_results([str(pytester.path)])
    assert len(list((pytester.path / ".benchmarks").rglob("*.json"))) == 3
    [series] = build_series(collection.results)
    assert series.name == "null" and len(series.points) == 3 and all(p.n == 100 for p in series.points)
    assert series.key == MachineKey.from_identity(processor_identity())
    assert sum(1 for s in collection.skipped if s.reason.startswith("the same results as")) == 3


def test_repo_stored_runs_are_read_or_skipped_with_a_reason(tmp_path):
    """The repo's own reports/ and .benchmarks/ (after `make test` / `edgebench run`): every JSON file is either
    read into a series or listed as skipped with its reason."""
    sources = [str(ROOT / d) for d in ("reports", ".benchmarks") if any((ROOT / d).rglob("*.json"))]
    if not sources:
        pytest.skip(
            f"no stored results in {ROOT / 'reports'} or {ROOT / '.benchmarks'} (run `make test` or "
            "`edgebench run` first)"
        )
    result = history.run_history(sources, tmp_path / "history")
    read = {a.series.sources for a in result.analyses}
    assert result.analyses and all(s.reason for s in result.skipped), result.skipped
    assert (tmp_path / "history" / "index.html").is_file() and read
