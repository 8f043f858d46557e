"""The gate's statistics, pure functions without I/O: one benchmark's BASE and NEW samples -> a
:class:`~harness.gate.verdicts.Comparison`.

Decision rule, per benchmark, on raw samples (never on means). r = median(NEW) / median(BASE);
t = the minimum effect (``threshold``, default 5 %, per benchmark through ``thresholds``):

- "insufficient data": fewer than ``min_samples`` raw samples on either side, or a zero baseline median;
- "regression": Mann–Whitney U (two-sided) p < alpha  AND  the whole (1 − alpha) percentile-bootstrap
  confidence interval of r lies above 1 + t;
- "improvement": p < alpha  AND  the interval lies below 1 / (1 + t) (the same effect on a log scale);
- "no change": the interval's upper end is at most 1 + t: a slowdown beyond the minimum effect is ruled out;
- "inconclusive": anything else: the interval reaches above 1 + t without being wholly above it (or the
  rank test does not see the shift), so the data can neither flag nor clear a slowdown of t.

Every comparison also carries the **minimum detectable effect** (:func:`minimum_detectable_effect`): the
smallest slowdown that this rule, at this alpha, flags with probability ``power`` (default 80 %) given the
spread measured in *these* samples. With se the standard error of log r (the standard deviation of the bootstrap's log
ratios), the interval's lower end is about log r − z(1 − alpha/2)·se, so a true slowdown d is flagged with probability
Φ((log(1 + d) − log(1 + t)) / se − z(1 − alpha/2)); setting that to the power gives
d_min = (1 + t)·exp((z(1 − alpha/2) + z(power))·se) − 1. A simulation of the rule checks it
(``suites/test_gate_verdicts.py``).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from harness.errors import ConfigError
from harness.gate.verdicts import Comparison, GateOptions, Verdict
from harness.numeric import FloatArray

_BOOTSTRAP_CHUNK = 2_000_000  # resampled values held in memory at once


class _Counts(TypedDict):
    """Comparison's sample counts, passed on by keyword."""

    n_base: int
    n_new: int


class _RawFigures(_Counts):
    """Counts and raw medians of an interleaved comparison, passed on by keyword."""

    base_median: float | None
    new_median: float | None


def mann_whitney_p(base: FloatArray, new: FloatArray) -> float:
    """Two-sided Mann–Whitney U p-value (exact for small tie-free samples, normal approximation else)."""
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(new, base, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p  # all values tied: no evidence of a difference


def bootstrap_medians(samples: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
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


def bootstrap_ratios(base: FloatArray, new: FloatArray, resamples: int = 2000, seed: int = 0) -> FloatArray:
    """median(NEW) / median(BASE) over ``resamples`` bootstrap resamples, each side resampled on its own."""
    rng = np.random.default_rng(seed)
    base_medians = bootstrap_medians(base, resamples, rng)
    new_medians = bootstrap_medians(new, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return new_medians / base_medians


def percentile_ci(ratios: FloatArray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.nanpercentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def median_ratio_ci(
    base: FloatArray, new: FloatArray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(NEW) / median(BASE), each side resampled on its own."""
    return percentile_ci(bootstrap_ratios(base, new, resamples, seed), confidence)


def log_se(ratios: FloatArray) -> float:
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


def compare_samples(name: str, base: FloatArray, new: FloatArray, options: GateOptions = GateOptions()) -> Comparison:
    """One benchmark, BASE against NEW raw samples (any time unit, the same on both sides)."""
    base, new = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    threshold = options.threshold_for(name)
    sizes: _Counts = {"n_base": int(base.size), "n_new": int(new.size)}
    if min(base.size, new.size) < options.min_samples:
        return Comparison(
            name,
            Verdict.INSUFFICIENT,
            threshold,
            **sizes,
            base_median=median_or_none(base),
            new_median=median_or_none(new),
            note=f"{base.size} samples in BASE, {new.size} in NEW; {options.min_samples} needed on each side",
        )
    base_median, new_median = float(np.median(base)), float(np.median(new))
    if base_median <= 0:
        return Comparison(
            name,
            Verdict.INSUFFICIENT,
            threshold,
            **sizes,
            base_median=base_median,
            new_median=new_median,
            note="BASE median is 0: no ratio",
        )
    p_value = mann_whitney_p(base, new)
    ratios = bootstrap_ratios(base, new, options.resamples, options.seed)
    ci = percentile_ci(ratios, options.confidence)
    mde = minimum_detectable_effect(log_se(ratios), threshold, options.alpha, options.power)
    return Comparison(
        name,
        decide(p_value, ci, threshold, options.alpha),
        threshold,
        **sizes,
        base_median=base_median,
        new_median=new_median,
        ratio=new_median / base_median,
        ci=ci,
        p_value=p_value,
        mde=mde,
    )


def compare_interleaved(
    name: str,
    base_blocks: Sequence[Sequence[float]],
    new_blocks: Sequence[Sequence[float]],
    options: GateOptions = GateOptions(),
) -> Comparison:
    """Same-job A/B: turn i measured ``base_blocks[i]`` and ``new_blocks[i]`` back to back, so the turn is the
    unit. Per turn, r_i = log(median NEW block / median BASE block): a shift of the machine's speed between
    turns scales both blocks of a turn alike and cancels in r_i. Estimate: exp of the 20 % trimmed mean of
    r_i; interval: percentile bootstrap over turns; test: Wilcoxon signed-rank on r_i (two-sided). Then the
    same rule as :func:`decide`. (Dividing each sample by its turn's pooled median instead, then pooling,
    biases the ratio towards 1: a simulated 2 % came out as 1.2 %.) The printed medians are the raw ones."""
    if len(base_blocks) != len(new_blocks) or not base_blocks:
        raise ConfigError(
            f"{name}: interleaved samples need the same number (> 0) of turns on both sides, got "
            f"{len(base_blocks)} and {len(new_blocks)}"
        )
    threshold = options.threshold_for(name)
    raw_base, raw_new = np.concatenate(base_blocks), np.concatenate(new_blocks)
    sizes: _RawFigures = {
        "n_base": int(raw_base.size),
        "n_new": int(raw_new.size),
        "base_median": median_or_none(raw_base),
        "new_median": median_or_none(raw_new),
    }
    block_medians = np.array([[np.median(b), np.median(n)] for b, n in zip(base_blocks, new_blocks, strict=True)])
    if len(block_medians) < options.min_samples:
        return Comparison(
            name,
            Verdict.INSUFFICIENT,
            threshold,
            **sizes,
            note=f"{len(block_medians)} turns; {options.min_samples} needed",
        )
    if np.any(block_medians <= 0):
        return Comparison(name, Verdict.INSUFFICIENT, threshold, **sizes, note="a turn's median is 0: no ratio")
    log_ratios = np.log(block_medians[:, 1] / block_medians[:, 0])
    ratio, ci, p_value, mde = _turn_estimates(log_ratios, threshold, options)
    return Comparison(
        name,
        decide(p_value, ci, threshold, options.alpha),
        threshold,
        **sizes,
        ratio=ratio,
        ci=ci,
        p_value=p_value,
        mde=mde,
        mode="interleaved",
    )


def _turn_estimates(
    log_ratios: FloatArray, threshold: float, options: GateOptions
) -> tuple[float, tuple[float, float], float, float]:
    """From the per-turn log ratios: the ratio (exp of the 20 % trimmed mean), its percentile-bootstrap interval
    over turns, Wilcoxon's p and the minimum detectable slowdown."""
    from scipy.stats import trim_mean, wilcoxon

    picks = np.random.default_rng(options.seed).integers(0, log_ratios.size, size=(options.resamples, log_ratios.size))
    tail = options.alpha / 2 * 100
    boot = trim_mean(log_ratios[picks], 0.2, axis=1)
    low, high = np.exp(np.percentile(boot, [tail, 100 - tail]))
    p_value = 1.0 if np.all(log_ratios == 0) else float(wilcoxon(log_ratios).pvalue)
    mde = minimum_detectable_effect(float(np.std(boot, ddof=1)), threshold, options.alpha, options.power)
    return float(np.exp(trim_mean(log_ratios, 0.2))), (float(low), float(high)), p_value, mde


def median_or_none(samples: FloatArray) -> float | None:
    return float(np.median(samples)) if samples.size else None
