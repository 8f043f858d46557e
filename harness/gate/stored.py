"""``edgebench gate BASE NEW``: the CI latency regression gate against a stored baseline. Exit 0 ok,
1 regression, 2 unusable input.

Every benchmark of both inputs (:mod:`harness.gate.inputs`) is judged by the rule of
:mod:`harness.gate.compare`; the verdicts and the exit policy are :mod:`harness.gate.verdicts`. Benchmarks are
matched by name; names on one side only are reported as "removed" / "added".
``edgebench gate --rerun-inconclusive N --rerun-command CMD`` re-measures (CMD rewrites NEW; the inconclusive
benchmarks' samples are pooled with the earlier ones) up to N times before deciding.

Drift compensation (:mod:`harness.gate.drift`): when both files carry a benchmark's reference series
(``extra_info["edgebench_drift"]``), the rule runs on the per-turn ratios model ÷ reference instead
of the raw samples (mode "compensated": a shift of the machine's speed between the two jobs moves both and
cancels); ``compensate=False`` (``--no-compensation``) or a side without the series falls back to the raw
samples, and the table says which mode each benchmark was judged in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from harness.errors import ConfigError
from harness.gate.compare import compare_samples, median_or_none
from harness.gate.inputs import ResultSet, check_same_processor, load_results, pool_results
from harness.gate.verdicts import EXIT_UNUSABLE, Comparison, GateOptions, GateOutcome, GateResult, Verdict


def compare_results(base: ResultSet, new: ResultSet, options: GateOptions = GateOptions()) -> GateResult:
    """Every benchmark of both sets, in BASE order then the added ones; refuses mixed processors."""
    check_same_processor(base, new, options.allow_different_machines)
    comparisons = []
    for name, samples in base.samples.items():
        if name in new.samples:
            comparisons.append(compare_benchmark(name, base, new, options))
        else:
            comparisons.append(
                Comparison(
                    name,
                    Verdict.REMOVED,
                    options.threshold_for(name),
                    n_base=samples.size,
                    base_median=median_or_none(samples),
                    note="in BASE, not in NEW",
                )
            )
    for name, samples in new.samples.items():
        if name not in base.samples:
            comparisons.append(
                Comparison(
                    name,
                    Verdict.ADDED,
                    options.threshold_for(name),
                    n_new=samples.size,
                    new_median=median_or_none(samples),
                    note="in NEW, not in BASE",
                )
            )
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
        found = dataclasses.replace(
            found, note=f"{found.n_base} turns in BASE, {found.n_new} in NEW; {options.min_samples} needed on each side"
        )
    return dataclasses.replace(found, mode="compensated", base_median=raw.base_median, new_median=raw.new_median)


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def gate_files(base: Path, new: Path, options: GateOptions = GateOptions()) -> GateResult:
    """Load both inputs and compare them; unusable input raises ConfigError (exit code 2)."""
    return compare_results(load_results(base, options.compensate), load_results(new, options.compensate), options)


def run_gate(
    base: Path,
    new: Path,
    options: GateOptions = GateOptions(),
    reruns: int = 0,
    rerun: Callable[[int], None] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> GateOutcome:
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


def gate_with_reruns(
    base: Path,
    new: Path,
    options: GateOptions,
    reruns: int,
    rerun: Callable[[int], None],
    log: Callable[[str], None] = lambda line: None,
) -> GateResult:
    """:func:`gate_files`, then while some benchmark is inconclusive (or has insufficient data) and fewer
    than ``reruns`` re-measurements ran: ``rerun(i)`` (it rewrites NEW), pool the inconclusive benchmarks' samples with
    the earlier ones and judge again. Only inconclusive comparisons are re-judged; settled ones keep their verdict. Each
    look uses the same alpha (an inconclusive result is re-measured at most ``reruns`` times, so the false-alarm
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
        redone = {
            name: compare_benchmark(name, base_set, new_set, options) for name in pending if name in new_set.samples
        }
        result = dataclasses.replace(
            result, comparisons=tuple(redone.get(c.name, c) for c in result.comparisons), reruns=attempt
        )
    return result
