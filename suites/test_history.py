"""``edgebench history``: change points and creep on synthetic histories with known steps (detection rate and
false alarms printed), grouping by machine key, fleet runs read from moto S3, the trend page in headless
Chromium, bad input in one line, and real stored runs (written here by pytest-benchmark, and the repo's own)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import cli, fleet
from harness.gate import GateOptions, Verdict, compare_samples, history
from harness.gate.history_records import BENCH_KIND, RUN_KIND, MachineKey, Point
from harness.gate.history_sources import read_results
from harness.gate.history_trend import HistoryOptions, Series, analyse, build_series
from harness.measure import processor_identity

# The pytester fixture restores sys.modules after its test, dropping what the test imported. OpenVINO (a C
# extension that processor_identity imports) cannot be imported twice in one process: imported here, before
# any pytester test, it stays (else every later OpenVINO test in this xdist worker failed).
pytest.importorskip("openvino", reason="OpenVINO is a dependency of edgebench")

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOISE = 0.02  # per-run relative noise of the synthetic medians (a dedicated node's run-to-run spread)
RUNS = 30


def _identity(**changes) -> dict:
    """A stored processor identity (harness.measure.processor_identity's shape) with some fields changed."""
    machine = {
        "cpu_brand": "Intel(R) Xeon(R) Test",
        "arch": "x86_64",
        "logical_cpus": 2,
        "usable_cpus": 2,
        "isa_flags": ["avx", "avx2", "avx512f", "fma", "sse4_2"],
        "openvino_devices": {"CPU": "Intel Xeon Test"},
        "platform": "Linux",
        "python": "3.11.7",
        "packages": {"tensorflow-cpu": "2.21.0", "openvino": "2026.4.1", "numpy": "2.2.0"},
    }
    for name, value in changes.items():
        if name in ("openvino", "numpy", "tensorflow-cpu"):
            machine["packages"][name] = value
        else:
            machine[name] = value
    return machine


def _benchmark_json(
    machine: dict, when: datetime, medians_ms: dict[str, float], samples: int = 20, seed: int = 0
) -> dict:
    """A pytest-benchmark document as the latency suite writes it (--benchmark-save-data): raw samples in
    seconds, extra_info with the backend's label, machine_info.edgebench the processor identity."""
    rng = np.random.default_rng(seed)
    benchmarks = []
    for label, median in medians_ms.items():
        data = (median / 1e3 * (1 + 0.01 * rng.standard_normal(samples))).tolist()
        benchmarks.append(
            {
                "group": "infer-batch1",
                "name": f"test_infer_latency_batch1[{label}]",
                "fullname": f"suites/test_latency.py::test_infer_latency_batch1[{label}]",
                "params": {"latency_case": label},
                "extra_info": {"label": label, "backend": label},
                "stats": {
                    "data": data,
                    "median": float(np.median(data)),
                    "rounds": samples,
                    "min": min(data),
                    "max": max(data),
                    "mean": float(np.mean(data)),
                },
            }
        )
    return {
        "machine_info": {"node": "n", "cpu": {"brand_raw": machine["cpu_brand"]}, "edgebench": machine},
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": when.isoformat(),
        "version": "5.1.0",
    }


def _series(values, name: str = "openvino") -> Series:
    key = MachineKey.from_identity(_identity())
    return Series(
        key,
        BENCH_KIND,
        name,
        tuple(T0 + timedelta(hours=i) for i in range(len(values))),
        tuple(f"run-{i}.json" for i in range(len(values))),
        tuple(Point(float(v), 100) for v in values),
    )


def _write(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


# ------------------------------------------------------------------------------------------------
# Synthetic histories with known steps


def _histories(count: int, step: float, seed: int, noise: float = NOISE) -> list[tuple[np.ndarray, int | None]]:
    """``count`` histories of RUNS per-run medians around 4 ms with ``noise``; a step of ``step`` at a random
    run between 8 and RUNS-8 (None: flat)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        values = 4.0 * (1 + noise * rng.standard_normal(RUNS))
        at = int(rng.integers(8, RUNS - 8)) if step else None
        if at is not None:
            values[at:] *= 1 + step
        out.append((values, at))
    return out


def _score(histories, options: HistoryOptions) -> tuple[int, int, int, int]:
    """(change points detected within one run of the step, histories with a step, false alarms: change points
    elsewhere, histories) for Otava's change points as analyse() reports them."""
    detected = steps = false_alarms = 0
    for values, at in histories:
        found = [cp.index for cp in analyse(_series(values), options).change_points]
        if at is not None:
            steps += 1
            detected += any(abs(i - at) <= 1 for i in found)
        false_alarms += sum(1 for i in found if at is None or abs(i - at) > 1)
    return detected, steps, false_alarms, len(histories)


def _pairwise(histories, threshold: float) -> tuple[int, int]:
    """The same histories through a pairwise rule (consecutive medians differ by more than the gate's
    threshold): (steps caught at the step, flags elsewhere)."""
    caught = flags = 0
    for values, at in histories:
        jumps = [i for i in range(1, values.size) if abs(values[i] / values[i - 1] - 1) > threshold]
        caught += at is not None and at in jumps
        flags += sum(1 for i in jumps if i != at)
    return caught, flags


@pytest.mark.parametrize("seed", [1])
def test_change_points_on_synthetic_histories_with_known_steps(seed, record_property):
    """40 flat histories and 40 each with a 10 % and a 5 % step (30 runs, 2 % run-to-run noise): Otava finds
    the 10 % steps (>= 38/40) at the right run with at most 2 change points in the 40 flat histories."""
    options = HistoryOptions()
    flat, ten, five = (_histories(40, step, seed + i) for i, step in enumerate((0.0, 0.10, 0.05)))
    _, _, flat_alarms, flat_n = _score(flat, options)
    ten_hit, ten_n, ten_extra, _ = _score(ten, options)
    five_hit, five_n, five_extra, _ = _score(five, options)
    threshold = GateOptions().threshold
    line = (
        f"history change points (Otava, p<{options.max_pvalue}, {RUNS} runs, {NOISE:.0%} noise): "
        f"10 % steps {ten_hit}/{ten_n} detected ({ten_extra} extra change points), 5 % steps {five_hit}/{five_n} "
        f"({five_extra} extra), false alarms {flat_alarms} in {flat_n} flat histories; pairwise "
        f">{threshold:.0%} rule on the same series: 10 % steps {_pairwise(ten, threshold)[0]}/{ten_n}, 5 % steps "
        f"{_pairwise(five, threshold)[0]}/{five_n}, false alarms {_pairwise(flat, threshold)[1]} in flat "
        f"histories"
    )
    record_property("edgebench_figure", line)
    print(line)
    assert ten_hit >= 38 and flat_alarms <= 2, line
    assert five_hit >= 28, line  # a 5 % step in 2 % noise: most of them


@pytest.mark.slow
@pytest.mark.parametrize("noise", [0.01, 0.02, 0.05])
def test_change_point_sweep_over_step_sizes(noise, record_property):
    """200 histories per step size (0 = flat, 3 %, 5 %, 10 %, 20 %) at one noise level: the detection rate and
    false alarms per step size, printed; at 2 % noise or less a 10 % step is found in >= 95 % of histories."""
    options, rates = HistoryOptions(), {}
    for i, step in enumerate((0.0, 0.03, 0.05, 0.10, 0.20)):
        hit, steps, false_alarms, n = _score(_histories(200, step, 1000 + i, noise), options)
        rates[step] = (hit / steps if steps else None, false_alarms / n)
    line = f"history change-point sweep, {RUNS} runs, {noise:.0%} noise: " + "; ".join(
        f"{step:.0%} step: " + (f"{hit:.0%} found, " if hit is not None else "flat: ") + f"{fa:.2f} false/history"
        for step, (hit, fa) in rates.items()
    )
    record_property("edgebench_figure", line)
    if noise <= 0.02:
        assert rates[0.10][0] >= 0.95 and rates[0.0][1] <= 0.05, line


def test_step_hidden_in_run_to_run_noise_is_marked_missed_by_pairwise():
    """A 6 % step whose consecutive runs, by the noise, differ by less than the gate's 5 %: the change point is
    found and marked as one a pairwise gate misses; the status is a regression."""
    values = np.array(
        [
            4.0,
            4.1,
            3.95,
            4.05,
            4.12,
            3.9,
            4.0,
            4.08,
            3.96,
            4.02,
            4.16,
            4.30,
            4.20,
            4.35,
            4.25,
            4.28,
            4.22,
            4.33,
            4.27,
            4.24,
        ]
    )
    analysis = analyse(_series(values))
    assert [cp.index for cp in analysis.change_points] == [10]
    cp = analysis.change_points[0]
    assert cp.step < 0.05 and cp.missed_by_pairwise and 0.05 < cp.change < 0.08
    assert analysis.status == "regression" and "missed by a pairwise gate" in analysis.findings[0]


def test_creep_flagged_that_the_pairwise_gate_passes(record_property):
    """20 flat runs, then 1 %/run for 15 runs: the real gate (harness.gate.compare_samples on each run's 100
    raw samples) passes every consecutive pair, history flags the creep; over 20 seeded creeping and 20 flat
    histories the creep is flagged every time and never on a flat one."""
    rng = np.random.default_rng(7)
    medians = np.r_[np.full(20, 4.0), 4.0 * 1.01 ** np.arange(1, 16)] * (1 + 0.005 * rng.standard_normal(35))
    runs = [m / 1e3 * rng.lognormal(0, 0.02, 100) for m in medians]
    options = GateOptions(resamples=500)
    verdicts = {compare_samples(f"run {i}", runs[i - 1], runs[i], options).verdict for i in range(1, len(runs))}
    assert verdicts == {Verdict.NO_CHANGE}, verdicts
    analysis = analyse(_series([float(np.median(r)) * 1e3 for r in runs]))
    assert analysis.creep is not None and analysis.creep.flagged, analysis.creep
    assert analysis.creep.max_step < 0.05 and analysis.creep.total > 0.10 and analysis.status == "creep"
    assert any("a pairwise gate passes every step" in line for line in analysis.findings), analysis.findings

    flagged = false = 0
    for seed in range(20):
        r = np.random.default_rng(100 + seed)
        flagged += (
            analyse(
                _series(np.r_[np.full(20, 4.0), 4.0 * 1.01 ** np.arange(1, 16)] * (1 + 0.005 * r.standard_normal(35)))
            ).status
            == "creep"
        )
        flat = analyse(_series(4.0 * (1 + 0.005 * r.standard_normal(35))))
        false += bool(flat.creep and flat.creep.flagged)
    line = (
        f"history creep (1 %/run over the last 15 of 35 runs, 0.5 % noise): flagged {flagged}/20, on flat "
        f"histories {false}/20; every run-to-run step passed the pairwise gate ({len(runs) - 1} comparisons, "
        f"{analysis.creep.total:+.1%} cumulative)"
    )
    record_property("edgebench_figure", line)
    assert flagged == 20 and false == 0, line


def test_short_history_is_reported_not_analysed():
    analysis = analyse(_series([4.0, 4.1, 4.0]))
    assert analysis.status == "not analysed" and "3 run(s): too short" in analysis.note and not analysis.findings


# ------------------------------------------------------------------------------------------------
# Reading and grouping


def test_grouping_by_machine_key(tmp_path):
    """Another CPU brand, other ISA flags, another OpenVINO version or CPU count: separate series; another numpy:
    the same series. A run report and a benchmark of the same label stay apart (other timing, other model).
    The --benchmark-json file and its .benchmarks autosave copy count once."""
    machines = {
        "base": _identity(),
        "numpy": _identity(numpy="2.4.6"),
        "brand": _identity(cpu_brand="AMD EPYC Test"),
        "isa": _identity(isa_flags=["avx", "avx2", "fma", "sse4_2"]),
        "ov": _identity(openvino="2026.5.0"),
        "cpus": _identity(usable_cpus=8),
    }
    for i, (name, machine) in enumerate(machines.items()):
        document = _benchmark_json(machine, T0 + timedelta(hours=i), {"tf": 10.0, "openvino": 2.0}, seed=i)
        _write(tmp_path / name / "benchmark.json", document)
        if name == "base":
            _write(tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit" / "0001_abc.json", document)
    run = {
        "schema": "edgebench.run/2",
        "run_id": "20261101T030000Z-ab12",
        "created": (T0 + timedelta(hours=9)).isoformat(),
        "machine": _identity(),
        "backends": {"openvino": {"latency": {"median_ms": 3.0, "samples_ns": [3_000_000] * 30}}},
    }
    _write(tmp_path / "reports" / "20261101T030000Z-ab12" / "report.json", run)
    _write(tmp_path / "reports" / "20261101T030000Z-ab12" / "work" / "edge" / "labels.json", {"cloudy": 0})

    collection = read_results([str(tmp_path)])
    series = build_series(collection.results)
    keys = {s.key for s in series}
    assert len(keys) == 5, [k.label() for k in keys]  # base and numpy share one
    base = MachineKey.from_identity(_identity())
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
        document = _benchmark_json(_identity(), T0 + timedelta(hours=run), {"openvino": model}, seed=run)
        record = {
            "schema": drift.SCHEMA,
            "reference": {"name": "ov-convnet"},
            "model_ns": [[int(model * 1e6 * (1 + 0.01 * rng.standard_normal()))] * 5 for _ in range(20)],
            "reference_ns": [[int(1e6 * regime * (1 + 0.01 * rng.standard_normal()))] * 5 for _ in range(20)],
        }
        document["benchmarks"][0]["extra_info"][drift.FIELD] = record
        _write(tmp_path / f"run{run:02d}.json", document)
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
# Fleet runs in S3, the CLI, the trend page


def _publish_fleet(location, tmp_path: Path, runs: int = 8) -> None:
    """``runs`` fleet runs of two nodes (two processors), published as a fleet node publishes (report.json
    completed from benchmark.json, files, manifest last; one S3 client for all); node A's OpenVINO gets 15 %
    slower from run 5 on. Run 3 has a failed node and run 4 an incomplete one."""
    from harness.store import S3Store

    s3 = S3Store(location)
    machines = {"node-a": _identity(), "node-b": _identity(cpu_brand="AMD EPYC Test")}
    rng = np.random.default_rng(11)
    for run in range(runs):
        run_id = f"2026110{run}T000000Z-{run:04x}"
        for node, machine in machines.items():
            slow = 1.15 if node == "node-a" and run >= 4 else 1.0
            medians = {
                "tf": 10.0 * (1 + 0.01 * rng.standard_normal()),
                "openvino": 2.0 * slow * (1 + 0.01 * rng.standard_normal()),
            }
            path = _write(
                tmp_path / run_id / node / "benchmark.json",
                _benchmark_json(machine, T0 + timedelta(days=run), medians, seed=run),
            )
            files = {
                "benchmark.json": path,
                "report.json": fleet.complete_report({"benchmark.json": path}, run_id, node, path.parent / "r.json"),
            }
            fleet.publish_node(s3.under("runs", run_id, node), run_id, node, files)
    fleet.publish_failure(s3.under("runs", "20261103T000000Z-0003", "node-c"), "node-c", "walltime exceeded")
    s3.upload_file(
        _write(tmp_path / "stray.json", _benchmark_json(_identity(), T0, {"tf": 1.0})),
        location.key("runs", "20261104T000000Z-0004", "node-d", "benchmark.json"),
    )


def test_history_of_fleet_runs_in_s3(s3_location, tmp_path, capsys):
    """`edgebench history s3://BUCKET/PREFIX/runs/`: node results grouped by processor, node A's 15 % step found
    at run 5 (exit 1 with --fail-on-regression), node B stable, the failed and the incomplete node skipped with
    their reasons; pages written."""
    _publish_fleet(s3_location, tmp_path)
    uri = f"s3://{s3_location.bucket}/{s3_location.prefix}/runs/"
    out = tmp_path / "history"
    assert (
        cli.main(
            ["history", uri, "--out", str(out), "--endpoint-url", s3_location.endpoint_url, "--fail-on-regression"]
        )
        == 1
    )  # node A's OpenVINO regressed
    printed = capsys.readouterr().out
    document = json.loads((out / "history.json").read_text())
    by_name = {(s["machine"]["cpu_brand"], s["benchmark"]): s for s in document["series"]}
    a_ov = by_name[("Intel(R) Xeon(R) Test", "openvino")]
    assert [cp["index"] for cp in a_ov["change_points"]] == [4] and a_ov["status"] == "regression", a_ov["findings"]
    assert by_name[("AMD EPYC Test", "openvino")]["status"] == "stable"
    assert all(len(s["runs"]) == 8 for s in document["series"]), [
        (s["benchmark"], len(s["runs"])) for s in document["series"]
    ]
    assert all(s["runs"][0]["source"].startswith(f"s3://{s3_location.bucket}/") for s in document["series"])
    reasons = {s["source"].rsplit("/runs/", 1)[1]: s["reason"] for s in document["skipped"]}
    assert reasons["20261103T000000Z-0003/node-c/failure.json"] == "failed fleet node: walltime exceeded"
    assert reasons["20261104T000000Z-0004/node-d/benchmark.json"].startswith("fleet node without manifest.json")
    assert "skipped s3://" in printed and "failed fleet node: walltime exceeded" in printed
    assert a_ov["findings"][0].startswith("regression: latency +1") and "from run 5" in a_ov["findings"][0]
    assert (out / a_ov["page"]).is_file() and (out / "index.html").is_file()


def test_trend_page_renders_in_headless_chromium(tmp_path, headless_chromium):
    """The page of a series with a step and a creep: the findings, the plot with the change point line (red)
    and the creep window (orange shading) drawn, the machine key and the runs table; the index links it."""
    rng = np.random.default_rng(5)
    values = np.r_[np.full(15, 4.0), np.full(10, 4.6), 4.6 * 1.01 ** np.arange(1, 16)] * (
        1 + 0.004 * rng.standard_normal(40)
    )
    analysis = analyse(_series(values))
    assert analysis.change_points and analysis.creep.flagged
    from harness.gate.history_html import page_path, render_history

    index = render_history([analysis, analyse(_series([4.0, 4.1], name="tf"))], tmp_path)
    page = tmp_path / page_path(analysis)
    dom, dark = headless_chromium(page)
    assert "status: creep" in dom and "regression: latency +1" in dom and "from run 16" in dom
    assert "creep: latency +1" in dom and "a pairwise gate passes every step" in dom
    assert "Intel(R) Xeon(R) Test" in dom and "run-39.json" in dom and dom.count("<img") == 1
    png = dom.split('src="data:image/png;base64,')[1].split('"')[0]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")).reshape(-1, 3).astype(int)
    red = ((pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)).sum()
    shade = (np.abs(pixels - (255, 237, 204)).sum(axis=1) < 20).sum()  # orange at alpha 0.2 on white
    assert red > 100 and shade > 2000, (red, shade)
    assert dark > 0.01, "the page rendered (almost) blank"
    index_html = index.read_text()  # the index is plain HTML: no browser needed to check its links
    assert f'href="{page_path(analysis).as_posix()}"' in index_html and "too short" in index_html
    assert (index.parent / page_path(analysis)).is_file()


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_is_one_line_or_a_listed_skip(tmp_path, capsys):
    assert cli.main(["history", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "nowhere") in err and "pass a folder of stored results" in err

    junk = tmp_path / "junk"
    _write(junk / "labels.json", {"cloudy": 0})
    (junk / "broken.json").write_text("{ not json")
    assert cli.main(["history", str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"edgebench: error: {junk}: no stored results in it")
    assert "broken.json: not readable JSON" in err

    _write(junk / "ok.json", _benchmark_json(_identity(), T0, {"tf": 10.0}))
    _write(junk / "nomachine.json", {"benchmarks": [], "datetime": T0.isoformat()})
    _write(junk / "notime.json", {**_benchmark_json(_identity(), T0, {"tf": 1.0}), "datetime": "yesterday"})
    assert cli.main(["history", str(junk), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    for name, reason in (
        ("broken.json", "not readable JSON"),
        ("labels.json", "not a stored result"),
        ("nomachine.json", "pytest-benchmark JSON without machine_info"),
        ("notime.json", "no usable timestamp"),
    ):
        assert f"skipped {junk / name}: {reason}" in out, out
    assert "Traceback" not in out

    assert cli.main(["history", str(junk), "--max-pvalue", "2"]) == 1
    assert capsys.readouterr().err.strip().startswith("edgebench: error: --max-pvalue 2.0: choose a p-value")


def test_missing_s3_bucket_is_one_line(s3_location, capsys):
    uri = f"s3://{s3_location.bucket}-missing/runs/"
    assert cli.main(["history", uri, "--endpoint-url", s3_location.endpoint_url]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and uri.rstrip("/") in err and "bucket does not exist" in err


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
