"""``edgebench gate BASE NEW``: the CI latency regression gate. Exit 0 ok, 1 regression, 2 unusable input.

Inputs are two result sets with raw samples: pytest-benchmark JSON written with ``--benchmark-save-data``
(``benchmarks[i].stats.data``, seconds per call) or an edgebench run (``reports/<run-id>/`` or its
``report.json``: ``backends[label].latency.samples_ns``). Benchmarks are matched by pytest ``fullname``
(name and parameters) or backend label; names on one side only are reported as "removed" / "added".

Exit policy: a regression always fails (exit 1). "removed", "insufficient data" and "added" pass unless
named in ``fail_on`` (``--fail-on removed,insufficient``), so CI can refuse a benchmark that vanished or
could not be judged. Either way the summary under the table counts them, and names each failing benchmark
with its reason on one line: nothing passes by absence unseen.

Decision rule, per benchmark, on raw samples (never on means). r = median(NEW) / median(BASE);
t = the minimum effect (``threshold``, default 5 %, per benchmark through ``thresholds``):

- "insufficient data": fewer than ``min_samples`` raw samples on either side, or a zero baseline median;
- "regression": Mann–Whitney U (two-sided) p < alpha  AND  the whole (1 − alpha) percentile-bootstrap
  confidence interval of r lies above 1 + t;
- "improvement": p < alpha  AND  the interval lies below 1 / (1 + t) (the same effect on a log scale);
- "no change": the interval's upper end is at most 1 + t: a slowdown beyond the minimum effect is ruled out;
- "inconclusive": anything else: the interval reaches above 1 + t without being wholly above it (or the
  rank test does not see the shift), so the data can neither flag nor clear a slowdown of t.

Three outcomes (:attr:`Comparison.outcome`): **ok** (no change, improvement), **regression**, and
**inconclusive**; inconclusive passes unless ``--fail-on inconclusive``, and ``edgebench gate
--rerun-inconclusive N --rerun-command CMD`` re-measures (CMD rewrites NEW; the inconclusive benchmarks'
samples are pooled with the earlier ones) up to N times before deciding. Every comparison also carries the
**minimum detectable effect** (:func:`minimum_detectable_effect`): the smallest slowdown that this rule,
at this alpha, flags with probability ``power`` (default 80 %) given the spread measured in *these*
samples. With se the standard error of log r (the standard deviation of the bootstrap's log ratios), the
interval's lower end is about log r − z(1 − alpha/2)·se, so a true slowdown d is flagged with probability
Φ((log(1 + d) − log(1 + t)) / se − z(1 − alpha/2)); setting that to the power gives
d_min = (1 + t)·exp((z(1 − alpha/2) + z(power))·se) − 1. A simulation of the rule checks it
(``suites/test_gate.py``).

Drift compensation (:mod:`harness.gate.drift`): when both files carry a benchmark's reference series
(``extra_info["edgebench_drift"]``), the rule above runs on the per-turn ratios model ÷ reference instead
of the raw samples (mode "compensated": a shift of the machine's speed between the two jobs moves both and
cancels); ``compensate=False`` (``--no-compensation``) or a side without the series falls back to the raw
samples, and the table says which mode each benchmark was judged in.

Why: the rank test needs no normality and is not moved by the heavy right tail of latency, but it also
reacts to changes that are not slowdowns (a fatter tail, a different shape), so it alone cannot say "slower
by t". The interval on the median ratio says how much slower, and requiring its *bound* (not the point
estimate, as asv does) to clear 1 + t means a true change of t or less is flagged with probability at most
alpha / 2: a point-estimate rule flags about half of the changes that sit exactly at t, more with few
samples. The price is samples: the interval must be narrower than (true change − t) to flag it; the table
prints the interval, so a wide one is visible as such rather than hidden in "no change".

Samples within one run are treated as independent draws. They are not independent of that run's machine
state: shared CI runners drift 26–50 % between jobs, far outside any within-run interval, so on shared
runners measure both sides in one job (``edgebench ab``, :func:`compare_interleaved`) and keep the
stored-baseline mode for dedicated nodes. ``alpha`` is per benchmark (no multiple-comparison correction).

The statistics (:func:`compare_samples`, :func:`compare_results`, :func:`decide`, ...) are pure functions;
reading files is :func:`load_results` / :func:`gate_files`; :func:`render` builds the terminal table and
:func:`render_summary` the lines under it (:meth:`GateResult.summary`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text

from harness.errors import ConfigError
from harness.gate import drift
from harness.report import RUN_SCHEMA

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_UNUSABLE = 2

SAVE_DATA_HINT = "rerun pytest with --benchmark-save-data (and --benchmark-json=FILE)"
_BOOTSTRAP_CHUNK = 2_000_000  # resampled values held in memory at once


class Verdict(StrEnum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no change"
    INCONCLUSIVE = "inconclusive"
    INSUFFICIENT = "insufficient data"
    ADDED = "added"
    REMOVED = "removed"


# Verdicts that ``fail_on`` may turn into a failure, by the name --fail-on takes (regression always fails).
FAIL_ON_CHOICES: Mapping[str, Verdict] = {"removed": Verdict.REMOVED, "insufficient": Verdict.INSUFFICIENT,
                                          "added": Verdict.ADDED, "inconclusive": Verdict.INCONCLUSIVE}
# The three outcomes of a comparison: ok, regression, inconclusive (added/removed have none: "-").
OUTCOMES: Mapping[Verdict, str] = {Verdict.NO_CHANGE: "ok", Verdict.IMPROVEMENT: "ok",
                                   Verdict.REGRESSION: "regression", Verdict.INCONCLUSIVE: "inconclusive",
                                   Verdict.INSUFFICIENT: "inconclusive"}


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
            raise ConfigError(f"--fail-on {str(item)!r}: not a verdict that can be made to fail{always}; choose "
                              f"from {', '.join(FAIL_ON_CHOICES)}, comma-separated")
        verdicts.add(verdict)
    return frozenset(verdicts)


def format_fail_on(verdicts: Iterable[Verdict]) -> str:
    """The --fail-on spelling of ``verdicts``, in FAIL_ON_CHOICES order ("" for none)."""
    return ",".join(name for name, verdict in FAIL_ON_CHOICES.items() if verdict in verdicts)


@dataclass(frozen=True)
class GateOptions:
    """How sure and how large: see the module docstring for the rule these feed."""

    threshold: float = 0.05  # minimum effect: a regression is NEW at least (1 + threshold) × BASE
    thresholds: Mapping[str, float] = field(default_factory=dict)  # per benchmark: exact name or glob (* ?)
    alpha: float = 0.05  # significance of the rank test; the confidence interval is (1 − alpha)
    min_samples: int = 10  # raw samples needed on each side
    resamples: int = 2000  # bootstrap resamples
    seed: int = 0  # bootstrap seed: the same inputs always give the same verdicts
    allow_different_machines: bool = False
    # verdicts that fail the gate besides regression (a comma string or names are accepted and normalised)
    fail_on: frozenset[Verdict] = frozenset()
    power: float = 0.8  # for the minimum detectable effect printed with every comparison
    compensate: bool = True  # judge on model/reference per turn where both sides carry the drift series

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail_on", parse_fail_on(self.fail_on))
        for name, value in {"threshold": self.threshold, **self.thresholds}.items():
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
        return {"name": self.name, "verdict": str(self.verdict), "outcome": self.outcome, "mode": self.mode,
                "threshold": self.threshold, "n_base": self.n_base, "n_new": self.n_new,
                "base_median_s": self.base_median, "new_median_s": self.new_median, "ratio": self.ratio,
                "ratio_ci": list(self.ci) if self.ci else None, "p_value": self.p_value,
                "min_detectable_slowdown": self.mde, "note": self.note}


@dataclass(frozen=True)
class ResultSet:
    """One input: raw latency samples in seconds per benchmark name, and the processor that ran them."""

    source: str
    cpu_brand: str | None
    samples: Mapping[str, np.ndarray]
    # per-turn model/reference ratios (harness.gate.drift) for the benchmarks whose file carries the series
    compensated: Mapping[str, np.ndarray] = field(default_factory=dict)


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
        if c.verdict in (Verdict.REGRESSION, Verdict.INCONCLUSIVE) and c.ratio is not None and c.ci is not None \
                and c.p_value is not None:
            where = "above" if c.verdict is Verdict.REGRESSION else "reaching above"
            why = (f"{c.mode} median ratio {c.ratio:.3f}, {self.options.confidence:.0%} CI [{c.ci[0]:.3f}, "
                   f"{c.ci[1]:.3f}] {where} 1 + {c.threshold:.0%}, {self.test} p = {c.p_value:.2g}; smallest "
                   f"detectable slowdown here {_percent(c.mde)}")
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
        lines += [f"INCONCLUSIVE {self.reason(c)}" for c in self.comparisons
                  if c.verdict is Verdict.INCONCLUSIVE and not self.fails(c)]
        passing = {v: counts[v] for v in FAIL_ON_CHOICES.values() if counts[v] and v not in self.options.fail_on}
        if passing:
            lines.append("passing without a comparison: " + ", ".join(f"{n} {v}" for v, n in passing.items())
                         + f" (to fail on them: edgebench gate --fail-on {format_fail_on(passing)})")
        failures = self.failures
        lines.append(f"gate: FAIL, exit {self.exit_code}: {len(failures)} of {total} benchmarks fail"
                     if failures else f"gate: pass, exit {self.exit_code}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "base_cpu": self.base_cpu, "new_cpu": self.new_cpu,
                "test": self.test, "alpha": self.options.alpha, "power": self.options.power, "reruns": self.reruns, "fail_on": sorted(map(str, self.options.fail_on)),
                "failures": [self.reason(c) for c in self.failures],
                "comparisons": [c.to_json() for c in self.comparisons]}


@dataclass(frozen=True)
class GateOutcome:
    """What the CLI needs: the exit code, the result when there is one, the one-line error when not."""

    exit_code: int
    result: GateResult | None = None
    error: str = ""


# ------------------------------------------------------------------------------------------------
# Statistics: pure functions


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value (exact for small tie-free samples, normal approximation else)."""
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(new, base, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p  # all values tied: no evidence of a difference


def bootstrap_medians(samples: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``resamples`` resamples with replacement, in chunks to bound memory. Over sorted values a
    resample's median is the value at its middle sorted index, and sorting integer indices is several
    times faster than ``np.median`` on the values."""
    values = np.sort(samples)
    n = values.size
    low, high = (n - 1) // 2, n // 2
    chunk = max(1, _BOOTSTRAP_CHUNK // n)
    medians = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        picks = np.sort(rng.integers(0, n, size=(stop - start, n), dtype=np.int32), axis=1)
        medians[start:stop] = (values[picks[:, low]] + values[picks[:, high]]) / 2
    return medians


def bootstrap_ratios(base: np.ndarray, new: np.ndarray, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """median(NEW) / median(BASE) over ``resamples`` bootstrap resamples, each side resampled on its own."""
    rng = np.random.default_rng(seed)
    base_medians = bootstrap_medians(base, resamples, rng)
    new_medians = bootstrap_medians(new, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return new_medians / base_medians


def percentile_ci(ratios: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.nanpercentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def median_ratio_ci(base: np.ndarray, new: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(NEW) / median(BASE), each side resampled on its own."""
    return percentile_ci(bootstrap_ratios(base, new, resamples, seed), confidence)


def log_se(ratios: np.ndarray) -> float:
    """Standard error of the log ratio: the standard deviation of the bootstrap's log ratios."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(ratios[np.isfinite(ratios) & (ratios > 0)])
    return float(np.std(logs, ddof=1)) if logs.size > 1 else math.inf


def minimum_detectable_effect(se: float, threshold: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true slowdown (0.07 = 7 %) that :func:`decide` flags with probability ``power``, given the
    standard error ``se`` of the log ratio: (1 + t)·exp((z(1 − alpha/2) + z(power))·se) − 1."""
    from scipy.stats import norm

    if not math.isfinite(se):
        return math.inf
    return (1.0 + threshold) * math.exp((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se) - 1.0


def decide(p_value: float, ci: tuple[float, float], threshold: float, alpha: float) -> Verdict:
    """The gate's rule: regression when significant by rank AND the whole ratio interval is beyond the minimum
    effect; no change when the interval rules out a slowdown beyond it; inconclusive in between."""
    if p_value < alpha and ci[0] > 1.0 + threshold:
        return Verdict.REGRESSION
    if p_value < alpha and ci[1] < 1.0 / (1.0 + threshold):
        return Verdict.IMPROVEMENT
    if ci[1] <= 1.0 + threshold:
        return Verdict.NO_CHANGE
    return Verdict.INCONCLUSIVE


def compare_samples(name: str, base: np.ndarray, new: np.ndarray, options: GateOptions = GateOptions()) -> Comparison:
    """One benchmark, BASE against NEW raw samples (any time unit, the same on both sides)."""
    base, new = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    threshold = options.threshold_for(name)
    sizes = {"n_base": int(base.size), "n_new": int(new.size)}
    if min(base.size, new.size) < options.min_samples:
        return Comparison(name, Verdict.INSUFFICIENT, threshold, **sizes,
                          base_median=_median(base), new_median=_median(new),
                          note=f"{base.size} samples in BASE, {new.size} in NEW; {options.min_samples} needed "
                               "on each side")
    base_median, new_median = float(np.median(base)), float(np.median(new))
    if base_median <= 0:
        return Comparison(name, Verdict.INSUFFICIENT, threshold, **sizes, base_median=base_median,
                          new_median=new_median, note="BASE median is 0: no ratio")
    p_value = mann_whitney_p(base, new)
    ratios = bootstrap_ratios(base, new, options.resamples, options.seed)
    ci = percentile_ci(ratios, options.confidence)
    mde = minimum_detectable_effect(log_se(ratios), threshold, options.alpha, options.power)
    return Comparison(name, decide(p_value, ci, threshold, options.alpha), threshold, **sizes,
                      base_median=base_median, new_median=new_median, ratio=new_median / base_median, ci=ci,
                      p_value=p_value, mde=mde)


def compare_interleaved(name: str, base_blocks: Sequence[Sequence[float]], new_blocks: Sequence[Sequence[float]],
                        options: GateOptions = GateOptions()) -> Comparison:
    """Same-job A/B: turn i measured ``base_blocks[i]`` and ``new_blocks[i]`` back to back, so the turn is the
    unit. Per turn, r_i = log(median NEW block / median BASE block): a shift of the machine's speed between
    turns scales both blocks of a turn alike and cancels in r_i. Estimate: exp of the 20 % trimmed mean of
    r_i; interval: percentile bootstrap over turns; test: Wilcoxon signed-rank on r_i (two-sided). Then the
    same rule as :func:`decide`. (Dividing each sample by its turn's pooled median instead, then pooling,
    biases the ratio towards 1: a simulated 2 % came out as 1.2 %.) The printed medians are the raw ones."""
    from scipy.stats import trim_mean, wilcoxon

    if len(base_blocks) != len(new_blocks) or not base_blocks:
        raise ConfigError(f"{name}: interleaved samples need the same number (> 0) of turns on both sides, got "
                          f"{len(base_blocks)} and {len(new_blocks)}")
    threshold = options.threshold_for(name)
    raw_base, raw_new = np.concatenate(base_blocks), np.concatenate(new_blocks)
    sizes = {"n_base": int(raw_base.size), "n_new": int(raw_new.size), "base_median": _median(raw_base),
             "new_median": _median(raw_new)}
    block_medians = np.array([[np.median(b), np.median(n)] for b, n in zip(base_blocks, new_blocks, strict=True)])
    if len(block_medians) < options.min_samples:
        return Comparison(name, Verdict.INSUFFICIENT, threshold, **sizes,
                          note=f"{len(block_medians)} turns; {options.min_samples} needed")
    if np.any(block_medians <= 0):
        return Comparison(name, Verdict.INSUFFICIENT, threshold, **sizes, note="a turn's median is 0: no ratio")
    log_ratios = np.log(block_medians[:, 1] / block_medians[:, 0])
    picks = np.random.default_rng(options.seed).integers(0, log_ratios.size, size=(options.resamples, log_ratios.size))
    tail = options.alpha / 2 * 100
    boot = trim_mean(log_ratios[picks], 0.2, axis=1)
    low, high = np.exp(np.percentile(boot, [tail, 100 - tail]))
    p_value = 1.0 if np.all(log_ratios == 0) else float(wilcoxon(log_ratios).pvalue)
    ci = (float(low), float(high))
    mde = minimum_detectable_effect(float(np.std(boot, ddof=1)), threshold, options.alpha, options.power)
    return Comparison(name, decide(p_value, ci, threshold, options.alpha), threshold, **sizes,
                      ratio=float(np.exp(trim_mean(log_ratios, 0.2))), ci=ci, p_value=p_value, mde=mde,
                      mode="interleaved")


def compare_results(base: ResultSet, new: ResultSet, options: GateOptions = GateOptions()) -> GateResult:
    """Every benchmark of both sets, in BASE order then the added ones; refuses mixed processors."""
    check_same_processor(base, new, options.allow_different_machines)
    comparisons = []
    for name, samples in base.samples.items():
        if name in new.samples:
            comparisons.append(compare_benchmark(name, base, new, options))
        else:
            comparisons.append(Comparison(name, Verdict.REMOVED, options.threshold_for(name), n_base=samples.size,
                                          base_median=_median(samples), note="in BASE, not in NEW"))
    for name, samples in new.samples.items():
        if name not in base.samples:
            comparisons.append(Comparison(name, Verdict.ADDED, options.threshold_for(name), n_new=samples.size,
                                          new_median=_median(samples), note="in NEW, not in BASE"))
    return GateResult(tuple(comparisons), options, base.cpu_brand, new.cpu_brand)


def compare_benchmark(name: str, base: ResultSet, new: ResultSet, options: GateOptions = GateOptions()) -> Comparison:
    """One benchmark present in both sets: on the compensated series when both carry it (and
    ``options.compensate``), else on the raw samples, saying why in the note. The printed medians are raw."""
    raw = compare_samples(name, base.samples[name], new.samples[name], options)
    if not options.compensate:
        return raw
    missing = [side.source for side in (base, new) if name not in side.compensated]
    if missing:
        if len(missing) == 2:
            return raw
        return dataclasses.replace(raw, note=_join(raw.note, f"uncompensated: {missing[0]} has no reference series"))
    found = compare_samples(name, base.compensated[name], new.compensated[name], options)
    if found.verdict is Verdict.INSUFFICIENT:
        found = dataclasses.replace(found, note=f"{found.n_base} turns in BASE, {found.n_new} in NEW; "
                                                f"{options.min_samples} needed on each side")
    return dataclasses.replace(found, mode="compensated", base_median=raw.base_median, new_median=raw.new_median)


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def check_same_processor(base: ResultSet, new: ResultSet, allow_different_machines: bool = False) -> None:
    if allow_different_machines:
        return
    for side in (base, new):
        if not side.cpu_brand:
            raise ConfigError(f"{side.source}: no CPU brand in the results, so it cannot be checked that both sides "
                              "ran on the same processor; allow it explicitly (--allow-different-machines)")
    if _normalise(base.cpu_brand) != _normalise(new.cpu_brand):
        raise ConfigError(f"BASE ran on {base.cpu_brand!r} but NEW on {new.cpu_brand!r}: latencies from different "
                          "processors are not comparable; gate against a baseline from the same processor or "
                          "allow it explicitly (--allow-different-machines)")


def _median(samples: np.ndarray) -> float | None:
    return float(np.median(samples)) if samples.size else None


def _normalise(brand: str | None) -> str:
    return " ".join((brand or "").split()).casefold()


# ------------------------------------------------------------------------------------------------
# Inputs


def gate_files(base: Path, new: Path, options: GateOptions = GateOptions()) -> GateResult:
    """Load both inputs and compare them; unusable input raises ConfigError (exit code 2)."""
    return compare_results(load_results(base, options.compensate), load_results(new, options.compensate), options)


def run_gate(base: Path, new: Path, options: GateOptions = GateOptions(), reruns: int = 0,
             rerun: Callable[[int], None] | None = None,
             log: Callable[[str], None] = lambda line: None) -> GateOutcome:
    """:func:`gate_files` (or :func:`gate_with_reruns` when ``reruns`` and ``rerun`` are given) with unusable
    input turned into exit code 2 and its one-line message."""
    try:
        if reruns and rerun is not None:
            result = gate_with_reruns(base, new, options, reruns, rerun, log)
        else:
            result = gate_files(base, new, options)
    except ConfigError as exc:
        return GateOutcome(EXIT_UNUSABLE, error=str(exc))
    return GateOutcome(result.exit_code, result)


def load_results(path: Path, compensate: bool = True) -> ResultSet:
    """A pytest-benchmark JSON, an edgebench ``report.json``, or a run folder holding either (``compensate``
    False: drift records are not read)."""
    file = _result_file(Path(path))
    document = _read_json(file)
    if isinstance(document, dict) and document.get("schema") == RUN_SCHEMA:
        results = _from_run_report(file, document)
    elif isinstance(document, dict) and isinstance(document.get("benchmarks"), list):
        results = _from_pytest_benchmark(file, document, compensate)
    else:
        raise ConfigError(f"{file}: neither a pytest-benchmark JSON (no 'benchmarks' list) nor an edgebench report "
                          f"(schema {RUN_SCHEMA!r}); pass --benchmark-json output or reports/<run-id>")
    if not results.samples:
        raise ConfigError(f"{file}: no benchmarks in it (pytest-benchmark disables itself under xdist: run the "
                          "benchmarks with -p no:xdist)")
    return results


def _result_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    for name in ("report.json", "benchmark.json"):
        if (path / name).is_file():
            return path / name
    raise ConfigError(f"{path}: no report.json or benchmark.json in this folder; pass a run folder or a JSON file")


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: not a readable JSON result ({exc}); pass a pytest-benchmark JSON or a run "
                          "folder") from None


def _from_pytest_benchmark(file: Path, document: dict[str, Any], compensate: bool = True) -> ResultSet:
    samples: dict[str, np.ndarray] = {}
    compensated: dict[str, np.ndarray] = {}
    for index, bench in enumerate(document["benchmarks"]):
        name = bench.get("fullname") or bench.get("name") if isinstance(bench, dict) else None
        if not name:
            raise ConfigError(f"{file}: benchmark #{index} has no name; pass an unmodified --benchmark-json file")
        data = (bench.get("stats") or {}).get("data")
        if data is None:
            raise ConfigError(f"{file}: benchmark {name!r} has no raw samples (stats.data); {SAVE_DATA_HINT}")
        if name in samples:
            raise ConfigError(f"{file}: benchmark {name!r} appears twice; gate one run per file")
        samples[name] = _as_samples(file, name, data, scale=1.0)
        record = _get(bench, "extra_info", drift.FIELD) if compensate else None
        if record is not None:
            try:
                compensated[name] = drift.compensated_series(record)
            except ValueError as exc:
                raise ConfigError(f"{file}: benchmark {name!r}: extra_info.{drift.FIELD} is unusable ({exc}); pass "
                                  "an unmodified result file, or gate without it (--no-compensation)") from None
    machine = document.get("machine_info") or {}
    brand = (_get(machine, "edgebench", "cpu_brand") or _get(machine, "cpu", "brand_raw"))
    return ResultSet(str(file), brand, samples, compensated)


def pool_results(earlier: ResultSet, later: ResultSet, names: Iterable[str]) -> ResultSet:
    """``later`` with the samples (raw and compensated) of ``names`` preceded by ``earlier``'s: re-measurements
    of an inconclusive benchmark are merged by concatenating samples, never by averaging results."""
    samples, compensated = dict(later.samples), dict(later.compensated)
    for name in names:
        if name in earlier.samples and name in later.samples:
            samples[name] = np.concatenate([earlier.samples[name], later.samples[name]])
        if name in earlier.compensated and name in later.compensated:
            compensated[name] = np.concatenate([earlier.compensated[name], later.compensated[name]])
    return ResultSet(later.source, later.cpu_brand, samples, compensated)


def gate_with_reruns(base: Path, new: Path, options: GateOptions, reruns: int, rerun: Callable[[int], None],
                     log: Callable[[str], None] = lambda line: None) -> GateResult:
    """:func:`gate_files`, then while some benchmark is inconclusive (or has insufficient data) and fewer
    than ``reruns`` re-measurements ran: ``rerun(i)`` (it rewrites NEW), pool the inconclusive benchmarks' samples with the earlier ones and
    judge again. Only inconclusive comparisons are re-judged; settled ones keep their verdict. Each look
    uses the same alpha (an inconclusive result is re-measured at most ``reruns`` times, so the false-alarm
    rate is at most (reruns + 1) × the single-look rate for effects at the minimum, far less at 1.0)."""
    base_set, new_set = load_results(base, options.compensate), load_results(new, options.compensate)
    result = compare_results(base_set, new_set, options)
    for attempt in range(1, reruns + 1):
        pending = [c.name for c in result.comparisons if c.outcome == "inconclusive"]  # incl. insufficient data
        if not pending:
            break
        log(f"re-measuring ({attempt}/{reruns}): {len(pending)} inconclusive: {', '.join(pending)}")
        rerun(attempt)
        new_set = pool_results(new_set, load_results(new, options.compensate), pending)
        check_same_processor(base_set, new_set, options.allow_different_machines)
        redone = {name: compare_benchmark(name, base_set, new_set, options) for name in pending
                  if name in new_set.samples}
        result = dataclasses.replace(result, comparisons=tuple(redone.get(c.name, c) for c in result.comparisons),
                                     reruns=attempt)
    return result


def _from_run_report(file: Path, document: dict[str, Any]) -> ResultSet:
    samples: dict[str, np.ndarray] = {}
    for label, backend in (document.get("backends") or {}).items():
        data = _get(backend, "latency", "samples_ns")
        if data is None:
            raise ConfigError(f"{file}: backend {label!r} has no raw samples (latency.samples_ns); rerun edgebench "
                              f"to record them (for pytest-benchmark files: {SAVE_DATA_HINT})")
        samples[label] = _as_samples(file, label, data, scale=1e-9)
    return ResultSet(str(file), _get(document, "machine", "cpu_brand"), samples)


def _as_samples(file: Path, name: str, data: Any, scale: float) -> np.ndarray:
    try:
        values = np.asarray(data, dtype=np.float64) * scale
    except (TypeError, ValueError):
        values = np.asarray([np.nan])
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError(f"{file}: raw samples of {name!r} are not a list of non-negative numbers; pass an "
                          "unmodified result file")
    return values


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


# ------------------------------------------------------------------------------------------------
# Terminal table

_STYLES = {Verdict.REGRESSION: "bold red", Verdict.IMPROVEMENT: "green", Verdict.INSUFFICIENT: "yellow",
           Verdict.INCONCLUSIVE: "yellow",
           Verdict.ADDED: "cyan", Verdict.REMOVED: "cyan"}


def render_summary(result: GateResult) -> Text:
    """:meth:`GateResult.summary` for the terminal, failing lines in red; print it with ``soft_wrap=True`` to keep
    each line whole in CI logs."""
    text = Text()
    for line in result.summary():
        text.append(line + "\n", style="bold red" if line.startswith(("FAIL", "gate: FAIL")) else "")
    text.rstrip()
    return text


def render(result: GateResult) -> Table:
    options = result.options
    table = Table(title="edgebench gate: NEW vs BASE",
                  caption=f"BASE {result.base_cpu or '?'} | NEW {result.new_cpu or '?'} | regression: {result.test} "
                          f"p < {options.alpha:g} and the {options.confidence:.0%} CI of the median ratio above "
                          "1 + min effect; ok: CI at most 1 + min effect; inconclusive: in between")
    table.add_column("benchmark", overflow="fold", ratio=1)
    for column in ("base median", "new median", "judged on", f"ratio [{options.confidence:.0%} CI]", "p",
                   "min effect", f"detectable ({options.power:.0%} power)", "verdict"):
        table.add_column(column, justify="right")
    for c in result.comparisons:  # Text, not markup: pytest ids hold brackets ("test_x[openvino]")
        table.add_row(Text(c.name.rsplit("::", 1)[-1]), _duration(c.base_median, c.n_base), _duration(c.new_median, c.n_new),
                      c.mode if c.ratio is not None else "–", _ratio(c),
                      "–" if c.p_value is None else f"{c.p_value:.2g}", f"{c.threshold:.0%}", _percent(c.mde),
                      Text(_verdict_text(c), style=_STYLES.get(c.verdict, "")))
    return table


def _verdict_text(c: Comparison) -> str:
    """The outcome, with the finer verdict where it adds something: "ok (no change)", "regression"."""
    detail = str(c.verdict)
    return detail if c.outcome in (detail, "-") else f"{c.outcome} ({detail})"


def _percent(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞ (no spread estimate)" if not math.isfinite(value) else f"+{value:.1%}"


def _duration(seconds: float | None, n: int) -> str:
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit} (n={n})"
    return f"{seconds / 1e-9:.3g} ns (n={n})"


def _ratio(c: Comparison) -> str:
    if c.ratio is None or c.ci is None:
        return "–"
    return f"{c.ratio:.3f} [{c.ci[0]:.3f}, {c.ci[1]:.3f}]"
