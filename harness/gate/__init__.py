"""The gate step: is NEW slower than BASE? Exit 0 ok, 1 regression, 2 unusable input.

Two modes share one decision rule and one verdict table: a stored baseline from another job
(``edgebench gate``, :mod:`harness.gate.compare`, drift-compensated through :mod:`harness.gate.drift`) and
the same-job interleaved A/B (``edgebench ab``, :mod:`harness.gate.ab` with its worker process
:mod:`harness.gate.ab_worker`). ``edgebench history`` (:mod:`harness.gate.history`, pages by
:mod:`harness.gate.history_html`) follows each benchmark across stored runs per machine.

This module exposes what the CLI and other steps use; the rest lives in the modules above.
"""

from harness.gate.compare import (
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_UNUSABLE,
    FAIL_ON_CHOICES,
    Comparison,
    GateOptions,
    GateOutcome,
    GateResult,
    Verdict,
    compare_interleaved,
    compare_samples,
    format_fail_on,
    gate_files,
    load_results,
    median_ratio_ci,
    parse_fail_on,
    render,
    render_summary,
    run_gate,
)

__all__ = [
    "EXIT_OK",
    "EXIT_REGRESSION",
    "EXIT_UNUSABLE",
    "FAIL_ON_CHOICES",
    "Comparison",
    "GateOptions",
    "GateOutcome",
    "GateResult",
    "Verdict",
    "compare_interleaved",
    "compare_samples",
    "format_fail_on",
    "gate_files",
    "load_results",
    "median_ratio_ci",
    "parse_fail_on",
    "render",
    "render_summary",
    "run_gate",
]
