"""report.json round trip, the terminal table and `edgebench report`."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from harness import cli, fileio, html_report, report, workflow
from harness.errors import ConfigError, ParityError


def _backend(name, median, precision="FP32"):
    return {
        "describe": {"backend": name, "device": "CPU", "precision": precision},
        "latency": {
            "n": 30,
            "median_ms": median,
            "p90_ms": median * 1.1,
            "samples_ns": [int(median * 1e6 * f) for f in (0.9, 1.0, 1.1, 1.0)],
        },
    }


def _verdict(precision, ok):
    return {
        "precision": precision,
        "max_abs_prob": 2e-6,
        "max_rel_logit": 1e-5,
        "top1_agreement": 1.0,
        "decisive_agreement": 1.0,
        "accuracy_ratio": 1.0 if ok else 0.9,
        "mean_kl": 1e-8,
        "failures": [] if ok else ["accuracy ratio 0.9 < 1"],
        "within_tolerance": ok,
    }


def _document(tf_ms=20.0, ov_ms=4.0, within=True, cpu="Test CPU 9000", run_id="r1", int8_ms=None):
    """A run report as `edgebench run` writes it; with ``int8_ms`` also an OpenVINO INT8 rung."""
    document = {
        "schema": report.RUN_SCHEMA,
        "run_id": run_id,
        "machine": {
            "cpu_brand": cpu,
            "usable_cpus": 2,
            "isa_flags": ["avx2", "avx512f"],
            "openvino_devices": {"CPU": cpu},
        },
        "backends": {
            "tf": _backend("tf", tf_ms),
            "openvino": _backend("openvino", ov_ms),
            "null": _backend("null", 0.001),
        },
        "parity": {"openvino": _verdict("FP32", within)},
        "accuracy": {"tf": 0.8, "openvino": 0.8, "null": 0.2},
    }
    if int8_ms is not None:
        document["backends"]["openvino-int8"] = _backend("openvino", int8_ms, "INT8")
        document["parity"]["openvino-int8"] = _verdict("INT8", True)
        document["validation"] = {
            "images": 100,
            "accuracy": {"tf": 0.9, "openvino": 0.9, "openvino-int8": 0.85, "null": 0.2},
        }
    return document


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


def test_table_shows_the_stored_speedup_per_backend_and_precision():
    document = {**_document(int8_ms=2.0), "speedup": {"openvino": 3.4, "openvino-int8": 5.1, "null": 9.0}}
    lines = {line.split("│")[1].strip(): line for line in _render(document).splitlines() if line.startswith("│")}
    assert "3.40×" in lines["openvino"] and "5.10×" in lines["openvino-int8"] and "1.00×" in lines["tf"]


def test_check_parity_names_a_candidate_without_a_verdict_in_one_line():
    document = _document(int8_ms=2.0)
    del document["parity"]["openvino-int8"]
    with pytest.raises(ParityError, match=r"no parity verdict for openvino-int8 \(none recorded\)") as caught:
        report.check_parity(document)
    assert "\n" not in str(caught.value)
    del document["backends"]["tf"], document["parity"]["openvino"]
    with pytest.raises(ParityError, match=r"for openvino, openvino-int8 \(the TF FP32 reference did not run"):
        report.check_parity(document)


def test_check_parity_returns_each_failing_candidate_with_its_failures():
    assert report.check_parity(_document(int8_ms=2.0)) == {}
    assert report.check_parity(_document(within=False)) == {"openvino": ["accuracy ratio 0.9 < 1"]}
    # tf and null are not candidates: no verdict needed
    assert (
        report.check_parity(
            {"backends": _document()["backends"], "parity": {"openvino": _document()["parity"]["openvino"]}}
        )
        == {}
    )


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """`edgebench run` with the workflow replaced by a crafted report: the CLI's own handling, no training."""
    seen = {}

    def run(config, progress):
        seen["config"] = config
        return workflow.RunResult(tmp_path, seen["document"])

    monkeypatch.setattr(workflow, "run", run)
    return seen


@pytest.mark.parametrize(
    "change,code,line",
    [
        (lambda d: None, 0, None),
        (lambda d: d["parity"].pop("openvino-int8"), 1, "edgebench: error: no parity verdict for openvino-int8"),
        (
            lambda d: d["parity"]["openvino-int8"].update(within_tolerance=False, failures=["mean KL 0.3 > 0.1"]),
            3,
            "Parity outside tolerance: openvino-int8: mean KL 0.3 > 0.1",
        ),
        (  # within the bounds it could test, and says which it could not
            lambda d: d["parity"]["openvino-int8"].update(unchecked=["accuracy ratio (no labels)"]),
            0,
            "Parity of openvino-int8: unchecked accuracy ratio (no labels)",
        ),
    ],
)
def test_cli_run_exit_codes(fake_run, capsys, change, code, line):
    fake_run["document"] = document = _document(int8_ms=2.0)
    change(document)
    assert cli.main(["run", "--backend", "openvino", "--precision", "INT8"]) == code
    assert (fake_run["config"].backends, fake_run["config"].precisions) == (("openvino",), ("INT8",))
    out, err = capsys.readouterr()
    if code == 0:
        assert "Parity outside" not in out and err == ""
        assert [text for text in out.splitlines() if "unchecked" in text] == ([line] if line else [])
    elif code == 1:  # one line on stderr, naming the candidate
        [printed] = err.splitlines()
        assert printed.startswith(line)
    else:  # one line per failing candidate, with its failures
        assert [text for text in out.splitlines() if "Parity outside" in text] == [line]


def test_write_json_is_atomic_and_round_trips(tmp_path):
    path = fileio.write_json(tmp_path / "r" / "report.json", _document())
    assert report.read_run_report(path) == _document()
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


@pytest.mark.parametrize(
    "content,pattern",
    [("{broken", "not a readable report"), (json.dumps({"benchmarks": []}), "not an edgebench run report")],
)
def test_reading_something_else_is_a_clear_error(tmp_path, content, pattern):
    (tmp_path / "report.json").write_text(content)
    with pytest.raises(ConfigError, match=pattern):
        report.read_run_report(tmp_path / "report.json")


def test_cli_report_prints_the_table_and_writes_html(tmp_path, capsys):
    fileio.write_json(tmp_path / "run" / "report.json", _document())
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    assert "5.00×" in capsys.readouterr().out
    page = (tmp_path / "run" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "Test CPU 9000" in page
    assert cli.main(["report", str(tmp_path / "missing")]) == 1


def test_ladder_series_one_point_per_precision_one_series_per_processor():
    documents = [
        _document(cpu="Xeon Test", run_id="a", int8_ms=2.0),
        _document(cpu="EPYC Test", run_id="b", int8_ms=3.0),
        _document(cpu="Xeon Test", run_id="c"),
    ]  # a second Xeon run joins the Xeon series
    series = html_report.ladder_series(documents)
    assert list(series) == ["Xeon Test", "EPYC Test"]
    assert [(p["run"], p["label"], p["accuracy"]) for p in series["EPYC Test"]] == [
        ("b", "tf", 0.9),
        ("b", "openvino", 0.9),
        ("b", "openvino-int8", 0.85),
    ]  # validation accuracy; no null
    assert [p["median_ms"] for p in series["EPYC Test"]] == [20.0, 4.0, 3.0]
    assert [(p["run"], p["label"], p["accuracy"]) for p in series["Xeon Test"]][3:] == [
        ("c", "tf", 0.8),
        ("c", "openvino", 0.8),
    ]  # no validation set: held-out accuracy


@pytest.fixture
def two_node_report(tmp_path):
    """Two nodes with different processors merged into one report, each with an OpenVINO INT8 rung."""
    fileio.write_json(tmp_path / "a" / "report.json", _document(cpu="Xeon Test", run_id="node-a", int8_ms=2.0))
    fileio.write_json(
        tmp_path / "b" / "report.json", _document(ov_ms=8.0, cpu="EPYC Test", run_id="node-b", int8_ms=5.0)
    )
    out = tmp_path / "merged" / "report.html"
    assert cli.main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--html", str(out)]) == 0
    return out


def test_two_node_merge(two_node_report):
    page = two_node_report.read_text()
    assert "Xeon Test" in page and "EPYC Test" in page and "2 run(s)" in page
    merged = json.loads((two_node_report.parent / "report.json").read_text())
    assert [run["run_id"] for run in merged["runs"]] == ["node-a", "node-b"]


def test_report_renders_in_a_real_headless_browser(two_node_report, headless_chromium):
    """Chromium (Debian's package) loads the page from disk and shows the plots."""
    dom, dark_fraction = headless_chromium(two_node_report)
    assert dom.count("<img") == 3 and "EPYC Test" in dom
    # The precision ladder: its plot, and one series per processor with a point per precision.
    assert 'alt="Precision ladder: accuracy against latency" src="data:image/png;base64,' in dom
    assert "Xeon Test: tf, openvino, openvino-int8; EPYC Test: tf, openvino, openvino-int8" in dom
    ladder = dom.split('alt="Precision ladder: accuracy against latency" src="data:image/png;base64,')[1].split('"')[0]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(ladder))).convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):  # matplotlib's C0 and C1: one per processor
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 200, f"ladder series {colour} not drawn"
    assert dark_fraction > 0.02, "the page rendered (almost) blank: plots missing"
