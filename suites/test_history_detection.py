"""``edgebench history``: change points and creep on synthetic histories with known steps (detection rate and
false alarms printed, against a pairwise rule and the real pairwise gate), and a history too short to
analyse."""

from __future__ import annotations

import numpy as np
import pytest

from harness.gate import GateOptions, Verdict, compare_samples
from harness.gate.history_trend import HistoryOptions, analyse
from history_helpers import series_of

NOISE = 0.02  # per-run relative noise of the synthetic medians (a dedicated node's run-to-run spread)
RUNS = 30


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
        found = [cp.index for cp in analyse(series_of(values), options).change_points]
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
    analysis = analyse(series_of(values))
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
    analysis = analyse(series_of([float(np.median(r)) * 1e3 for r in runs]))
    assert analysis.creep is not None and analysis.creep.flagged, analysis.creep
    assert analysis.creep.max_step < 0.05 and analysis.creep.total > 0.10 and analysis.status == "creep"
    assert any("a pairwise gate passes every step" in line for line in analysis.findings), analysis.findings

    flagged = false = 0
    for seed in range(20):
        r = np.random.default_rng(100 + seed)
        flagged += (
            analyse(
                series_of(np.r_[np.full(20, 4.0), 4.0 * 1.01 ** np.arange(1, 16)] * (1 + 0.005 * r.standard_normal(35)))
            ).status
            == "creep"
        )
        flat = analyse(series_of(4.0 * (1 + 0.005 * r.standard_normal(35))))
        false += bool(flat.creep and flat.creep.flagged)
    line = (
        f"history creep (1 %/run over the last 15 of 35 runs, 0.5 % noise): flagged {flagged}/20, on flat "
        f"histories {false}/20; every run-to-run step passed the pairwise gate ({len(runs) - 1} comparisons, "
        f"{analysis.creep.total:+.1%} cumulative)"
    )
    record_property("edgebench_figure", line)
    assert flagged == 20 and false == 0, line


def test_short_history_is_reported_not_analysed():
    analysis = analyse(series_of([4.0, 4.1, 4.0]))
    assert analysis.status == "not analysed" and "3 run(s): too short" in analysis.note and not analysis.findings
