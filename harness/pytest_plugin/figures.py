"""The figures tests record with ``record_property`` (xdist ships user_properties to the controller) and each
test's outcome: printed in the terminal summary and written as the node report (--edgebench-node-report).

Keys a test may record: ``parity`` (``ParityResult.to_json()`` plus backend, precision, case), ``fault`` (a
row of the sensitivity table), ``margins`` (``parity.margin_figure``), ``edgebench_figure`` (one line of
text) and ``s3_fault`` (``s3_faults`` figures)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness import fileio, parity, s3_faults
from harness.measure import processor_identity


@dataclasses.dataclass
class Figures:
    """What the run measured, collected on the controller for the terminal summary and the node report."""

    parity: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    margins: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    lines: list[str] = dataclasses.field(default_factory=list)
    s3_faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    outcomes: dict[str, list[dict[str, Any]]] = dataclasses.field(
        default_factory=lambda: {"passed": [], "failed": [], "skipped": []}
    )

    def record(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":  # setup/teardown count when they fail or skip
            self.outcomes[report.outcome].append({"test": report.nodeid, "reason": _short_reason(report)})
        if report.when != "call":
            return
        kinds: dict[str, list[Any]] = {
            "parity": self.parity,
            "fault": self.faults,
            "margins": self.margins,
            "edgebench_figure": self.lines,
            "s3_fault": self.s3_faults,
        }
        for key, value in report.user_properties:
            if key in kinds:
                kinds[key].append(value)

    def sections(self) -> list[tuple[str, list[str]]]:
        """(title, lines) of the terminal summary: figures tests measured, the reference's margins, the parity
        worst case per precision next to its bounds, and which injected faults each precision's bounds catch."""
        return [
            ("edgebench figures", self.lines),
            (
                "edgebench reference: accuracy and decision margins (p1 - p2)",
                [parity.margin_line(m) for m in self.margins],
            ),
            ("edgebench parity: measured worst case per precision [bound]", parity.worst_case_lines(self.parity)),
            (
                "edgebench sensitivity: injected faults caught (x) or passed (.) per precision",
                parity.sensitivity_lines(self.faults),
            ),
            ("edgebench S3 faults: each operation under each injected fault", s3_faults.figure_lines(self.s3_faults)),
        ]


FIGURES = pytest.StashKey[Figures]()


class FigureCollector:
    """The hooks that fill, print and write the session's Figures (on ``config.stash[FIGURES]``); an object
    because pytest_runtest_logreport is given the report only, not the config."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.config.stash[FIGURES].record(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for title, lines in self.config.stash[FIGURES].sections():
            if lines:
                terminalreporter.section(title)
                for line in lines:
                    terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        path = session.config.getoption("edgebench_node_report")
        if path and not hasattr(session.config, "workerinput"):  # the controller writes it, not xdist workers
            from harness import fleet

            figures = self.config.stash[FIGURES]
            fileio.write_json(
                Path(path), fleet.node_summary(processor_identity(), figures.parity, figures.outcomes, int(exitstatus))
            )


def _short_reason(report: pytest.TestReport) -> str:
    """The exception message of a failure (or a skip's reason), one line."""
    if report.outcome == "passed":
        return ""
    if isinstance(report.longrepr, tuple):  # skipped: (path, line, reason)
        return str(report.longrepr[2])[:300]
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    return " ".join(text.split())[:300]
