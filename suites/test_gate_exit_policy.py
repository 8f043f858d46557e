"""The CI latency gate's exit policy: a regression always fails; removed / insufficient data / added only with
--fail-on, from the library and from `edgebench gate`, with one FAIL line per failing benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from gate_helpers import OLD, OV, TF, latency, write_pytest_benchmark
from harness import gate
from harness.gate import GateOptions, Verdict


def policy_files(tmp_path, verdict: Verdict):
    """BASE and NEW files where the benchmark OV gets ``verdict``, beside TF, which does not change."""
    rng = np.random.default_rng(7)
    base = {TF: latency(rng, 100), OV: latency(rng, 100, 0.2)}
    new = {TF: latency(rng, 100), OV: latency(rng, 100, 0.2)}
    if verdict is Verdict.REMOVED:
        del new[OV]
    elif verdict is Verdict.ADDED:
        del base[OV]
    elif verdict is Verdict.INSUFFICIENT:
        new[OV] = new[OV][:5]
    elif verdict is Verdict.REGRESSION:
        new[OV] = new[OV] * 1.3
    return write_pytest_benchmark(tmp_path / "base.json", base), write_pytest_benchmark(tmp_path / "new.json", new)


ALL = "removed,insufficient,added"
# verdict of OV, --fail-on (None: option not given), exit code
POLICY = [
    (Verdict.REMOVED, None, 0),
    (Verdict.REMOVED, "removed", 1),
    (Verdict.REMOVED, "insufficient,added", 0),
    (Verdict.REMOVED, ALL, 1),
    (Verdict.INSUFFICIENT, None, 0),
    (Verdict.INSUFFICIENT, "insufficient", 1),
    (Verdict.INSUFFICIENT, "removed", 0),
    (Verdict.INSUFFICIENT, ALL, 1),
    (Verdict.ADDED, None, 0),
    (Verdict.ADDED, "added", 1),
    (Verdict.ADDED, "removed,insufficient", 0),
    (Verdict.ADDED, ALL, 1),
    (Verdict.REGRESSION, None, 1),
    (Verdict.REGRESSION, ALL, 1),
    (Verdict.NO_CHANGE, None, 0),
    (Verdict.NO_CHANGE, ALL, 0),
]


@pytest.mark.parametrize(
    "verdict,fail_on,exit_code",
    POLICY,
    ids=[f"{v.value.replace(' ', '-')}-{f or 'default'}-exit{e}" for v, f, e in POLICY],
)
def test_exit_policy(tmp_path, capsys, verdict, fail_on, exit_code):
    """The same exit code from the library and from `edgebench gate [--fail-on ...]`; the verdict is checked
    first, so a case cannot pass by producing some other verdict."""
    from harness import cli

    base, new = policy_files(tmp_path, verdict)
    options = GateOptions() if fail_on is None else GateOptions(fail_on=fail_on)
    outcome = gate.run_gate(base, new, options)
    assert outcome.result.verdicts()[OV] is verdict and outcome.result.verdicts()[TF] is Verdict.NO_CHANGE
    assert outcome.exit_code == exit_code
    assert cli.main(["gate", str(base), str(new), *([] if fail_on is None else ["--fail-on", fail_on])]) == exit_code
    fail_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL ")]
    assert fail_lines == ([f"FAIL {outcome.result.reason(outcome.result.comparisons[1])}"] if exit_code else [])


def test_fail_on_names():
    assert gate.parse_fail_on("") == GateOptions().fail_on == frozenset()
    assert gate.parse_fail_on(" Removed , insufficient-data,") == {Verdict.REMOVED, Verdict.INSUFFICIENT}
    assert GateOptions(fail_on=[Verdict.ADDED, "insufficient data"]).fail_on == {Verdict.ADDED, Verdict.INSUFFICIENT}
    assert gate.format_fail_on({Verdict.ADDED, Verdict.REMOVED}) == "removed,added"


def test_cli_names_each_failing_benchmark_and_its_reason_on_one_line(tmp_path, capsys):
    """--fail-on: one `FAIL <full name>: <verdict> (<why>)` line per benchmark; without it the same benchmarks
    pass, and the summary still counts them."""
    from harness import cli

    rng = np.random.default_rng(3)
    long_name = f"suites/test_latency.py::test_infer_latency_batch1[{'openvino-FP32-' * 8}x]"  # wider than 120
    base = write_pytest_benchmark(
        tmp_path / "base.json", {TF: latency(rng, 60), OLD: latency(rng, 60), long_name: latency(rng, 60)}
    )
    new = write_pytest_benchmark(tmp_path / "new.json", {TF: latency(rng, 60), long_name: latency(rng, 4)})

    assert cli.main(["gate", str(base), str(new), "--fail-on", "removed,insufficient"]) == gate.EXIT_REGRESSION
    lines = capsys.readouterr().out.splitlines()
    fails = [line for line in lines if line.startswith("FAIL ")]
    assert fails == [
        f"FAIL {OLD}: removed (in BASE, not in NEW; --fail-on removed)",
        (
            f"FAIL {long_name}: insufficient data (60 samples in BASE, 4 in NEW; 10 needed on each side; "
            "--fail-on insufficient)"
        ),
    ]
    assert "3 benchmarks: 1 no change, 1 insufficient data, 1 removed" in lines
    assert lines[-1] == "gate: FAIL, exit 1: 2 of 3 benchmarks fail"

    assert cli.main(["gate", str(base), str(new)]) == gate.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    assert "3 benchmarks: 1 no change, 1 insufficient data, 1 removed" in lines
    assert (
        "passing without a comparison: 1 removed, 1 insufficient data (to fail on them: edgebench gate "
        "--fail-on removed,insufficient)"
    ) in lines
    assert lines[-1] == "gate: pass, exit 0"


def test_summary_counts_removed_and_insufficient_even_at_zero(tmp_path):
    result = gate.gate_files(*policy_files(tmp_path, Verdict.NO_CHANGE))
    assert result.summary() == ["2 benchmarks: 2 no change, 0 insufficient data, 0 removed", "gate: pass, exit 0"]
    assert result.to_json()["failures"] == [] and result.to_json()["fail_on"] == []


def test_cli_bad_fail_on_is_unusable_input(tmp_path, capsys):
    from harness import cli

    base, new = policy_files(tmp_path, Verdict.REMOVED)
    assert cli.main(["gate", str(base), str(new), "--fail-on", "removed,regression"]) == gate.EXIT_UNUSABLE
    assert "a regression always fails" in capsys.readouterr().err
