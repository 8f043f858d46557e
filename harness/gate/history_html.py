"""Trend pages of ``edgebench history``: one self-contained HTML page per benchmark and machine key (the plot an
embedded PNG, opens from disk), and ``index.html`` linking them with each series' status.

A page plots the analysed series run by run (raw median latency, or the drift-compensated model ÷ reference
ratio with the raw medians in a second panel), each segment's mean between change points, a red dashed line at
each change point labelled with its change, and the creep window shaded where a creep is flagged; under it the
findings, the machine key and a table of the runs with their files or URIs. Style and helpers: the run
report's (:mod:`harness.html_report`).
"""

from __future__ import annotations

import html
import itertools
from pathlib import Path
from typing import Any

from harness.fileio import write_text
from harness.gate.history_records import safe_name
from harness.gate.history_trend import Analysis
from harness.html_report import PAGE_CSS, figure_png, html_table

_HISTORY_CSS = (
    ".status-regression,.status-creep{color:#b00;font-weight:bold}.status-improvement{color:#070}"
    ".findings li{margin:.3em 0}"
)


def page_path(analysis: Analysis) -> Path:
    """Relative to the output folder: ``<machine slug>/<kind>-<benchmark>.html``."""
    series = analysis.series
    return Path(series.key.slug()) / f"{safe_name(series.kind)}-{safe_name(series.name)[:80]}.html"


def render_history(analyses: list[Analysis], out_dir: Path) -> Path:
    """Every series' page and the index; returns the index's path."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    for analysis in analyses:
        write_text(out_dir / page_path(analysis), _page(analysis))
    return write_text(out_dir / "index.html", _index(analyses))


def _index(analyses: list[Analysis]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(a.series.key.label())}</td><td>{html.escape(a.series.kind)}</td>"
        f'<td><a href="{html.escape(page_path(a).as_posix())}">{html.escape(a.series.name)}</a></td>'
        f'<td>{len(a.series.points)}</td><td class="status-{safe_name(a.status)}">{html.escape(a.status)}</td>'
        f"<td>{html.escape('; '.join(a.findings) or a.note or 'no change point')}</td></tr>"
        for a in analyses
    )
    head = "".join(f"<th>{h}</th>" for h in ("machine", "kind", "benchmark", "runs", "status", "findings"))
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>edgebench history</title><style>{PAGE_CSS}'
        f"{_HISTORY_CSS}</style></head><body><h1>edgebench history: {len(analyses)} series</h1>"
        f"<table><tr>{head}</tr>{rows}</table></body></html>"
    )


def _page(analysis: Analysis) -> str:
    series = analysis.series
    title = f"{series.name} ({series.kind})"
    findings = (
        "".join(f"<li>{html.escape(line)}</li>" for line in analysis.findings)
        or f"<li>{html.escape(analysis.note or 'no change point, no creep')}</li>"
    )
    plot = _trend_plot(analysis)
    metric = (
        "median latency per run (ms)"
        if analysis.metric == "raw"
        else "drift-compensated: median per-turn model ÷ reference time per run (raw medians below)"
    )
    runs = html_table(
        ["run", "when", "median ms", "samples", "model ÷ reference", "source"],
        [
            [
                i + 1,
                f"{w:%Y-%m-%d %H:%M:%S}",
                f"{p.median_ms:.4g}",
                p.n or "median only",
                "–" if p.compensated is None else f"{p.compensated:.4f}",
                src,
            ]
            for i, (w, src, p) in enumerate(zip(series.when, series.sources, series.points, strict=True))
        ],
    )
    key = html_table(
        ["CPU", "usable CPUs", "ISA flags", "OpenVINO devices", "versions"],
        [
            [
                series.key.cpu_brand,
                series.key.usable_cpus or "?",
                " ".join(series.key.isa_flags),
                "; ".join(f"{k}: {v}" for k, v in series.key.openvino_devices) or "?",
                ", ".join(f"{k} {v}" for k, v in series.key.versions),
            ]
        ],
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{PAGE_CSS}'
        f'{_HISTORY_CSS}</style></head><body><h1>{html.escape(title)}</h1><p><a href="../index.html">all '
        f'series</a></p><p class="status-{safe_name(analysis.status)}">status: {html.escape(analysis.status)}</p>'
        f'<ul class="findings">{findings}</ul><h2>Trend: {html.escape(metric)}</h2>'
        f'<img alt="trend of {html.escape(series.name)}" src="data:image/png;base64,{plot}">'
        f"<h2>Machine key</h2>{key}<h2>Runs</h2>{runs}</body></html>"
    )


def _trend_plot(analysis: Analysis) -> str:
    import matplotlib.pyplot as plt

    compensated = analysis.metric == "compensated"
    figure, axes = plt.subplots(
        2 if compensated else 1, 1, figsize=(9, 5.5 if compensated else 3.8), sharex=True, squeeze=False
    )
    runs = list(range(1, len(analysis.values) + 1))
    main = axes[0][0]
    main.plot(runs, analysis.values, marker="o", markersize=3, color="C0", label=analysis.metric)
    _mark(main, analysis)
    main.set_ylabel("model ÷ reference" if compensated else "median ms per call")
    if compensated:
        axes[1][0].plot(runs, analysis.series.raw, marker="o", markersize=3, color="C7", label="raw median")
        axes[1][0].set_ylabel("raw median ms")
    axes[-1][0].set_xlabel("run (time order)")
    main.legend(fontsize=7, loc="best")
    return figure_png(figure)


def _mark(axes: Any, analysis: Analysis) -> None:
    """Segment means, change points (red dashed, labelled) and the flagged creep window (shaded)."""
    bounds = [0, *(cp.index for cp in analysis.change_points), len(analysis.values)]
    for number, (start, stop) in enumerate(itertools.pairwise(bounds)):
        mean = float(analysis.values[start:stop].mean())
        axes.hlines(
            mean, start + 0.5, stop + 0.5, colors="C2", linewidth=1.5, label="segment mean" if number == 0 else None
        )
    for number, cp in enumerate(analysis.change_points):
        axes.axvline(
            cp.index + 0.5, color="red", linestyle="--", linewidth=1.2, label="change point" if number == 0 else None
        )
        axes.annotate(
            f"{cp.change:+.1%}",
            (cp.index + 0.5, axes.get_ylim()[1]),
            color="red",
            fontsize=8,
            xytext=(3, -12),
            textcoords="offset points",
        )
    creep = analysis.creep
    if creep and creep.flagged:
        axes.axvspan(
            creep.start + 0.5,
            creep.start + creep.runs + 0.5,
            color="orange",
            alpha=0.2,
            label=f"creep {creep.total:+.1%}",
        )
