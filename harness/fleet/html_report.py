"""``report.html`` for a fleet run: the OpenVINO count as a headline, the merged summary's tables (shared with
the terminal, see :func:`harness.fleet.present.report_tables`), a node × rung heatmap of the speedup over TF FP32 with
each cell's 95 % interval beside the per-processor table, the speedup of each rung per processor, and each
failed node with its reason and log tail. Self-contained (the plot is an embedded PNG), opens from disk."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from harness.fileio import write_text
from harness.fleet.present import headline, openvino_headline, report_tables
from harness.fleet.results import REFERENCE
from harness.html_report import PAGE_CSS, figure_png, html_table  # the run report's page style and helpers


def render_fleet_html(summary: dict[str, Any], out: Path) -> Path:
    """``summary`` is :meth:`harness.fleet.merge.MergedRun.to_json`."""
    import matplotlib

    matplotlib.use("Agg")
    tables = {title: html_table(*table) for title, table in report_tables(summary).items() if table[1]}
    plot = _speedup_plot(summary["processors"])
    failed = "".join(
        f"<h3>{html.escape(f['node_id'])}: {html.escape(f['reason'])}</h3>"
        f"<pre>{html.escape(f['log_tail'] or '(no log)')}</pre>"
        for f in summary["failed"]
    )
    sections = [f"<h2>{html.escape(title)}</h2>{table}" for title, table in tables.items()]
    heatmap = _speedup_heatmap(summary)
    if heatmap:
        sections.insert(
            1,
            "<h2>Speedup over TF FP32 per node and rung</h2><p>TF FP32 median ÷ the rung's median on "
            "the node, with its 95 % bootstrap interval over the raw samples.</p>" + heatmap,
        )
    if plot:
        sections.insert(
            3 if heatmap else 2,
            "<h2>Speedup over TF FP32 per processor (median over its nodes)</h2>"
            f'<img alt="speedup per processor and rung" src="data:image/png;base64,{plot}">',
        )
    title = f"edgebench fleet run {html.escape(summary['run_id'])}"
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{PAGE_CSS}{_HEAT_CSS}'
        f'</style></head><body><h1>{title}</h1><p class="headline">{html.escape(openvino_headline(summary))}'
        f"</p><p>{html.escape(headline(summary))}.</p>{''.join(sections)}"
        + (f"<h2>Failed nodes</h2>{failed}" if failed else "")
        + "</body></html>"
    )
    return write_text(out, page)


_HEAT_CSS = (
    ".headline{font-size:1.6em;font-weight:bold}table.heat td.cell{text-align:center;min-width:7em}"
    "table.heat small{display:block;color:#333}"
)


def _speedup_heatmap(summary: dict[str, Any]) -> str:
    """One row per node (complete nodes by processor, then failed ones with their reason), one column per rung
    but TF FP32; a cell's colour grows with the speedup (white at 1×, or slower, to full green at the fleet's
    largest), its text is the speedup and its interval; a rung the node did not run says so."""
    import math

    rungs = [label for label in summary["rungs"] if label != REFERENCE]
    if not rungs or not summary["nodes"]:
        return ""
    top = max([r["speedup"] for n in summary["nodes"] for r in n["ladder"].values() if r["speedup"]] or [1.0])
    head = "".join(f"<th>{html.escape(label)}</th>" for label in ["node", "CPU", *rungs])
    rows = []
    for node in sorted(summary["nodes"], key=lambda n: (n["cpu"], n["node_id"])):
        cells = []
        for label in rungs:
            rung = node["ladder"].get(label)
            if rung is None or rung["speedup"] is None:
                cells.append('<td class="cell" style="background:#eee">not run</td>')
                continue
            share = math.log(rung["speedup"]) / math.log(top) if top > 1 and rung["speedup"] > 1 else 0.0
            green = f"rgb({int(255 - 155 * share)},{int(255 - 55 * share)},{int(255 - 155 * share)})"
            ci = rung.get("speedup_ci")
            interval = f"<small>{ci[0]:.2f}–{ci[1]:.2f}</small>" if ci else "<small>no interval</small>"
            cells.append(f'<td class="cell" style="background:{green}">{rung["speedup"]:.2f}×{interval}</td>')
        rows.append(
            f"<tr><td>{html.escape(node['node_id'])}</td><td>{html.escape(node['cpu'])}</td>{''.join(cells)}</tr>"
        )
    rows.extend(
        f'<tr><td>{html.escape(failure["node_id"])}</td><td colspan="{len(rungs) + 1}" '
        f'style="background:#fdd">failed: {html.escape(failure["reason"])}</td></tr>'
        for failure in summary["failed"]
    )
    return f'<table class="heat"><tr>{head}</tr>{"".join(rows)}</table>'


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
    axes.set_xticks(
        [i + 0.4 - width / 2 for i in range(len(processors))],
        [f"{p['cpu'][:32]}\n({p['nodes']} nodes)" for p in processors],
        fontsize=7,
    )
    axes.set_ylabel("TF FP32 median ÷ rung median")
    axes.legend(fontsize=7)
    return figure_png(figure)
