"""The CI latency gate's file inputs: pytest-benchmark JSON and edgebench run reports, round trip, the
processor check, unusable input (exit 2), and `edgebench gate` / `edgebench ab` exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from gate_helpers import CPU, NEW, OLD, OV, TF, latency, write_pytest_benchmark, write_run_report
from harness import gate
from harness.errors import ConfigError
from harness.gate import GateOptions, Verdict

OTHER_CPU = "AMD EPYC 7B13"


def test_pytest_benchmark_files_round_trip_with_regression_added_and_removed(tmp_path):
    rng = np.random.default_rng(11)
    base = write_pytest_benchmark(
        tmp_path / "base.json", {TF: latency(rng, 100), OV: latency(rng, 100, 0.2), OLD: latency(rng, 100)}
    )
    new = write_pytest_benchmark(
        tmp_path / "new.json", {TF: latency(rng, 100), OV: latency(rng, 100, 0.2 * 1.15), NEW: latency(rng, 100, 1e-4)}
    )
    result = gate.gate_files(base, new)
    assert result.verdicts() == {
        TF: Verdict.NO_CHANGE,
        OV: Verdict.REGRESSION,
        OLD: Verdict.REMOVED,
        NEW: Verdict.ADDED,
    }
    assert result.exit_code == gate.EXIT_REGRESSION
    regression = result.regressions[0]
    assert regression.ci[0] > 1.05 and regression.p_value < 0.05 and regression.n_base == 100
    assert regression.base_median == pytest.approx(0.002, rel=0.05)  # seconds, as pytest-benchmark stores them
    outcome = gate.run_gate(base, new)
    assert outcome.exit_code == 1 and outcome.result == result and json.dumps(outcome.result.to_json())

    console = Console(width=200, record=True)
    console.print(gate.render(result))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "[openvino]" in line)
    assert "regression" in row and "ms (n=100)" in row and "1.1" in row
    assert "removed" in text and "added" in text and "no change" in text and "95% CI" in text


def test_a_a_files_pass(tmp_path):
    rng = np.random.default_rng(12)
    base = write_pytest_benchmark(tmp_path / "a1.json", {TF: latency(rng, 60), OV: latency(rng, 60, 0.2)})
    new = write_pytest_benchmark(tmp_path / "a2.json", {TF: latency(rng, 60), OV: latency(rng, 60, 0.2)})
    outcome = gate.run_gate(base, new)
    assert outcome.exit_code == gate.EXIT_OK and set(outcome.result.verdicts().values()) == {Verdict.NO_CHANGE}


def test_missing_raw_samples_is_unusable_input(tmp_path):
    rng = np.random.default_rng(0)
    base = write_pytest_benchmark(tmp_path / "base.json", {TF: None})
    new = write_pytest_benchmark(tmp_path / "new.json", {TF: latency(rng, 30)})
    outcome = gate.run_gate(base, new)
    assert outcome.exit_code == gate.EXIT_UNUSABLE and outcome.result is None
    assert "no raw samples" in outcome.error and "--benchmark-save-data" in outcome.error
    assert "\n" not in outcome.error
    with pytest.raises(ConfigError, match="--benchmark-save-data"):
        gate.gate_files(base, new)


def test_different_processors_are_refused_unless_allowed(tmp_path):
    rng = np.random.default_rng(0)
    base = write_pytest_benchmark(tmp_path / "base.json", {TF: latency(rng, 30)}, cpu=CPU)
    new = write_pytest_benchmark(tmp_path / "new.json", {TF: latency(rng, 30)}, cpu=OTHER_CPU)
    outcome = gate.run_gate(base, new)
    assert outcome.exit_code == 2 and "different processors" in outcome.error and OTHER_CPU in outcome.error
    assert gate.run_gate(base, new, GateOptions(allow_different_machines=True)).exit_code == 0


def test_processor_comes_from_edgebench_machine_info_first_and_unknown_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    # edgebench's own identity wins over py-cpuinfo's brand_raw
    base = write_pytest_benchmark(tmp_path / "base.json", {TF: latency(rng, 30)}, cpu="generic", edgebench_cpu=CPU)
    new = write_pytest_benchmark(tmp_path / "new.json", {TF: latency(rng, 30)}, cpu=f"  {CPU} ")
    assert gate.run_gate(base, new).exit_code == 0
    unknown = write_pytest_benchmark(tmp_path / "unknown.json", {TF: latency(rng, 30)}, cpu=None)
    outcome = gate.run_gate(base, unknown)
    assert outcome.exit_code == 2 and "no CPU brand" in outcome.error


def test_edgebench_run_reports_are_inputs(tmp_path):
    rng = np.random.default_rng(5)
    reports = tmp_path / "reports"
    base = write_run_report(reports / "run-a", {"tf": latency(rng, 57), "openvino": latency(rng, 300, 0.2)})
    new = write_run_report(reports / "run-b", {"tf": latency(rng, 57), "openvino": latency(rng, 300, 0.24)})
    result = gate.gate_files(base, new / "report.json")  # a run folder or its report.json
    assert result.verdicts() == {"tf": Verdict.NO_CHANGE, "openvino": Verdict.REGRESSION}
    assert result.comparisons[1].base_median == pytest.approx(0.002, rel=0.05)  # ns converted to seconds
    assert result.base_cpu == CPU and result.exit_code == 1

    old = write_run_report(tmp_path / "reports" / "old", {"tf": latency(rng, 57)}, samples=False)
    outcome = gate.run_gate(old, new)
    assert outcome.exit_code == 2 and "samples_ns" in outcome.error


@pytest.mark.parametrize(
    "content,pattern",
    [
        (None, "not a readable JSON"),
        ("{broken", "not a readable JSON"),
        (json.dumps({"hello": 1}), "neither a pytest-benchmark JSON"),
        (json.dumps({"machine_info": {}, "benchmarks": []}), "no benchmarks"),
        (
            json.dumps({"machine_info": {}, "benchmarks": [{"fullname": "t", "stats": {"data": ["x"]}}]}),
            "not a list of non-negative numbers",
        ),
    ],
)
def test_unusable_inputs_exit_2(tmp_path, content, pattern):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = write_pytest_benchmark(tmp_path / "good.json", {TF: latency(np.random.default_rng(0), 30)})
    outcome = gate.run_gate(good, bad)
    assert outcome.exit_code == gate.EXIT_UNUSABLE and pattern in outcome.error


def test_a_folder_without_results_is_unusable(tmp_path):
    good = write_pytest_benchmark(tmp_path / "good.json", {TF: latency(np.random.default_rng(0), 30)})
    (tmp_path / "empty").mkdir()
    outcome = gate.run_gate(tmp_path / "empty", good)
    assert outcome.exit_code == 2 and "no report.json or benchmark.json" in outcome.error


def test_cli_gate_exit_codes(tmp_path, capsys):
    """`edgebench gate` prints the table and exits 0 / 1 / 2 (ok / regression / unusable input)."""
    from harness import cli

    rng = np.random.default_rng(1)
    base = rng.lognormal(np.log(0.003), 0.03, 200).tolist()
    slow = (np.asarray(base) * 1.2).tolist()
    machine = {"edgebench": {"cpu_brand": "Test CPU"}}
    for name, samples in (("base", base), ("slow", slow)):
        (tmp_path / f"{name}.json").write_text(
            json.dumps(
                {
                    "machine_info": machine,
                    "benchmarks": [
                        {
                            "name": "test_x[openvino]",
                            "fullname": "suites/t.py::test_x[openvino]",
                            "params": {},
                            "stats": {"data": samples, "median": float(np.median(samples))},
                        }
                    ],
                }
            )
        )
    assert cli.main(["gate", str(tmp_path / "base.json"), str(tmp_path / "base.json")]) == 0
    assert cli.main(["gate", str(tmp_path / "base.json"), str(tmp_path / "slow.json")]) == 1
    assert "regression" in capsys.readouterr().out
    assert cli.main(["gate", str(tmp_path / "base.json"), str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_ab_refuses_what_it_cannot_measure(tmp_path, capsys):
    """Unusable A/B input is exit 2 with a one-line reason: not a checkout, or an artifact that cannot load."""
    from harness.cli import main

    assert main(["ab", str(tmp_path / "model.tar.gz"), "--base-checkout", str(tmp_path)]) == 2
    assert "not an edgebench checkout" in capsys.readouterr().err
    assert main(["ab", str(tmp_path / "missing.tar.gz"), "--seconds", "1"]) == 2
    error = capsys.readouterr().err
    assert "could not load" in error and "missing.tar.gz: no such model.tar.gz" in error
