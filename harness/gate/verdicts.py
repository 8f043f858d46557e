"""The gate's verdicts and what CI makes of them: the options a comparison is judged under
(:class:`GateOptions`), one benchmark's :class:`Comparison`, and the whole :class:`GateResult` with its exit
code and the lines under the table. Exit 0 ok, 1 regression, 2 unusable input.

Exit policy: a regression always fails (exit 1). "removed", "insufficient data" and "added" pass unless
named in ``fail_on`` (``--fail-on removed,insufficient``), so CI can refuse a benchmark that vanished or
could not be judged. Either way the summary under the table counts them, and names each failing benchmark
with its reason on one line: nothing passes by absence unseen.

Three outcomes (:attr:`Comparison.outcome`): **ok** (no change, improvement), **regression**, and
**inconclusive** (insufficient data included); inconclusive passes unless ``--fail-on inconclusive``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.errors import ConfigError

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_UNUSABLE = 2


class Verdict(StrEnum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no change"
    INCONCLUSIVE = "inconclusive"
    INSUFFICIENT = "insufficient data"
    ADDED = "added"
    REMOVED = "removed"


# Verdicts that ``fail_on`` may turn into a failure, by the name --fail-on takes (regression always fails).
FAIL_ON_CHOICES: Mapping[str, Verdict] = {
    "removed": Verdict.REMOVED,
    "insufficient": Verdict.INSUFFICIENT,
    "added": Verdict.ADDED,
    "inconclusive": Verdict.INCONCLUSIVE,
}
# The three outcomes of a comparison: ok, regression, inconclusive (added/removed have none: "-").
OUTCOMES: Mapping[Verdict, str] = {
    Verdict.NO_CHANGE: "ok",
    Verdict.IMPROVEMENT: "ok",
    Verdict.REGRESSION: "regression",
    Verdict.INCONCLUSIVE: "inconclusive",
    Verdict.INSUFFICIENT: "inconclusive",
}


def parse_fail_on(value: str | Iterable[str | Verdict]) -> frozenset[Verdict]:
    """``"removed,insufficient"`` (or an iterable of names or verdicts) -> the verdicts; unknown: ConfigError."""
    items = value.split(",") if isinstance(value, str) else value
    verdicts = set()
    for item in items:
        key = " ".join(str(item).replace("-", " ").replace("_", " ").split()).casefold()
        if not key:
            continue
        verdict = FAIL_ON_CHOICES.get(key) or next((v for v in FAIL_ON_CHOICES.values() if v == key), None)
        if verdict is None:
            always = " (a regression always fails)" if key == Verdict.REGRESSION else ""
            raise ConfigError(
                f"--fail-on {str(item)!r}: not a verdict that can be made to fail{always}; choose "
                f"from {', '.join(FAIL_ON_CHOICES)}, comma-separated"
            )
        verdicts.add(verdict)
    return frozenset(verdicts)


def format_fail_on(verdicts: Iterable[Verdict]) -> str:
    """The --fail-on spelling of ``verdicts``, in FAIL_ON_CHOICES order ("" for none)."""
    return ",".join(name for name, verdict in FAIL_ON_CHOICES.items() if verdict in verdicts)


@dataclass(frozen=True)
class GateOptions:
    """How sure and how large: see :mod:`harness.gate.compare` for the rule these feed."""

    # minimum effect: a regression is NEW at least (1 + threshold) × BASE
    threshold: float = field(default=0.05, metadata={"help": "minimum slowdown that counts"})
    thresholds: Mapping[str, float] = field(default_factory=dict)  # per benchmark: exact name or glob (* ?)
    # significance of the rank test; the confidence interval is (1 − alpha)
    alpha: float = field(default=0.05, metadata={"help": "significance level"})
    min_samples: int = 10  # raw samples needed on each side
    resamples: int = 2000  # bootstrap resamples
    seed: int = 0  # bootstrap seed: the same inputs always give the same verdicts
    allow_different_machines: bool = field(
        default=False, metadata={"help": "compare results from different processors anyway"}
    )
    # verdicts that fail the gate besides regression (a comma string or names are accepted and normalised)
    fail_on: frozenset[Verdict] = frozenset()
    power: float = field(
        default=0.8, metadata={"help": "power for the smallest detectable slowdown printed per benchmark"}
    )
    # judge on model/reference per turn where both sides carry the drift series
    compensate: bool = field(
        default=True,
        metadata={"help": "judge raw per-call samples even where both files carry the drift reference series"},
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail_on", parse_fail_on(self.fail_on))
        given: dict[str, object] = {"threshold": self.threshold, **self.thresholds}  # from options or JSON: unchecked
        for name, value in given.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value < 10):
                raise ConfigError(f"threshold for {name!r} = {value!r}: give a fraction >= 0 (0.05 means 5 %)")
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"alpha = {self.alpha!r}: choose a significance level between 0 and 0.5 (e.g. 0.05)")
        if self.min_samples < 3:
            raise ConfigError(f"min_samples = {self.min_samples}: need at least 3 samples per side")
        if not 0.5 <= self.power < 1:
            raise ConfigError(f"power = {self.power!r}: choose a probability in [0.5, 1) (e.g. 0.8)")
        if self.resamples < 100:
            raise ConfigError(f"resamples = {self.resamples}: use at least 100 bootstrap resamples (default 2000)")

    @property
    def confidence(self) -> float:
        return 1.0 - self.alpha

    def threshold_for(self, name: str) -> float:
        """The minimum effect for one benchmark: an exact key first, then the first matching glob (``*`` and
        ``?`` only: brackets are literal, as in pytest ids like ``test_x[openvino]``)."""
        if name in self.thresholds:
            return self.thresholds[name]
        for pattern, value in self.thresholds.items():
            if fnmatch.fnmatchcase(name, pattern.replace("[", "[[]")):
                return value
        return self.threshold


@dataclass(frozen=True)
class Comparison:
    """One benchmark's verdict and the figures behind it (medians in seconds)."""

    name: str
    verdict: Verdict
    threshold: float
    n_base: int = 0
    n_new: int = 0
    base_median: float | None = None
    new_median: float | None = None
    ratio: float | None = None  # median(NEW) / median(BASE)
    ci: tuple[float, float] | None = None  # (1 − alpha) bootstrap interval of the ratio
    p_value: float | None = None  # Mann–Whitney U, two-sided
    note: str = ""  # why there is no comparison: removed, added, insufficient data
    mde: float | None = None  # minimum detectable slowdown at alpha and power (0.07 = 7 %)
    mode: str = "raw"  # "raw" per-call samples, "compensated" per-turn model/reference, "interleaved" A/B turns

    @property
    def outcome(self) -> str:
        """ok, regression or inconclusive ("-" for a benchmark on one side only)."""
        return OUTCOMES.get(self.verdict, "-")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": str(self.verdict),
            "outcome": self.outcome,
            "mode": self.mode,
            "threshold": self.threshold,
            "n_base": self.n_base,
            "n_new": self.n_new,
            "base_median_s": self.base_median,
            "new_median_s": self.new_median,
            "ratio": self.ratio,
            "ratio_ci": list(self.ci) if self.ci else None,
            "p_value": self.p_value,
            "min_detectable_slowdown": self.mde,
            "note": self.note,
        }


@dataclass(frozen=True)
class GateResult:
    comparisons: tuple[Comparison, ...]
    options: GateOptions
    base_cpu: str | None = None
    new_cpu: str | None = None
    test: str = "Mann–Whitney"  # the rank test behind p (compare_interleaved: Wilcoxon on per-turn ratios)
    reruns: int = 0  # re-measurements made because a comparison was inconclusive

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.failures else EXIT_OK

    @property
    def regressions(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if c.verdict is Verdict.REGRESSION)

    @property
    def failures(self) -> tuple[Comparison, ...]:
        """The benchmarks that fail the gate: every regression, and the verdicts in ``options.fail_on``."""
        return tuple(c for c in self.comparisons if self.fails(c))

    def fails(self, comparison: Comparison) -> bool:
        return comparison.verdict is Verdict.REGRESSION or comparison.verdict in self.options.fail_on

    def verdicts(self) -> dict[str, Verdict]:
        return {c.name: c.verdict for c in self.comparisons}

    def counts(self) -> dict[Verdict, int]:
        """Benchmarks per verdict, every verdict listed (0 included)."""
        return {verdict: sum(c.verdict is verdict for c in self.comparisons) for verdict in Verdict}

    def reason(self, comparison: Comparison) -> str:
        """One line: the benchmark's full name, its verdict and why."""
        c = comparison
        if (
            c.verdict in (Verdict.REGRESSION, Verdict.INCONCLUSIVE)
            and c.ratio is not None
            and c.ci is not None
            and c.p_value is not None
        ):
            where = "above" if c.verdict is Verdict.REGRESSION else "reaching above"
            why = (
                f"{c.mode} median ratio {c.ratio:.3f}, {self.options.confidence:.0%} CI [{c.ci[0]:.3f}, "
                f"{c.ci[1]:.3f}] {where} 1 + {c.threshold:.0%}, {self.test} p = {c.p_value:.2g}; smallest "
                f"detectable slowdown here {percent(c.mde)}"
            )
        else:
            why = c.note or "no comparison"
        if c.verdict in self.options.fail_on:
            why += f"; --fail-on {format_fail_on({c.verdict})}"
        return f"{c.name}: {c.verdict} ({why})"

    def summary(self) -> list[str]:
        """Lines under the table: counts per verdict (removed and insufficient data always, even at 0), one
        line per failing benchmark naming it and why, the non-compared ones that pass, and the outcome."""
        counts = self.counts()
        shown = [v for v in Verdict if counts[v] or v in (Verdict.REMOVED, Verdict.INSUFFICIENT)]
        total = len(self.comparisons)
        lines = [f"{total} benchmark{'s' * (total != 1)}: " + ", ".join(f"{counts[v]} {v}" for v in shown)]
        lines += [f"FAIL {self.reason(c)}" for c in self.failures]
        lines += [
            f"INCONCLUSIVE {self.reason(c)}"
            for c in self.comparisons
            if c.verdict is Verdict.INCONCLUSIVE and not self.fails(c)
        ]
        passing = {v: counts[v] for v in FAIL_ON_CHOICES.values() if counts[v] and v not in self.options.fail_on}
        if passing:
            lines.append(
                "passing without a comparison: "
                + ", ".join(f"{n} {v}" for v, n in passing.items())
                + f" (to fail on them: edgebench gate --fail-on {format_fail_on(passing)})"
            )
        failures = self.failures
        lines.append(
            f"gate: FAIL, exit {self.exit_code}: {len(failures)} of {total} benchmarks fail"
            if failures
            else f"gate: pass, exit {self.exit_code}"
        )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "base_cpu": self.base_cpu,
            "new_cpu": self.new_cpu,
            "test": self.test,
            "alpha": self.options.alpha,
            "power": self.options.power,
            "reruns": self.reruns,
            "fail_on": sorted(map(str, self.options.fail_on)),
            "failures": [self.reason(c) for c in self.failures],
            "comparisons": [c.to_json() for c in self.comparisons],
        }


@dataclass(frozen=True)
class GateOutcome:
    """What the CLI needs: the exit code, the result when there is one, the one-line error when not."""

    exit_code: int
    result: GateResult | None = None
    error: str = ""


def percent(value: float | None) -> str:
    """A minimum detectable slowdown as printed: "+7.6%", "∞ (no spread estimate)", or "–" for none."""
    if value is None:
        return "–"
    return "∞ (no spread estimate)" if not math.isfinite(value) else f"+{value:.1%}"
