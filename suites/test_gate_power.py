"""The gate's own validation on real measurements: false alarms on A/A comparisons and detection of injected
slowdowns (a wrapper backend adding calibrated extra work, :mod:`harness.backends.slowed`). The rates, the
trials and the measurement seconds are printed in the terminal summary ("edgebench figures"); the asserts
only hold the rates to the targets, never a time.

- Interleaved (same-job) mode, :mod:`harness.ab`: each trial loads three fresh arms of the suite model
  (A, A' = A loaded again, B = A + 2 %), measures them turn by turn for 15 s (10 s per two-arm
  comparison), and gates A' against A (an alarm is false) and B against A (an alarm is a detection).
- Stored-baseline mode, :func:`harness.gate.compare_samples` with the default 5 % minimum effect: separate
  runs, each a fresh process that loads and times the model like a separate job on a dedicated node; run 0
  is the baseline, the A/A runs and the runs slowed by 10 % are gated against it.

Counts: ``--edgebench-gate-trials`` (interleaved, default 6: about 25 s each) and ``--edgebench-gate-runs``
(stored baseline, default 20 A/A + 20 slowed: about 4 s each; marked ``slow``, so
``pytest suites/test_gate_power.py -m slow`` on the node you gate on). The printed figure gives each rate with its
95 % bound and whether the counts are consistent with the target (one-sided binomial test at 5 %; twenty
trials cannot show a rate of 1 %). Whether a shared machine meets the targets is a property of the
machine (its speed regimes, other tenants), so that is printed, not asserted; the asserts hold the gate
itself: it flags the slowed arm more often than the unchanged one.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import gate
from harness.ab import INTERLEAVED_THRESHOLD, ABPlan, Arm, ArmPool, measure_interleaved

pytestmark = [pytest.mark.latency]

INTERLEAVED_SLOWDOWN = 0.02
INTERLEAVED_SECONDS = 14.5  # per trial, wall clock, all three arms: <= 10 s per two-arm comparison
DETECTION_TARGET, FALSE_ALARM_TARGET = 0.95, 0.01
STORED_SLOWDOWN = 0.10
STORED_SECONDS = 1.5  # per run


@pytest.fixture(scope="module")
def trials(pytestconfig: pytest.Config) -> int:
    return pytestconfig.getoption("edgebench_gate_trials")


@pytest.fixture(scope="module")
def runs(pytestconfig: pytest.Config) -> int:
    return pytestconfig.getoption("edgebench_gate_runs")


@pytest.fixture(scope="module")
def artifact_and_batch(suite_artifact, test_images) -> tuple:
    return suite_artifact[0], np.ascontiguousarray(test_images[:1])


def test_interleaved_mode_catches_2_percent(artifact_and_batch, trials, record_property):
    artifact, batch = artifact_and_batch
    arms = [Arm("A", artifact), Arm("A'", artifact), Arm("B", artifact, slowdown=INTERLEAVED_SLOWDOWN)]
    options = gate.GateOptions(threshold=INTERLEAVED_THRESHOLD)
    false_alarms, detections, seconds, ratios = 0, 0, [], []
    for trial in range(trials):
        with ArmPool(arms[trial % 3:] + arms[:trial % 3], ABPlan(), batch) as pool:  # rotate the load order
            session = measure_interleaved(pool, INTERLEAVED_SECONDS, ABPlan.block)
        false_alarms += session.compare("A/A", "A", "A'", options).verdict is gate.Verdict.REGRESSION
        slowed = session.compare("A/B", "A", "B", options)
        detections += slowed.verdict is gate.Verdict.REGRESSION
        seconds.append(session.seconds * 2 / 3)  # the share of the session the two compared arms used
        ratios.append(slowed.ratio)
    record_property("edgebench_figure", _rates(f"interleaved A/B (min effect {INTERLEAVED_THRESHOLD:.1%})", INTERLEAVED_SLOWDOWN, trials,
                                               false_alarms, detections, max(seconds), ratios))
    assert detections > false_alarms, f"the gate flagged {detections}/{trials} slowed and {false_alarms} unchanged"


@pytest.mark.slow  # its outcome is the machine's stability between runs: measure it on the node you gate on
def test_stored_baseline_mode_over_separate_runs(artifact_and_batch, runs, record_property):
    """Stored-baseline mode as a dedicated node uses it. Not in `make test`: on a shared VM one baseline run
    can land in a slow speed regime and then nothing is flagged (seen in a CI run: +10 % measured as 0.68x)."""
    artifact, batch = artifact_and_batch
    baseline = _separate_run(Arm("baseline", artifact), batch)
    options = gate.GateOptions()  # the stored-baseline defaults: 5 % minimum effect
    false_alarms, detections, ratios = 0, 0, []
    for run in range(runs):
        same = _separate_run(Arm(f"A/A {run}", artifact), batch)
        false_alarms += gate.compare_samples("A/A", baseline, same, options).verdict is gate.Verdict.REGRESSION
        slowed = gate.compare_samples("A/B", baseline, _separate_run(Arm(f"B {run}", artifact,
                                                                         slowdown=STORED_SLOWDOWN), batch), options)
        detections += slowed.verdict is gate.Verdict.REGRESSION
        ratios.append(slowed.ratio)
    record_property("edgebench_figure", _rates("stored baseline, separate runs (min effect 5 %)", STORED_SLOWDOWN,
                                               runs, false_alarms, detections, STORED_SECONDS * 2, ratios))
    assert detections > false_alarms, f"the gate flagged {detections}/{runs} slowed and {false_alarms} unchanged"


def _separate_run(arm: Arm, batch: np.ndarray) -> np.ndarray:
    """One run as a separate job would make it: a fresh process loads the model, warms up, times calls."""
    with ArmPool([arm], ABPlan(replicas=1), batch) as pool:
        return measure_interleaved(pool, STORED_SECONDS, ABPlan.block).samples(arm.label)


def _consistent_with_targets(trials: int, false_alarms: int, detections: int) -> str:
    """Whether the counts are plausible (p >= 5 %, one-sided binomial) under the target rates."""
    from scipy.stats import binom

    verdicts = []
    if binom.cdf(detections, trials, DETECTION_TARGET) < 0.05:
        verdicts.append(f"detection below the {DETECTION_TARGET:.0%} target")
    if binom.sf(false_alarms - 1, trials, FALSE_ALARM_TARGET) < 0.05:
        verdicts.append(f"false alarms above the {FALSE_ALARM_TARGET:.0%} target")
    return "; ".join(verdicts) or "consistent with the targets"


def _rates(mode: str, slowdown: float, trials: int, false_alarms: int, detections: int, seconds: float,
           ratios: list[float]) -> str:
    from scipy.stats import beta

    fa_upper = 1.0 if false_alarms >= trials else float(beta.ppf(0.95, false_alarms + 1, trials - false_alarms))
    detection_lower = 0.0 if detections == 0 else float(beta.ppf(0.05, detections, trials - detections + 1))
    return (f"gate {mode}: false alarms {false_alarms}/{trials} A/A (95 % upper bound {fa_upper:.1%}), detected "
            f"{detections}/{trials} at +{slowdown:.0%} (95 % lower bound {detection_lower:.1%}; measured ratio "
            f"median {np.median(ratios):.3f}), {seconds:.1f} s of measurement per comparison: "
            f"{_consistent_with_targets(trials, false_alarms, detections)}")


def test_ab_command_flags_an_injected_slowdown(artifact_and_batch, tmp_path):
    """`edgebench ab` end to end: the same artifact with NEW 10 % slower is a regression (exit 1)."""
    import json

    from harness.cli import main

    artifact, _ = artifact_and_batch
    out = tmp_path / "ab.json"
    assert main(["ab", str(artifact), "--inject-slowdown", "0.10", "--seconds", "4", "--json", str(out)]) == 1
    verdict = json.loads(out.read_text())
    (comparison,) = verdict["comparisons"]
    assert comparison["verdict"] == "regression" and comparison["ratio"] > 1.05
    assert len(verdict["blocks_s"]["BASE"]) == verdict["turns"] == len(verdict["blocks_s"]["NEW"])
