"""``edgebench history DIR|s3://…``: every stored node result, grouped per machine, with change points and creep.

Reading: :func:`~harness.gate.history_sources.read_results` (where results are found and which are skipped)
and :mod:`harness.gate.history_records` (one file -> one result under its machine key); analysis:
:mod:`harness.gate.history_trend` (series, change points, creep); the trend pages:
:mod:`harness.gate.history_html`. This module runs the command and prints its terminal summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.gate.history_records import MachineKey
from harness.gate.history_sources import Skipped, read_results
from harness.gate.history_trend import Analysis, HistoryOptions, analyse, build_series

_STATUS_STYLE = {"regression": "bold red", "creep": "bold red", "improvement": "green", "not analysed": "yellow"}


def render_tables(analyses: Sequence[Analysis]) -> list[Any]:
    """One table per machine key (its label the title): each benchmark's runs, status and findings."""
    from rich.table import Table
    from rich.text import Text

    tables: dict[MachineKey, Any] = {}
    for a in analyses:
        table = tables.get(a.series.key)
        if table is None:
            table = tables[a.series.key] = Table(title=a.series.key.label(), title_justify="left")
            for column in ("kind", "benchmark", "runs", "metric", "latest", "status", "findings"):
                table.add_column(column, overflow="fold")
        latest = a.values[-1] if a.values.size else float("nan")
        table.add_row(
            a.series.kind,
            a.series.name,
            str(len(a.series.points)),
            a.metric,
            f"{latest:.4g}" + (" ms" if a.metric == "raw" else ""),
            Text(a.status, style=_STATUS_STYLE.get(a.status, "")),
            "\n".join(a.findings) or a.note or "no change point",
        )
    return list(tables.values())


def skipped_lines(skipped: Sequence[Skipped]) -> list[str]:
    """One line per file skipped for a problem; the expected ones (bookkeeping, duplicates) counted."""
    lines = [f"skipped {s.source}: {s.reason}" for s in skipped if s.problem]
    expected = [s for s in skipped if not s.problem]
    if expected:
        reasons: dict[str, int] = {}
        for s in expected:
            kind = s.reason.split(" (")[0] if not s.reason.startswith("the same results") else "stored twice"
            reasons[kind] = reasons.get(kind, 0) + 1
        lines.append(f"not read again ({len(expected)}): " + "; ".join(f"{n} {k}" for k, n in reasons.items()))
    return lines


@dataclass(frozen=True)
class HistoryResult:
    analyses: tuple[Analysis, ...]
    skipped: tuple[Skipped, ...]
    index: Path  # the trend pages' index.html
    json_path: Path

    @property
    def regressions(self) -> tuple[Analysis, ...]:
        return tuple(a for a in self.analyses if a.status in ("regression", "creep"))


def run_history(
    sources: Sequence[str],
    out_dir: Path,
    options: HistoryOptions = HistoryOptions(),
    endpoint_url: str | None = None,
    region: str | None = None,
) -> HistoryResult:
    """Read, group, analyse; write ``out_dir/history.json`` and the trend pages (``out_dir/index.html``)."""
    from harness.fileio import write_json
    from harness.gate.history_html import page_path, render_history

    collection = read_results(sources, endpoint_url, region)
    analyses = tuple(analyse(series, options) for series in build_series(collection.results))
    index = render_history(list(analyses), Path(out_dir))
    json_path = write_json(
        Path(out_dir) / "history.json",
        {
            "schema": "edgebench.history/1",
            "sources": [str(s) for s in sources],
            "series": [{**a.to_json(), "page": page_path(a).as_posix()} for a in analyses],
            "skipped": [{"source": s.source, "reason": s.reason} for s in collection.skipped],
        },
    )
    return HistoryResult(analyses, tuple(collection.skipped), index, json_path)
