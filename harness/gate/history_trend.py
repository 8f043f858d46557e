"""The analysis of ``edgebench history``, pure functions without I/O: stored results -> one
:class:`Series` per machine, kind and benchmark (:func:`build_series`) -> its :class:`Analysis` (change
points and creep, :func:`analyse`).

Series: per (machine key, kind, benchmark) the runs in time order; per run the median latency of its raw
samples and, where the benchmark stored the drift-compensation record of :mod:`harness.gate.drift`
(``extra_info["edgebench_drift"]``, schema ``edgebench.drift/1``), the median of its per-turn
model ÷ reference ratios. ``metric="auto"`` analyses the compensated series when every run of the series has
one and the raw medians otherwise (the page shows both).

Change points: Apache Otava (``apache-otava``, formerly Datastax's *hunter*, now an Apache incubator project
with releases in 2025), :func:`otava.analysis.compute_change_points`: e-divisive means (Matteson & James)
over sliding windows, then a merge step that keeps only change points whose Student's t-test p-value is below
``max_pvalue`` (Fleming et al., ICPE 2023, "Hunter: Using Change Point Detection to Hunt for Performance
Regressions"). Chosen over MongoDB's ``signal-processing-algorithms`` (the e-divisive of its CI) because that
one cannot be installed beside this project: it requires ``numpy<2`` and ``setuptools<71`` and ships as a
source distribution with a C extension, while this project needs numpy 2 (TensorFlow 2.21, OpenVINO 2026).
Otava's cost: it pins numpy (``==2.2.*`` on Python < 3.14) and scipy (``<1.17``) and brings client libraries
for its own data sources (BigQuery, Postgres, Slack) that edgebench never imports; only
``otava.analysis`` is used. Otava is deterministic (no permutation test), fast (about 2 ms for 30 runs)
and handles the short series a node's history has (it works with fewer than 10 points).

Creep (:func:`creep`): over the last ``creep_window`` runs, Kendall's tau trend test and the Theil–Sen slope
(:mod:`scipy.stats`). Flagged when the trend is significant (p < ``creep_alpha``) and the cumulative change
over the window (slope × runs, relative to the window's fitted start) reaches the gate's minimum effect
(``threshold``, default :class:`harness.gate.GateOptions`'s 5 %), and a straight line fits the window better
than any single step (a step inside the window is a change point, not creep). The finding says how large the largest
run-to-run step in the window was: a creep of 1 %/run over 15 runs never moves two consecutive runs apart by
5 %, so a pairwise gate passes every step. Each change point likewise says whether the run-to-run step across
it reached the threshold; ``missed_by_pairwise`` marks the ones a pairwise gate on consecutive runs would not
have flagged (the step hidden in run-to-run noise, or spread over several runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.gate.history_records import MachineKey, Point, StoredResult
from harness.gate.verdicts import GateOptions
from harness.numeric import FloatArray


@dataclass(frozen=True)
class Series:
    key: MachineKey
    kind: str
    name: str
    when: tuple[datetime, ...]
    sources: tuple[str, ...]
    points: tuple[Point, ...]

    @property
    def raw(self) -> FloatArray:
        return np.array([p.median_ms for p in self.points])

    @property
    def compensated(self) -> FloatArray | None:
        values = [p.compensated for p in self.points]
        return None if any(v is None for v in values) else np.array(values, dtype=float)


def build_series(results: Iterable[StoredResult]) -> list[Series]:
    """One series per (machine key, kind, benchmark), runs in time order."""
    grouped: dict[tuple[MachineKey, str, str], list[tuple[datetime, str, Point]]] = {}
    for result in results:
        for name, point in result.benchmarks.items():
            grouped.setdefault((result.key, result.kind, name), []).append((result.when, result.source, point))
    series = []
    for (key, kind, name), entries in sorted(grouped.items(), key=lambda item: item[0]):
        entries.sort(key=lambda e: (e[0], e[1]))
        series.append(
            Series(
                key,
                kind,
                name,
                tuple(e[0] for e in entries),
                tuple(e[1] for e in entries),
                tuple(e[2] for e in entries),
            )
        )
    return series


@dataclass(frozen=True)
class HistoryOptions:
    """How sure and how large; see the module docstring."""

    # Otava's default: a change point's t-test p-value must be below it
    max_pvalue: float = field(default=0.001, metadata={"help": "Otava's change-point significance"})
    min_magnitude: float = 0.0  # Otava: drop change points smaller than this relative change
    window_len: int = 30  # Otava's sliding window (runs)
    threshold: float = field(
        default=GateOptions.threshold,
        metadata={"help": "the pairwise gate's minimum effect, for creep and missed steps"},
    )
    creep_window: int = 15  # runs at the end of a series tested for a trend
    creep_alpha: float = 0.01  # Kendall's tau p-value below which a trend counts
    min_points: int = 6  # fewer runs: too short to analyse
    metric: str = field(
        default="auto",
        metadata={  # auto | raw | compensated
            "help": "series to analyse: drift-compensated where every run has it (auto), or raw medians"
        },
    )

    def __post_init__(self) -> None:
        if self.metric not in ("auto", "raw", "compensated"):
            raise ConfigError(f"--metric {self.metric!r}: choose auto, raw or compensated")
        if not 0 < self.max_pvalue < 0.5:
            raise ConfigError(f"--max-pvalue {self.max_pvalue}: choose a p-value between 0 and 0.5 (e.g. 0.001)")
        if not 0 < self.threshold < 10:
            raise ConfigError(f"--threshold {self.threshold}: give a fraction > 0 (0.05 means 5 %)")
        if self.creep_window < 4 or self.min_points < 4:
            raise ConfigError("--creep-window and the minimum history length need at least 4 runs")


@dataclass(frozen=True)
class ChangePoint:
    index: int  # first run after the change
    before: float  # mean of the segment before (Otava's t-test stats)
    after: float
    p_value: float
    step: float  # run-to-run relative change across the change point: values[index] / values[index-1] - 1
    threshold: float

    @property
    def change(self) -> float:
        return self.after / self.before - 1 if self.before else 0.0

    @property
    def missed_by_pairwise(self) -> bool:
        """The consecutive runs across it differ by less than the gate's minimum effect (in its direction)."""
        return (self.step if self.change > 0 else -self.step) < self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "p_value": self.p_value,
            "run_to_run_step": self.step,
            "missed_by_pairwise": self.missed_by_pairwise,
        }


@dataclass(frozen=True)
class Creep:
    start: int  # first run of the window
    runs: int
    slope: float  # relative change per run (Theil–Sen slope ÷ fitted value at the window's start)
    total: float  # cumulative relative change over the window
    p_value: float  # Kendall's tau
    max_step: float  # largest |run-to-run| relative change inside the window
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "runs": self.runs,
            "slope_per_run": self.slope,
            "total": self.total,
            "p_value": self.p_value,
            "max_run_to_run_step": self.max_step,
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class Analysis:
    series: Series
    metric: str  # "raw" (median ms) or "compensated" (model ÷ reference)
    values: FloatArray
    change_points: tuple[ChangePoint, ...]
    creep: Creep | None
    threshold: float = HistoryOptions.threshold  # the pairwise gate's minimum effect the findings compare with
    note: str = ""  # why there is no analysis (too short, metric missing)

    @property
    def findings(self) -> list[str]:
        unit = "latency" if self.metric == "raw" else "compensated latency"
        lines = [
            f"{'regression' if cp.change > 0 else 'improvement'}: {unit} {cp.change:+.1%} from run "
            f"{cp.index + 1} ({self.series.when[cp.index]:%Y-%m-%d %H:%M}; p={cp.p_value:.1g}; run-to-run "
            f"step {cp.step:+.1%}" + (", missed by a pairwise gate" if cp.missed_by_pairwise else "") + ")"
            for cp in self.change_points
        ]
        if self.creep and self.creep.flagged:
            c = self.creep
            lines.append(
                f"creep: {unit} {c.total:+.1%} over the last {c.runs} runs ({c.slope:+.2%}/run, Kendall "
                f"p={c.p_value:.1g}); largest run-to-run step {c.max_step:.1%}"
                + (
                    f" < the gate's {self.threshold:.0%}: a pairwise gate passes every step"
                    if c.max_step < self.threshold
                    else ""
                )
            )
        return lines

    @property
    def status(self) -> str:
        if self.note:
            return "not analysed"
        if self.creep and self.creep.flagged and self.creep.total > 0:
            return "creep"
        latest = self.change_points[-1] if self.change_points else None
        if latest is None:
            return "stable"
        return "regression" if latest.change > 0 else "improvement"

    def to_json(self) -> dict[str, Any]:
        s = self.series
        return {
            "machine": s.key.to_json(),
            "machine_label": s.key.label(),
            "kind": s.kind,
            "benchmark": s.name,
            "metric": self.metric,
            "status": self.status,
            "note": self.note,
            "findings": self.findings,
            "runs": [
                {"when": w.isoformat(), "source": src, "median_ms": p.median_ms, "n": p.n, "compensated": p.compensated}
                for w, src, p in zip(s.when, s.sources, s.points, strict=True)
            ],
            "change_points": [cp.to_json() for cp in self.change_points],
            "creep": self.creep.to_json() if self.creep else None,
        }


def change_points(
    values: Sequence[float] | FloatArray, options: HistoryOptions = HistoryOptions()
) -> list[ChangePoint]:
    """Otava's change points of one series (values > 0), each with the run-to-run step across it."""
    try:
        from otava.analysis import compute_change_points
    except ImportError:
        raise ConfigError(
            "edgebench history needs Apache Otava for change points: pip install 'edgebench[history]'"
        ) from None

    series = np.asarray(values, dtype=np.float64)
    found, _ = compute_change_points(
        series.tolist(),
        window_len=options.window_len,
        max_pvalue=options.max_pvalue,
        min_magnitude=options.min_magnitude,
    )
    return [
        ChangePoint(
            int(cp.index),
            float(cp.stats.mean_1),
            float(cp.stats.mean_2),
            float(cp.stats.pvalue),
            float(series[cp.index] / series[cp.index - 1] - 1),
            options.threshold,
        )
        for cp in found
        if 0 < cp.index < series.size
    ]


def creep(values: Sequence[float] | FloatArray, options: HistoryOptions = HistoryOptions()) -> Creep | None:
    """Trend over the last ``creep_window`` runs: Kendall's tau (significance) and Theil–Sen (size)."""
    from scipy.stats import kendalltau, theilslopes

    series = np.asarray(values, dtype=np.float64)
    window = series[-options.creep_window :]
    if window.size < 4:
        return None
    runs = np.arange(window.size, dtype=np.float64)
    slope, intercept, _, _ = theilslopes(window, runs)
    p_value = float(kendalltau(runs, window).pvalue)
    start = intercept if intercept > 0 else float(np.median(window))
    total = slope * (window.size - 1) / start
    steps = np.abs(window[1:] / window[:-1] - 1)
    flagged = bool(p_value < options.creep_alpha and abs(total) >= options.threshold and _line_beats_one_step(window))
    return Creep(
        int(series.size - window.size),
        int(window.size),
        float(slope / start),
        float(total),
        p_value,
        float(steps.max()),
        flagged,
    )


def _line_beats_one_step(window: FloatArray) -> bool:
    """A trend, not a step: a straight line (least squares) fits the window better than the best single step
    (two means, the split anywhere). Both models have two levels of freedom; a step inside the window (which
    the change points report) makes a significant trend too, and is not called creep."""
    runs = np.arange(window.size, dtype=float)
    line = np.polyval(np.polyfit(runs, window, 1), runs)
    line_sse = float(((window - line) ** 2).sum())
    step_sse = min(
        float(((window[:k] - window[:k].mean()) ** 2).sum() + ((window[k:] - window[k:].mean()) ** 2).sum())
        for k in range(1, window.size)
    )
    return line_sse < step_sse


def analyse(series: Series, options: HistoryOptions = HistoryOptions()) -> Analysis:
    compensated = series.compensated
    if options.metric == "compensated" or (options.metric == "auto" and compensated is not None):
        metric, values = "compensated", compensated
    else:
        metric, values = "raw", series.raw
    if values is None:
        return Analysis(
            series,
            metric,
            series.raw,
            (),
            None,
            options.threshold,
            note="no drift-compensated series in every run (extra_info['edgebench_drift']); use --metric raw or auto",
        )
    if values.size < options.min_points:
        return Analysis(
            series,
            metric,
            values,
            (),
            None,
            options.threshold,
            note=f"{values.size} run(s): too short for change points (needs {options.min_points})",
        )
    if np.any(values <= 0):
        return Analysis(
            series, metric, values, (), None, options.threshold, note="a run's median is 0: nothing to compare"
        )
    return Analysis(
        series, metric, values, tuple(change_points(values, options)), creep(values, options), options.threshold
    )
