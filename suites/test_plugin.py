"""The edgebench pytest plugin (harness/pytest_plugin), run by pytester in a fresh directory that has no
conftest.py of this repo: what a node with the package installed gets through the ``pytest11`` entry point.

- the plugin is registered once, as ``edgebench``, by the entry point (conftest.py does not import it);
- its options are registered and parsed, its markers registered, the cases follow the options;
- a bad --edgebench-artifact stops the session at its start with one line;
- pytest-benchmark's ``machine_info["edgebench"]`` holds this processor's identity (real subprocess);
- under ``-n 2`` the node report is written once, by the controller, with every worker's figures and every
  outcome, and the figures summary is printed in the terminal summary (real subprocess with xdist).
"""

from __future__ import annotations

import os
import re

# The pytester fixture restores sys.modules after its test, dropping what the test imported. OpenVINO (a C
# extension, which cannot be imported twice) is imported here, before any pytester test, so that it stays.
import openvino  # noqa: F401
import pytest

import harness.pytest_plugin as plugin
from harness import fileio, parity
from harness.fleet.results import NODE_SCHEMA
from harness.measure import ISA_FLAGS, processor_identity
from harness.pytest_plugin.cases import SUITE_HYPERPARAMETERS

pytest_plugins = ["pytester"]

NODE_OPTIONS = (
    "--edgebench-artifact=model.tar.gz",
    "--edgebench-test-images=s3://b/test",
    "--edgebench-calibration=s3://b/train",
    "--backend",
    "openvino",
    "--backend",
    "null",
    "--device",
    "GPU",
    "--edgebench-train-seed=3",
    "--edgebench-node-report=out/report.json",
)


def test_registered_once_by_the_entry_point(pytestconfig):
    """This session's plugin is the entry point's, under its one name, with one implementation per hook."""
    manager = pytestconfig.pluginmanager
    assert manager.get_plugin("edgebench") is plugin
    assert [name for name, p in manager.list_name_plugin() if p is plugin] == ["edgebench"]
    assert [i.plugin for i in manager.hook.pytest_addoption.get_hookimpls()].count(plugin) == 1
    assert manager.get_plugin("harness.pytest_plugin.fixtures") is not None


def test_options_are_registered_and_parsed(pytester):
    config = pytester.parseconfigure(*NODE_OPTIONS)
    assert config.pluginmanager.get_plugin("edgebench") is plugin
    parsed = {
        name: config.getoption(name)
        for name in (
            "edgebench_artifact",
            "edgebench_test_images",
            "edgebench_calibration",
            "edgebench_backends",
            "edgebench_device",
            "edgebench_train_seed",
            "edgebench_node_report",
        )
    }
    assert parsed == {
        "edgebench_artifact": "model.tar.gz",
        "edgebench_test_images": "s3://b/test",
        "edgebench_calibration": "s3://b/train",
        "edgebench_backends": ["openvino", "null"],
        "edgebench_device": "GPU",
        "edgebench_train_seed": 3,
        "edgebench_node_report": "out/report.json",
    }
    defaults = pytester.parseconfigure()
    assert (
        defaults.getoption("edgebench_artifact"),
        defaults.getoption("edgebench_backends"),
        defaults.getoption("edgebench_device"),
        defaults.getoption("edgebench_train_seed"),
        defaults.getoption("edgebench_node_report"),
    ) == (None, None, "CPU", SUITE_HYPERPARAMETERS.random_seed, None)
    markers = [line.split(":")[0] for line in defaults.getini("markers")]
    assert markers.count("edge") == 1 and markers.count("matrix") == 1, markers
    assert "--edgebench-node-report" in pytester.runpytest("--help").stdout.str()


def test_cases_follow_the_options(pytester):
    """The cases for two candidate backends on GPU; -m edge keeps the node's own (--strict-markers: the plugin
    registers the marks it puts on them)."""
    pytester.makepyfile(
        test_cases="""
        def test_parity(parity_case): pass
        def test_latency(latency_case): pass
        def test_faults(fault_rung): pass
    """
    )
    options = ("--co", "-q", "--strict-markers", "--backend", "openvino", "--backend", "null", "--device", "GPU")
    ids = [line.split("::")[1] for line in pytester.runpytest(*options).stdout.lines if "::" in line]
    assert [i for i in ids if i.startswith("test_latency")] == [
        f"test_latency[{label}]"
        for label in (
            "tf",
            "openvino",
            "openvino-fp16",
            "openvino-bf16",
            "openvino-int8",
            "openvino-int8-ac",
            "null",
            "null-fp16",
            "null-bf16",
            "null-int8",
            "null-int8-ac",
        )
    ]
    assert [i for i in ids if i.startswith("test_faults")] == [
        f"test_faults[{rung}]" for rung in ("FP32", "FP16", "BF16", "INT8", "INT8-AC")
    ]
    assert (
        "test_parity[resnet50_v2-null-GPU-INT8-b1]" in ids
        and "test_parity[mobilenet_v2-openvino-AUTO-FP16-b1]" in ids
        and "test_parity[mobilenet_v2-null-GPU-BF16-b4]" in ids
    )  # the matrix
    edge = [line.split("::")[1] for line in pytester.runpytest(*options, "-m", "edge").stdout.lines if "::" in line]
    node = [
        f"mobilenet_v2-{backend}-GPU-{rung}-b1"
        for backend in ("openvino", "null")
        for rung in ("FP32", "FP16", "BF16", "INT8", "INT8-AC")
    ] + ["mobilenet_v2-ovtf-GPU-FP32-b1"]
    assert edge == [f"test_parity[{case}]" for case in node]


def test_a_missing_artifact_stops_the_session_with_one_line(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--edgebench-artifact=missing.tar.gz")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.stderr.lines if "edgebench:" in line]
    assert "missing.tar.gz" in line, result.stderr.str()
    assert "passed" not in result.stdout.str()


def _without_xdist_environment(monkeypatch) -> None:
    """The child pytest is a session of its own: pytest-benchmark disables itself where PYTEST_XDIST_WORKER
    is set (as in this suite's own -n 2 workers)."""
    for name in [n for n in os.environ if n.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))]:
        monkeypatch.delenv(name)


def test_machine_info_holds_this_processors_identity(pytester, monkeypatch):
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed (the [test] extra)")
    _without_xdist_environment(monkeypatch)
    pytester.makepyfile(test_bench="def test_noop(benchmark): benchmark(lambda: None)")
    result = pytester.runpytest_subprocess(
        "-p", "no:xdist", "-p", "no:cacheprovider", f"--benchmark-json={pytester.path / 'bench.json'}"
    )
    result.assert_outcomes(passed=1)
    machine = fileio.read_json_file(pytester.path / "bench.json")["machine_info"]["edgebench"]
    here = processor_identity()
    assert machine["cpu_brand"] == here["cpu_brand"] and machine["cpu_brand"]
    assert machine["isa_flags"] == here["isa_flags"] and set(machine["isa_flags"]) <= set(ISA_FLAGS)
    assert "CPU" in machine["openvino_devices"] and machine["openvino_devices"] == here["openvino_devices"]
    assert machine["packages"]["openvino"] == here["packages"]["openvino"]


# A node's run in miniature: six parity cases on synthetic logits (case 0 fails its bounds), the fault and
# margin figures below, a figure line, and a skipped test. The conftest logs each write of the node report.
FAULTS = [
    {
        "precision": "FP32",
        "fault": "class-swap",
        "caught": True,
        "required": True,
        "harmless": False,
        "failures": ["top-1 agreement 0 < 0.99"],
    },
    {"precision": "FP32", "fault": "scale:1.05", "caught": False, "required": False, "harmless": False, "failures": []},
]
MARGINS = {
    "model": "tiny",
    "images": 20,
    "decisive": 0.9,
    "reference_accuracy": 0.95,
    "margin_quantiles": {10: 0.1, 25: 0.3, 50: 0.5, 75: 0.7, 90: 0.9},
}
FIGURE = "a figure line from a test"

_NODE_TESTS = f"""
import numpy as np
import pytest
from harness import parity

@pytest.mark.parametrize("case", range(6))
def test_parity_case(case, record_property, worker_id):
    rng = np.random.default_rng(case)
    reference = rng.normal(size=(20, 5)) * 4
    candidate = reference + rng.normal(scale=3.0 if case == 0 else 1e-4, size=reference.shape)
    result = parity.compare(reference, candidate, "FP32")
    record_property("parity", {{**result.to_json(), "case": f"case-{{case}}", "worker": worker_id}})
    assert result.within_tolerance, "; ".join(result.failures)

def test_fault_and_margin_figures(record_property):
    for fault in {FAULTS!r}:
        record_property("fault", fault)
    record_property("margins", {MARGINS!r})
    record_property("edgebench_figure", {FIGURE!r})

def test_not_on_this_node():
    pytest.skip("not on this node")
"""

_LOG_REPORT_WRITES = """
import os
from pathlib import Path

from harness import fileio

_write_json = fileio.write_json

def _logged(path, *args, **kwargs):
    if Path(path).name == "report.json":
        with open(Path(__file__).with_name("writes.log"), "a") as log:
            log.write(os.environ.get("PYTEST_XDIST_WORKER", "controller") + "\\n")
    return _write_json(path, *args, **kwargs)

fileio.write_json = _logged
"""


def test_node_report_under_two_workers_is_written_once_and_complete(pytester, monkeypatch):
    _without_xdist_environment(monkeypatch)
    pytester.makeconftest(_LOG_REPORT_WRITES)
    pytester.makepyfile(test_node=_NODE_TESTS)
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "-p",
        "no:benchmark",
        "-p",
        "no:cacheprovider",
        f"--edgebench-node-report={pytester.path / 'report.json'}",
    )
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    assert (pytester.path / "writes.log").read_text().split() == ["controller"]
    report = fileio.read_json_file(pytester.path / "report.json")
    assert (report["schema"], report["exitstatus"]) == (NODE_SCHEMA, 1)
    assert report["tests"] == {"passed": 6, "failed": 1, "not_run": 1}
    assert sorted(report["parity"]) == [f"case-{i}" for i in range(6)]
    assert {figure["worker"] for figure in report["parity"].values()} == {"gw0", "gw1"}  # both workers' figures
    [failed] = report["failed_tests"]
    assert failed["test"] == "test_node.py::test_parity_case[0]" and "top-1 agreement" in failed["reason"]
    assert report["not_run_tests"] == [
        {"test": "test_node.py::test_not_on_this_node", "reason": "Skipped: not on this node"}
    ]
    assert report["machine"]["cpu_brand"] == processor_identity()["cpu_brand"]
    _assert_figures_summary(result.stdout.str(), list(report["parity"].values()))


def _assert_figures_summary(out: str, parity_figures: list[dict]) -> None:
    """Each section's title line, then exactly its lines; a section with nothing to show is not printed."""
    sections = [
        ("edgebench figures", [FIGURE]),
        ("edgebench reference: accuracy and decision margins (p1 - p2)", [parity.margin_line(MARGINS)]),
        ("edgebench parity: measured worst case per precision [bound]", parity.worst_case_lines(parity_figures)),
        (
            "edgebench sensitivity: injected faults caught (x) or passed (.) per precision",
            parity.sensitivity_lines(FAULTS),
        ),
    ]
    assert parity.worst_case_lines(parity_figures)[0].startswith("FP32: 6 cases, 1 outside bounds")
    for title, lines in sections:
        assert re.search(rf"^=+ {re.escape(title)} =+\n{re.escape(chr(10).join(lines))}\n", out, re.MULTILINE), (
            f"{title}:\n" + out[-3000:]
        )
    assert "edgebench S3 faults" not in out
