"""``report.html`` for one or many runs (nodes): self-contained (plots embedded as PNG), opens from disk.

Plots: latency distribution per backend x processor, speedup over TF per processor, precision ladder
(accuracy against latency, one point per backend x precision, one series per processor), and a parity
table. Each plot is one small function.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from harness.backends import PRECISIONS
from harness.fileio import write_text
from harness.measure import isa_summary
from harness.report import speedups

Document = dict[str, Any]


def node_name(document: Document) -> str:
    return f"{document['machine']['cpu_brand']} [{document.get('node_id') or document['run_id']}]"


def render_html(documents: list[Document], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to PNG only
    ladder = ladder_series(documents)
    sections = [
        ("Latency per backend and processor (infer only, ms)", _latency_plot(documents), ""),
        ("Speedup over stock TensorFlow (TF median ÷ backend median)", _speedup_plot(documents), ""),
        (
            "Precision ladder: accuracy against latency",
            _ladder_plot(ladder),
            "; ".join(f"{cpu}: {', '.join(p['label'] for p in points)}" for cpu, points in ladder.items()),
        ),
    ]
    body = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,'
        f'{png}">' + (f'<p class="caption">{html.escape(caption)}</p>' if caption else "")
        for title, png, caption in sections
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>edgebench report</title>'
        f"<style>{PAGE_CSS}</style></head><body><h1>edgebench: {len(documents)} run(s)</h1>"
        f"{_nodes_table(documents)}{body}<h2>Parity against TF FP32</h2>{_parity_table(documents)}</body></html>"
    )
    return write_text(out, page)


def figure_png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _latency_plot(documents: list[Document]) -> str:
    import matplotlib.pyplot as plt

    labels, samples = [], []
    for document in documents:
        for label, result in document["backends"].items():
            labels.append(f"{label}\n{document['machine']['cpu_brand'][:28]}")
            samples.append(
                [ns / 1e6 for ns in result["latency"].get("samples_ns", [])] or [result["latency"]["median_ms"]]
            )
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(labels)), 4))
    axes.boxplot(samples, tick_labels=labels, showfliers=False)
    axes.set_yscale("log")
    axes.set_ylabel("ms per call")
    axes.tick_params(axis="x", labelsize=7)
    return figure_png(figure)


def _speedup_plot(documents: list[Document]) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    for offset, document in enumerate(documents):
        ratios = {k: v for k, v in speedups(document).items() if k not in ("tf", "null")}
        positions = [offset + 0.8 * i / max(len(ratios), 1) for i in range(len(ratios))]
        bars = axes.bar(positions, list(ratios.values()), width=0.8 / max(len(ratios), 1), label=node_name(document))
        axes.bar_label(bars, labels=[f"{k}\n{v:.2f}×" for k, v in ratios.items()], fontsize=7)
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xticks([])
    axes.set_ylabel("× faster than TF")
    axes.legend(fontsize=7)
    return figure_png(figure)


def ladder_series(documents: list[Document]) -> dict[str, list[dict[str, Any]]]:
    """CPU brand -> one point per backend x precision (null left out) of every run on that processor:
    label, backend, run, median ms, and accuracy on the validation set (held-out images where a run has none)."""
    series: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        accuracy = (document.get("validation") or {}).get("accuracy") or document.get("accuracy", {})
        for label, result in document["backends"].items():
            backend = result["describe"].get("backend", label)
            if backend != "null" and accuracy.get(label) is not None:
                series.setdefault(document["machine"]["cpu_brand"], []).append(
                    {
                        "label": label,
                        "backend": backend,
                        "run": document.get("node_id") or document["run_id"],
                        "precision": _requested_precision(result["describe"]),
                        "median_ms": result["latency"]["median_ms"],
                        "accuracy": accuracy[label],
                    }
                )
    return series


def _requested_precision(described: dict[str, Any]) -> str:
    precision: str = described.get("precision_requested") or described.get("precision", "FP32")
    return precision


def _ladder_plot(series: dict[str, list[dict[str, Any]]]) -> str:
    """One colour per processor; each run's backend is a line through its precisions (FP32 first)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    figure, axes = plt.subplots(figsize=(7, 3.8))
    for index, (cpu, points) in enumerate(series.items()):
        rungs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for point in points:
            rungs.setdefault((point["run"], point["backend"]), []).append(point)
        longest = max(rungs.values(), key=len)
        for rung in rungs.values():
            rung.sort(key=lambda p: PRECISIONS.index(p["precision"]) if p["precision"] in PRECISIONS else 0)
            axes.plot(
                [p["median_ms"] for p in rung],
                [p["accuracy"] for p in rung],
                color=f"C{index}",
                marker="s" if rung[0]["backend"] == "tf" else "o",
                label=cpu[:40] if rung is longest else None,
            )
        for number, point in enumerate(points):  # OpenVINO's rungs by precision alone; alternate sides
            text = point["precision"] if point["backend"] == "openvino" else f"{point['backend']} {point['precision']}"
            axes.annotate(
                text,
                (point["median_ms"], point["accuracy"]),
                fontsize=7,
                xytext=(3, 3 if number % 2 else -9),
                textcoords="offset points",
            )
    axes.set_xscale("log")
    for axis in (axes.xaxis.set_major_formatter, axes.xaxis.set_minor_formatter):
        axis(FormatStrFormatter("%g"))
    axes.set_xlabel("median ms per call")
    axes.set_ylabel("accuracy (validation set)")
    if series:
        axes.legend(fontsize=7, title="processor", title_fontsize=7)
    return figure_png(figure)


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _nodes_table(documents: list[Document]) -> str:
    rows = [
        [
            d["run_id"],
            d["machine"]["cpu_brand"],
            d["machine"]["usable_cpus"],
            isa_summary(d["machine"]["isa_flags"], sep=" "),
            "; ".join(d["machine"].get("openvino_devices", {}).values()),
        ]
        for d in documents
    ]
    return html_table(["run", "CPU", "CPUs", "ISA", "OpenVINO devices"], rows)


def _parity_table(documents: list[Document]) -> str:
    rows = [
        [
            node_name(d),
            label,
            p["precision"],
            f"{p['max_abs_prob']:.1e}",
            f"{p['max_rel_logit']:.1e}",
            f"{p['top1_agreement']:.3f}",
            _optional(p.get("decisive_agreement"), "{:.3f}"),
            _optional(p.get("accuracy_ratio"), "{:.3f}"),
            _optional(p.get("mean_kl"), "{:.1e}"),
            ("yes" if p["within_tolerance"] else "NO: " + "; ".join(p.get("failures") or []))
            + "".join(f"; unchecked: {bound}" for bound in p.get("unchecked") or []),
        ]
        for d in documents
        for label, p in d["parity"].items()
    ]
    return html_table(
        [
            "node",
            "backend",
            "precision",
            "max |Δp|",
            "max rel Δlogit",
            "top-1",
            "decisive top-1",
            "accuracy ratio",
            "mean KL",
            "within",
        ],
        rows,
    )


def _optional(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


PAGE_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}img{max-width:100%}"
)
