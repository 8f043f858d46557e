"""``report.html`` for a fleet run: the merged summary's tables (shared with the terminal, see
:func:`harness.fleet.report_tables`), the speedup of each rung over TF FP32 per processor, and each failed
node with its reason and log tail. Self-contained (the plot is an embedded PNG), opens from disk."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from harness.fleet import REFERENCE, headline, report_tables
from harness.html_report import _CSS, _figure_png, _html_table  # the run report's page style and helpers
from harness.report import write_text


def render_fleet_html(summary: dict[str, Any], out: Path) -> Path:
    """``summary`` is :meth:`harness.fleet.MergedRun.to_json`."""
    import matplotlib

    matplotlib.use("Agg")
    tables = {title: _html_table(*table) for title, table in report_tables(summary).items() if table[1]}
    plot = _speedup_plot(summary["processors"])
    failed = "".join(f"<h3>{html.escape(f['node_id'])}: {html.escape(f['reason'])}</h3>"
                     f"<pre>{html.escape(f['log_tail'] or '(no log)')}</pre>" for f in summary["failed"])
    sections = [f"<h2>{html.escape(title)}</h2>{table}" for title, table in tables.items()]
    if plot:
        sections.insert(2, "<h2>Speedup over TF FP32 per processor (median over its nodes)</h2><img alt=\"speedup "
                           f"per processor and rung\" src=\"data:image/png;base64,{plot}\">")
    title = f"edgebench fleet run {html.escape(summary['run_id'])}"
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>{_CSS}</style>"
            f"</head><body><h1>{title}</h1><p>{html.escape(headline(summary))}.</p>{''.join(sections)}"
            + (f"<h2>Failed nodes</h2>{failed}" if failed else "") + "</body></html>")
    return write_text(out, page)


def _speedup_plot(processors: list[dict[str, Any]]) -> str:
    """Grouped bars: one group per processor, one bar per candidate rung (median speedup over TF FP32); a
    rung the processor's nodes did not run has no bar."""
    import matplotlib.pyplot as plt

    rungs = [r["label"] for r in processors[0]["ladder"] if r["label"] != REFERENCE] if processors else []
    if not any(r["speedup"] for p in processors for r in p["ladder"] if r["label"] != REFERENCE):
        return ""
    width = 0.8 / len(rungs)
    figure, axes = plt.subplots(figsize=(max(6, 0.5 * len(processors) * len(rungs) + 2), 4))
    for j, label in enumerate(rungs):
        values = [next(r["speedup"] for r in p["ladder"] if r["label"] == label) or 0.0 for p in processors]
        bars = axes.bar([i + j * width for i in range(len(processors))], values, width=width, label=label)
        axes.bar_label(bars, labels=[f"{v:.2f}×" if v else "not run" for v in values], fontsize=7)
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(processors))],
                    [f"{p['cpu'][:32]}\n({p['nodes']} nodes)" for p in processors], fontsize=7)
    axes.set_ylabel("TF FP32 median ÷ rung median")
    axes.legend(fontsize=7)
    return _figure_png(figure)
