"""The CI latency gate (harness/gate/): its statistics on synthetic latency with fixed seeds (measured false
alarm and detection counts are printed and recorded as edgebench figures), and its file inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from harness import gate
from harness.errors import ConfigError
from harness.gate import GateOptions, Verdict, compare
from harness.report import RUN_SCHEMA

CPU = "Intel(R) Xeon(R) Processor"
OTHER_CPU = "AMD EPYC 7B13"
ALARMS = {Verdict.REGRESSION, Verdict.IMPROVEMENT}


def latency(
    rng: np.random.Generator,
    n: int,
    factor: float = 1.0,
    sigma: float = 0.06,
    spikes: float = 0.02,
    median_s: float = 0.010,
) -> np.ndarray:
    """Latency-like noise: a lognormal body and a few 1.5–3× spikes (preemption, GC, page faults)."""
    samples = median_s * factor * rng.lognormal(0.0, sigma, n)
    hit = rng.random(n) < spikes
    samples[hit] *= rng.uniform(1.5, 3.0, int(hit.sum()))
    return samples


# label, samples per side, noise sigma, NEW/BASE slowdown, min effect, seeds, counted verdicts, (min, max) count
RATE_CASES = [
    ("A/A, stored baseline", 150, 0.06, 1.00, 0.05, 50, ALARMS, (0, 1)),
    ("10% slower, stored baseline", 150, 0.06, 1.10, 0.05, 50, {Verdict.REGRESSION}, (48, 50)),
    ("2% slower, under the 5% min effect", 150, 0.06, 1.02, 0.05, 50, {Verdict.REGRESSION}, (0, 0)),
    ("15% faster", 150, 0.06, 0.85, 0.05, 50, {Verdict.IMPROVEMENT}, (48, 50)),
    # no minimum effect: the rank test and the interval alone, so about alpha / 2 per side may fire
    ("A/A, min effect 0 (calibration)", 150, 0.06, 1.00, 0.0, 100, ALARMS, (0, 10)),
    # pytest-benchmark's 30 rounds are too few for a 5% min effect at this noise: detection drops
    ("10% slower, only 30 rounds", 30, 0.055, 1.10, 0.05, 50, {Verdict.REGRESSION}, (25, 50)),
    # same-job interleaved A/B: tight noise, many rounds, 1% min effect
    ("A/A, interleaved-like", 400, 0.02, 1.00, 0.01, 30, ALARMS, (0, 1)),
    ("2% slower, interleaved-like", 400, 0.02, 1.02, 0.01, 30, {Verdict.REGRESSION}, (29, 30)),
]


@pytest.mark.parametrize(
    "label,n,sigma,factor,threshold,seeds,counted,bounds", RATE_CASES, ids=[case[0] for case in RATE_CASES]
)
def test_false_alarm_and_detection_rates(label, n, sigma, factor, threshold, seeds, counted, bounds, record_property):
    options = GateOptions(threshold=threshold)
    verdicts = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        base, new = latency(rng, n, sigma=sigma), latency(rng, n, factor, sigma=sigma)
        verdicts.append(gate.compare_samples("bench", base, new, options).verdict)
    count = sum(v in counted for v in verdicts)
    figure = (
        f"gate {label}: {count}/{seeds} {'/'.join(sorted(counted))} "
        f"(n={n} per side, sigma={sigma}, min effect {threshold:.0%}, alpha {options.alpha})"
    )
    print(figure)
    record_property("edgebench_figure", figure)
    assert bounds[0] <= count <= bounds[1], figure


def test_a_fatter_tail_without_a_median_shift_is_significant_but_not_a_regression():
    rng = np.random.default_rng(1)
    base, new = latency(rng, 150), latency(rng, 150, spikes=0.25)
    result = gate.compare_samples("bench", base, new)
    assert result.p_value < 0.01 and result.ratio < 1.05
    assert result.verdict is Verdict.NO_CHANGE


def test_too_few_samples_is_insufficient_data_not_a_pass_or_fail():
    rng = np.random.default_rng(0)
    result = gate.compare_samples("bench", latency(rng, 5), latency(rng, 200, 2.0))
    assert result.verdict is Verdict.INSUFFICIENT and result.p_value is None and result.n_base == 5
    assert gate.compare_samples("zero", np.zeros(20), np.ones(20)).verdict is Verdict.INSUFFICIENT


def test_verdicts_are_deterministic():
    rng = np.random.default_rng(3)
    base, new = latency(rng, 100), latency(rng, 100, 1.04)
    assert gate.compare_samples("b", base, new) == gate.compare_samples("b", base, new)


@pytest.mark.parametrize(
    "p,ci,verdict",
    [
        (0.001, (1.06, 1.2), Verdict.REGRESSION),
        (0.001, (1.04, 1.2), Verdict.INCONCLUSIVE),  # could be under the min effect, or well over it
        (0.2, (1.06, 1.2), Verdict.INCONCLUSIVE),  # the rank test does not see a difference
        (0.2, (0.99, 1.05), Verdict.NO_CHANGE),  # a slowdown beyond 5 % is ruled out
        (0.001, (1.01, 1.04), Verdict.NO_CHANGE),  # slower, significantly, but by less than the min effect
        (0.001, (0.80, 0.95), Verdict.IMPROVEMENT),  # 0.95 < 1 / 1.05
        (0.001, (0.80, 0.96), Verdict.NO_CHANGE),
    ],
)
def test_decision_rule(p, ci, verdict):
    assert compare.decide(p, ci, threshold=0.05, alpha=0.05) is verdict


def test_min_effect_per_benchmark_by_name_or_glob():
    options = GateOptions(thresholds={"suites/a.py::noisy": 0.20, "*[openvino]": 0.15})
    assert options.threshold_for("suites/a.py::noisy") == 0.20
    assert options.threshold_for("suites/a.py::t[openvino]") == 0.15
    assert options.threshold_for("suites/a.py::t[tf]") == 0.05
    rng = np.random.default_rng(0)
    base, new = latency(rng, 150), latency(rng, 150, 1.10)
    assert gate.compare_samples("suites/a.py::noisy", base, new, options).verdict is Verdict.NO_CHANGE
    assert gate.compare_samples("suites/a.py::t[tf]", base, new, options).verdict is Verdict.REGRESSION


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"threshold": -0.1}, "threshold"),
        ({"thresholds": {"x": float("nan")}}, "threshold for 'x'"),
        ({"alpha": 0.0}, "alpha"),
        ({"min_samples": 1}, "min_samples"),
        ({"resamples": 10}, "resamples"),
        ({"fail_on": "removed,bogus"}, "--fail-on 'bogus'"),
        ({"fail_on": "regression"}, "a regression always fails"),
        ({"fail_on": ["no change"]}, "choose from removed, insufficient, added"),
    ],
)
def test_bad_options_are_config_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        GateOptions(**kwargs)


def regime_turns(rng: np.random.Generator, turns: int, factor: float) -> tuple[list, list]:
    """Interleaved blocks on a machine that jumps between two speed regimes 1.5x apart from turn to turn."""
    speeds = rng.choice([1.0, 1.5], size=turns)
    base = [latency(rng, 5, speed) for speed in speeds]
    new = [latency(rng, 5, speed * factor) for speed in speeds]
    return base, new


def test_interleaved_comparison_removes_the_machines_speed_regimes():
    """2 % slower within every turn, turns 1.5x apart: dividing by each turn's median finds the 2 %, which
    pooling all samples (as the stored-baseline mode must) loses in the regime spread."""
    rng = np.random.default_rng(11)
    options = GateOptions(threshold=0.01)
    base, new = regime_turns(rng, 300, 1.02)
    found = gate.compare_interleaved("ab", base, new, options)
    assert found.verdict is Verdict.REGRESSION and found.ratio == pytest.approx(1.02, abs=0.006)
    pooled = gate.compare_samples("ab", np.concatenate(base), np.concatenate(new), options)
    # pooled, the regime spread hides the 2 %: it can neither flag nor clear it, and says so
    assert pooled.verdict is Verdict.INCONCLUSIVE and pooled.ci[1] - pooled.ci[0] > found.ci[1] - found.ci[0]
    assert pooled.mde > 0.02 > found.mde
    same_base, same_new = regime_turns(rng, 300, 1.0)
    assert gate.compare_interleaved("aa", same_base, same_new, options).verdict is Verdict.NO_CHANGE
    assert found.base_median == pytest.approx(float(np.median(np.concatenate(base))))  # raw medians printed


def test_interleaved_comparison_needs_paired_turns():
    with pytest.raises(ConfigError, match="same number"):
        gate.compare_interleaved("ab", [[1.0, 1.0]], [[1.0], [1.0]])


# ------------------------------------------------------------------------------------------------
# Files


def write_pytest_benchmark(path, benchmarks: dict, cpu: str | None = CPU, edgebench_cpu: str | None = None):
    """A --benchmark-json file as pytest-benchmark 5 writes it (with --benchmark-save-data); None: no data."""
    machine_info = {"node": "ci", "machine": "x86_64", "python_version": "3.11.7", "system": "Linux"}
    if cpu is not None:
        machine_info["cpu"] = {"arch": "X86_64", "count": 2, "brand_raw": cpu, "vendor_id_raw": "GenuineIntel"}
    if edgebench_cpu is not None:
        machine_info["edgebench"] = {"cpu_brand": edgebench_cpu, "usable_cpus": 2, "isa_flags": ["avx2"]}
    entries = []
    for fullname, data in benchmarks.items():
        name = fullname.split("::")[-1]
        param = name[name.index("[") + 1 : -1]
        stats = {"rounds": 0 if data is None else len(data), "iterations": 1}
        if data is not None:
            stats.update(
                min=float(np.min(data)),
                max=float(np.max(data)),
                mean=float(np.mean(data)),
                median=float(np.median(data)),
                data=[float(x) for x in data],
            )
        entries.append(
            {
                "group": "infer-batch1",
                "name": name,
                "fullname": fullname,
                "params": {"name": param},
                "param": param,
                "extra_info": {"backend": param, "device": "CPU", "precision": "FP32"},
                "options": {"timer": "perf_counter", "min_rounds": 5, "warmup": False},
                "stats": stats,
            }
        )
    path.write_text(
        json.dumps(
            {
                "machine_info": machine_info,
                "commit_info": {"id": "abc"},
                "benchmarks": entries,
                "datetime": "2026-11-25T14:21:43",
                "version": "5.1.0",
            }
        )
    )
    return path


def write_run_report(run_dir, backends: dict, cpu: str = CPU, samples: bool = True):
    """reports/<run-id>/report.json as edgebench run writes it (latency.samples_ns in nanoseconds)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    latency_of = {}
    for label, seconds in backends.items():
        ns = np.round(np.asarray(seconds) * 1e9).astype(int)
        latency_of[label] = {
            "n": len(ns),
            "median_ms": float(np.median(ns)) / 1e6,
            "p90_ms": 0.0,
            **({"samples_ns": ns.tolist()} if samples else {}),
        }
    document = {
        "schema": RUN_SCHEMA,
        "run_id": run_dir.name,
        "machine": {"cpu_brand": cpu, "usable_cpus": 2, "isa_flags": ["avx2"]},
        "backends": {
            label: {"describe": {"backend": label, "device": "CPU", "precision": "FP32"}, "latency": latency_of[label]}
            for label in backends
        },
        "parity": {},
        "accuracy": {},
    }
    (run_dir / "report.json").write_text(json.dumps(document))
    return run_dir


BENCH = "suites/test_latency.py::test_infer_latency_batch1"
TF, OV, OLD, NEW = (f"{BENCH}[{backend}]" for backend in ("tf", "openvino", "ovtf", "null"))


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


# ------------------------------------------------------------------------------------------------
# Exit policy: a regression always fails; removed / insufficient data / added only with --fail-on


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


def test_ab_refuses_what_it_cannot_measure(tmp_path, capsys):
    """Unusable A/B input is exit 2 with a one-line reason: not a checkout, or an artifact that cannot load."""
    from harness.cli import main

    assert main(["ab", str(tmp_path / "model.tar.gz"), "--base-checkout", str(tmp_path)]) == 2
    assert "not an edgebench checkout" in capsys.readouterr().err
    assert main(["ab", str(tmp_path / "missing.tar.gz"), "--seconds", "1"]) == 2
    error = capsys.readouterr().err
    assert "could not load" in error and "missing.tar.gz: no such model.tar.gz" in error
