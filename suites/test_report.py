"""report.json round trip, the terminal table and `edgebench report`."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from harness import cli, report
from harness.errors import ConfigError


def _document(tf_ms=20.0, ov_ms=4.0, within=True):
    def backend(name, median, precision="FP32"):
        return {"describe": {"backend": name, "device": "CPU", "precision": precision},
                "latency": {"n": 30, "median_ms": median, "p90_ms": median * 1.1}}
    return {
        "schema": report.RUN_SCHEMA, "run_id": "r1",
        "machine": {"cpu_brand": "Test CPU 9000", "usable_cpus": 2, "isa_flags": ["avx2", "avx512f"],
                    "openvino_devices": {"CPU": "Test CPU 9000"}},
        "backends": {"tf": backend("tf", tf_ms), "openvino": backend("openvino", ov_ms), "null": backend("null", 0.001)},
        "parity": {"openvino": {"max_abs_prob": 2e-6, "top1_agreement": 1.0, "within_tolerance": within}},
        "accuracy": {"tf": 0.8, "openvino": 0.8, "null": 0.2},
    }


def test_speedup_is_reference_median_over_backend_median():
    assert report.speedups(_document(tf_ms=20.0, ov_ms=4.0)) == {"tf": 1.0, "openvino": 5.0, "null": 20000.0}
    assert report.speedups({"backends": {"openvino": {}}}) == {}


def _render(document) -> str:
    console = Console(width=140, record=True)
    console.print(report.summary_table(document))
    return console.export_text()


def test_table_shows_latency_speedup_parity_and_processor():
    text = _render(_document())
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert "5.00×" in lines["openvino"] and "2e-06" in lines["openvino"] and "4.00" in lines["openvino"]
    assert "ref" in lines["tf"] and "ref" not in lines["null"]
    assert "Test CPU 9000" in text and "avx512f" in text


def test_table_marks_parity_failures():
    assert "✗" in _render(_document(within=False)) and "✗" not in _render(_document())


def test_write_json_is_atomic_and_round_trips(tmp_path):
    path = report.write_json(tmp_path / "r" / "report.json", _document())
    assert report.read_run_report(path) == _document()
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


@pytest.mark.parametrize("content,pattern", [("{broken", "not a readable report"),
                                             (json.dumps({"benchmarks": []}), "not an edgebench run report")])
def test_reading_something_else_is_a_clear_error(tmp_path, content, pattern):
    (tmp_path / "report.json").write_text(content)
    with pytest.raises(ConfigError, match=pattern):
        report.read_run_report(tmp_path / "report.json")


def test_cli_report_prints_the_table(tmp_path, capsys):
    report.write_json(tmp_path / "run" / "report.json", _document())
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    assert "5.00×" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "missing")]) == 1
