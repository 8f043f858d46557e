"""Issue 12, items 1-2, without a model: the three verdicts (ok / regression / inconclusive), the minimum
detectable slowdown checked against a simulation of the rule, drift compensation on stored files (a regime
shift between jobs is cancelled, a slowdown of the model alone is not) and the re-measurement of
inconclusive results (``edgebench gate --rerun-inconclusive``). Synthetic series with fixed seeds; fast."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from harness import gate
from harness.gate import GateOptions, Verdict, compare, drift

CPU = "Test CPU"
NAME = "suites/test_latency.py::test_infer_latency_batch1[openvino]"


def lognormal(rng: np.random.Generator, n: int, factor: float = 1.0, sigma: float = 0.05) -> np.ndarray:
    return 0.004 * factor * rng.lognormal(0.0, sigma, n)


# ------------------------------------------------------------------------------------------------
# The policy on synthetic series


@pytest.mark.parametrize(
    "label,n,sigma,factor,verdict,outcome",
    [
        ("clear regression: +20 %, tight", 150, 0.05, 1.20, Verdict.REGRESSION, "regression"),
        ("clear ok: unchanged, tight", 150, 0.05, 1.00, Verdict.NO_CHANGE, "ok"),
        ("ok: 15 % faster", 150, 0.05, 0.85, Verdict.IMPROVEMENT, "ok"),
        ("too noisy to tell: +10 %, sigma 0.6", 40, 0.6, 1.10, Verdict.INCONCLUSIVE, "inconclusive"),
        ("too noisy to tell: unchanged, sigma 0.6", 40, 0.6, 1.00, Verdict.INCONCLUSIVE, "inconclusive"),
    ],
)
def test_three_verdicts_on_synthetic_series(label, n, sigma, factor, verdict, outcome):
    rng = np.random.default_rng(5)
    found = gate.compare_samples(
        "bench", lognormal(rng, n, sigma=sigma), lognormal(rng, n, factor, sigma), GateOptions()
    )
    assert found.verdict is verdict and found.outcome == outcome, (label, found)
    # every comparison names the smallest slowdown it could have flagged; a noisy one cannot flag 10 %
    assert found.mde is not None and found.mde > found.threshold
    assert (found.mde > 0.10) == (sigma > 0.5), (label, found.mde)


def test_minimum_detectable_effect_formula():
    # (1 + t)·exp((z(1 − alpha/2) + z(power))·se) − 1; zero noise leaves just the minimum effect
    assert compare.minimum_detectable_effect(0.0, 0.05, 0.05, 0.8) == pytest.approx(0.05)
    assert compare.minimum_detectable_effect(0.01, 0.05, 0.05, 0.8) == pytest.approx(
        1.05 * np.exp(2.8016 * 0.01) - 1, rel=1e-4
    )
    assert compare.minimum_detectable_effect(float("inf"), 0.05, 0.05) == float("inf")
    # more power or a smaller alpha needs a larger effect
    assert compare.minimum_detectable_effect(0.01, 0.05, 0.05, 0.9) > compare.minimum_detectable_effect(
        0.01, 0.05, 0.05, 0.8
    )
    assert compare.minimum_detectable_effect(0.01, 0.05, 0.01, 0.8) > compare.minimum_detectable_effect(
        0.01, 0.05, 0.05, 0.8
    )


@pytest.mark.parametrize("n,sigma", [(100, 0.05), (40, 0.08)])
def test_minimum_detectable_effect_matches_a_simulation_of_the_rule(n, sigma, record_property):
    """The printed minimum is what the rule achieves: at a true slowdown equal to the MDE (from the spread of
    an A/A comparison with the same n and noise), the simulated gate flags about ``power`` of the runs; at
    the minimum effect itself about alpha/2 or less."""
    options = GateOptions(resamples=500)
    pilot = [
        gate.compare_samples(
            "aa",
            lognormal(np.random.default_rng(900 + s), n, sigma=sigma),
            lognormal(np.random.default_rng(950 + s), n, sigma=sigma),
            options,
        ).mde
        for s in range(10)
    ]
    mde = float(np.median(pilot))
    sims = 200
    flagged = at_threshold = 0
    for seed in range(sims):
        rng = np.random.default_rng(seed)
        base = lognormal(rng, n, sigma=sigma)
        flagged += (
            gate.compare_samples("x", base, lognormal(rng, n, 1 + mde, sigma), options).verdict is Verdict.REGRESSION
        )
        at_threshold += (
            gate.compare_samples("x", base, lognormal(rng, n, 1 + options.threshold, sigma), options).verdict
            is Verdict.REGRESSION
        )
    rate = flagged / sims
    line = (
        f"gate minimum detectable slowdown (n={n}, sigma={sigma}, alpha 0.05, power 0.8): {mde:.1%}; simulated "
        f"detection at that slowdown {flagged}/{sims} ({rate:.0%}), at the 5 % min effect {at_threshold}/{sims}"
    )
    print(line)
    record_property("edgebench_figure", line)
    assert 0.68 <= rate <= 0.92, line  # 0.8 ± 3 binomial sd (200 runs) plus the spread of the estimated se
    assert at_threshold / sims <= 0.06, line


# ------------------------------------------------------------------------------------------------
# Drift compensation on stored files


def turns(rng: np.random.Generator, count: int, speed: float, model_factor: float = 1.0, block: int = 5):
    """One job's drift record: per turn, the machine runs at ``speed`` (1.0 fast, 1.5 slow: both workloads
    scale), with per-call noise; the model is ``model_factor`` slower on its own."""
    model, reference = [], []
    for _ in range(count):
        jitter = speed * rng.lognormal(0, 0.02)  # the regime drifts a little within the job too
        model.append([round(4e6 * model_factor * jitter * x) for x in rng.lognormal(0, 0.03, block)])
        reference.append([round(1e6 * jitter * x) for x in rng.lognormal(0, 0.03, block)])
    return {
        "schema": drift.SCHEMA,
        "reference": {"name": drift.REFERENCE},
        "model_ns": model,
        "reference_ns": reference,
    }


def write_job(path, record: dict | None, raw: list[float] | None = None):
    raw = raw if raw is not None else [x / 1e9 for block in record["model_ns"] for x in block]
    bench = {
        "name": NAME.split("::")[-1],
        "fullname": NAME,
        "params": {},
        "extra_info": {},
        "stats": {"data": raw, "median": float(np.median(raw))},
    }
    if record is not None:
        bench["extra_info"][drift.FIELD] = record
    path.write_text(json.dumps({"machine_info": {"edgebench": {"cpu_brand": CPU}}, "benchmarks": [bench]}))
    return path


@pytest.mark.parametrize(
    "speed,model_factor,raw_verdict,compensated_verdict",
    [
        (1.4, 1.00, Verdict.REGRESSION, Verdict.NO_CHANGE),  # a slow regime is a false alarm only uncompensated
        (1.0, 1.10, Verdict.REGRESSION, Verdict.REGRESSION),  # a real 10 % is caught either way
        (0.75, 1.10, Verdict.IMPROVEMENT, Verdict.REGRESSION),  # a fast regime hides it from the raw gate
    ],
)
def test_compensation_cancels_the_machines_regime_not_the_models_slowdown(
    tmp_path, speed, model_factor, raw_verdict, compensated_verdict
):
    base = write_job(tmp_path / "base.json", turns(np.random.default_rng(1), 60, 1.0))
    new = write_job(tmp_path / "new.json", turns(np.random.default_rng(2), 60, speed, model_factor))
    compensated = gate.gate_files(base, new).comparisons[0]
    raw = gate.gate_files(base, new, GateOptions(compensate=False)).comparisons[0]
    assert (raw.mode, raw.verdict) == ("raw", raw_verdict), raw
    assert (compensated.mode, compensated.verdict) == ("compensated", compensated_verdict), compensated
    assert compensated.ratio == pytest.approx(model_factor, rel=0.03)
    assert compensated.base_median == raw.base_median  # the printed medians are the raw ones
    assert compensated.n_base == 60  # turns, not calls


def test_one_side_without_the_reference_series_is_judged_raw_and_says_so(tmp_path):
    record = turns(np.random.default_rng(1), 60, 1.0)
    base = write_job(tmp_path / "base.json", None, [x / 1e9 for block in record["model_ns"] for x in block])
    new = write_job(tmp_path / "new.json", turns(np.random.default_rng(2), 60, 1.0))
    found = gate.gate_files(base, new).comparisons[0]
    assert found.mode == "raw" and f"uncompensated: {base} has no reference series" in found.note


@pytest.mark.parametrize(
    "mangle,pattern",
    [
        (lambda r: r.update(schema="other/9"), "not an edgebench.drift/1 record"),
        (lambda r: r["reference_ns"].pop(), "one block per turn"),
        (lambda r: r["model_ns"].__setitem__(0, []), "median is not a positive number|non-empty"),
        (lambda r: r["reference_ns"].__setitem__(3, ["x"]), "non-empty lists of numbers"),
    ],
)
def test_a_broken_drift_record_is_one_line_naming_the_file(tmp_path, capsys, mangle, pattern):
    from harness import cli

    record = turns(np.random.default_rng(1), 20, 1.0)
    base = write_job(tmp_path / "base.json", record)
    mangle(record)
    broken = write_job(tmp_path / "broken.json", record, raw=[0.004] * 100)
    assert cli.main(["gate", str(base), str(broken)]) == gate.EXIT_UNUSABLE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(broken) in err and drift.FIELD in err
    assert __import__("re").search(pattern, err), err
    assert cli.main(["gate", str(base), str(broken), "--no-compensation"]) == gate.EXIT_OK  # the way out works


# ------------------------------------------------------------------------------------------------
# Re-measuring inconclusive results


RERUN = """
import json, sys
import numpy as np
sys.path.insert(0, {suites!r})
from test_gate_verdicts import turns, write_job
from pathlib import Path
count = Path({counter!r})
n = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(n))
write_job(Path({new!r}), turns(np.random.default_rng(100 + n), 60, 1.0, {factor}))
"""


@pytest.mark.parametrize("start", ["noisy", "short"])
@pytest.mark.parametrize("factor,final", [(1.0, Verdict.NO_CHANGE), (1.2, Verdict.REGRESSION)])
def test_gate_re_measures_an_inconclusive_benchmark_until_it_decides(tmp_path, capsys, start, factor, final):
    """NEW starts with 12 noisy turns (inconclusive) or 5 turns (insufficient data); the rerun command writes
    a fresh 60-turn job (unchanged, or 20 % slower), pooled with the earlier turns, and the verdict settles."""
    from pathlib import Path

    from harness import cli

    base = write_job(tmp_path / "base.json", turns(np.random.default_rng(1), 60, 1.0))
    noisy = turns(np.random.default_rng(2), 12 if start == "noisy" else 5, 1.0)
    noisy["model_ns"] = [[x * (3 if i % 2 else 1) for x in block] for i, block in enumerate(noisy["model_ns"])]
    new = write_job(tmp_path / "new.json", noisy)
    first = gate.gate_files(base, new).comparisons[0]
    assert first.verdict is (Verdict.INCONCLUSIVE if start == "noisy" else Verdict.INSUFFICIENT)
    assert first.outcome == "inconclusive"
    script = tmp_path / "rerun.py"
    script.write_text(
        RERUN.format(suites=str(Path(__file__).parent), counter=str(tmp_path / "count"), new=str(new), factor=factor)
    )
    code = cli.main(
        ["gate", str(base), str(new), "--rerun-inconclusive", "3", "--rerun-command", f"{sys.executable} {script}"]
    )
    out, err = capsys.readouterr()
    assert code == (gate.EXIT_REGRESSION if final is Verdict.REGRESSION else gate.EXIT_OK), out
    assert (tmp_path / "count").read_text() == "1"  # one re-measurement settled it
    assert "re-measuring (1/3): 1 inconclusive" in err and str(final) in out


def test_rerun_options_are_checked(tmp_path, capsys):
    from harness import cli

    base = write_job(tmp_path / "base.json", turns(np.random.default_rng(1), 60, 1.0))
    noisy = turns(np.random.default_rng(2), 12, 1.0)
    noisy["model_ns"] = [[x * (3 if i % 2 else 1) for x in block] for i, block in enumerate(noisy["model_ns"])]
    new = write_job(tmp_path / "new.json", noisy)
    assert cli.main(["gate", str(base), str(new), "--rerun-inconclusive", "2"]) == gate.EXIT_UNUSABLE
    assert "needs --rerun-command" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "gate",
                str(base),
                str(new),
                "--rerun-inconclusive",
                "2",
                "--rerun-command",
                f"{sys.executable} -c 'raise SystemExit(3)'",
            ]
        )
        == gate.EXIT_UNUSABLE
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("edgebench gate: re-measuring (1/2)")  # progress, then the one-line error
    assert len(err) == 2 and err[1].startswith("edgebench: error: ") and "exited with 3 on re-measurement 1" in err[1]
    # inconclusive passes by default, fails when asked, and is named with its smallest detectable slowdown
    assert cli.main(["gate", str(base), str(new)]) == gate.EXIT_OK
    assert cli.main(["gate", str(base), str(new), "--fail-on", "inconclusive"]) == gate.EXIT_REGRESSION
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("INCONCLUSIVE ", "FAIL "))]
    assert [line.split(" ", 1)[0] for line in lines] == ["INCONCLUSIVE", "FAIL"], out  # passing, then failing
    assert all(f"{NAME}: inconclusive (compensated median ratio" in line for line in lines), lines
    assert all("smallest detectable slowdown here +" in line for line in lines), lines
