"""The gate step: is NEW slower than BASE? Exit 0 ok, 1 regression, 2 unusable input.

Two modes share one decision rule (:mod:`harness.gate.compare`) and one verdict table
(:mod:`harness.gate.verdicts`, printed by :mod:`harness.gate.render`):

- stored baseline from another job, ``edgebench gate`` (:mod:`harness.gate.stored`, reading result files
  through :mod:`harness.gate.inputs`, drift-compensated through :mod:`harness.gate.drift`);
- same-job interleaved A/B, ``edgebench ab`` (:mod:`harness.gate.ab`, with its worker process
  :mod:`harness.gate.ab_worker`).

``edgebench history`` follows each benchmark across stored runs per machine: :mod:`harness.gate.history`
(the command), reading :mod:`harness.gate.history_sources` and :mod:`harness.gate.history_records`,
analysing :mod:`harness.gate.history_trend`, pages by :mod:`harness.gate.history_html`.

This module exposes what the CLI and other steps use; the rest lives in the modules above.
"""

from harness.gate.compare import compare_interleaved, compare_samples, median_ratio_ci
from harness.gate.inputs import load_results
from harness.gate.render import render, render_summary
from harness.gate.stored import gate_files, run_gate
from harness.gate.verdicts import (
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_UNUSABLE,
    FAIL_ON_CHOICES,
    Comparison,
    GateOptions,
    GateOutcome,
    GateResult,
    Verdict,
    format_fail_on,
    parse_fail_on,
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
