"""The merged fleet summary presented: ``fleet-report.json`` and ``report.html`` (``write_merged``), the
headline, and the tables the terminal and the HTML page share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import fileio
from harness.fleet.merge import VERDICTS, MergedRun
from harness.fleet.results import REFERENCE


def write_merged(merged: MergedRun, out_dir: Path) -> tuple[Path, Path]:
    """``fleet-report.json`` and ``report.html`` in ``out_dir``."""
    from harness.fleet.html_report import render_fleet_html

    summary = merged.to_json()
    json_path = fileio.write_json(out_dir / "fleet-report.json", summary)
    return json_path, render_fleet_html(summary, out_dir / "report.html")


def openvino_headline(summary: dict[str, Any]) -> str:
    """The seed's count, read from results instead of logs: nodes that ran OpenVINO FP32 with every OpenVINO
    parity check held, out of every node of the run (failed ones included)."""
    total = len(summary["nodes"]) + len(summary["failed"])
    return f"{summary['openvino_ok']} out of {total} nodes ran on OpenVINO"


def headline(summary: dict[str, Any]) -> str:
    verdicts = summary["verdicts"]
    return (
        f"{openvino_headline(summary)} (FP32 measured, every OpenVINO parity check held). "
        f"{len(summary['nodes'])} node(s) complete: {verdicts['pass']} passed, {verdicts['not run']} with tests "
        f"not run, {verdicts['fail']} failing; {len(summary['failed'])} failed to finish"
    )


PROCESSOR_HEADER = ("CPU", "nodes", "ISA", "OpenVINO CPU device", "parity", "node verdicts", "tests not run")
LADDER_HEADER = (
    "CPU",
    "rung",
    "in effect",
    "nodes ran",
    "median ms",
    "× TF FP32",
    "top-1 vs TF (worst node)",
    "accuracy (worst node)",
    "within tolerance",
)
NODE_HEADER = ("node", "CPU", "verdict", "rungs run", "rungs not run", "parity", "passed", "failed", "not run")
NOT_RUN_HEADER = ("test", "reason", "nodes")


def report_tables(summary: dict[str, Any]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The fleet report's tables as (header, rows of text), shared by the terminal and the HTML renderers."""
    processors = summary["processors"]
    return {
        "Per processor": (list(PROCESSOR_HEADER), [_processor_row(p) for p in processors]),
        "Precision ladder": (list(LADDER_HEADER), [_ladder_row(p, r) for p in processors for r in p["ladder"]]),
        "Per node": (list(NODE_HEADER), [_node_row(r) for r in summary["nodes"]]),
        "Not run": (
            list(NOT_RUN_HEADER),
            [[item["test"], item["reason"], str(item["nodes"])] for item in summary["not_run"]],
        ),
    }


def _processor_row(p: dict[str, Any]) -> list[str]:
    return [
        p["cpu"],
        str(p["nodes"]),
        " ".join(p["isa"]),
        p["openvino_device"],
        _ok(p["parity_ok"]),
        " / ".join(f"{p['verdicts'][v]} {v}" for v in VERDICTS),
        str(p["not_run"]),
    ]


def _ladder_row(p: dict[str, Any], r: dict[str, Any]) -> list[str]:
    """One rung of one processor's precision ladder."""
    return [
        p["cpu"],
        r["label"],
        r["precision"] or "?",
        f"{r['nodes_ran']}/{p['nodes']}",
        _fmt(r["median_ms"]),
        _times(r["speedup"]),
        "reference" if r["label"] == REFERENCE else _fraction(r["top1_agreement"]),
        _fraction(r["accuracy"]),
        f"{r['within_tolerance']}/{r['judged']}" if r["judged"] else "–",
    ]


def _node_row(r: dict[str, Any]) -> list[str]:
    return [
        r["node_id"],
        r["cpu"],
        r["verdict"],
        " ".join(r["ladder"]),
        " ".join(r["rungs_not_run"]) or "–",
        _ok(r["parity_ok"]),
        *(_count(r["tests"][k]) for k in ("passed", "failed", "not_run")),
    ]


def fleet_table(merged: MergedRun, not_run_rows: int = 10) -> Any:
    """The terminal summary: per processor, the precision ladder, and the most common tests not run."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = merged.to_json()
    tables = []
    for title, (header, rows) in report_tables(summary).items():
        if title == "Per node" or not rows:
            continue
        shown = rows[:not_run_rows] if title == "Not run" else rows
        more = f" (the {len(shown)} most common of {len(rows)})" if len(shown) < len(rows) else ""
        table = Table(title=f"{title}{more}", title_justify="left")
        for column in header:
            table.add_column(column, overflow="fold", no_wrap=column == "rung")
        for row in shown:
            table.add_row(*map(Text, row))  # plain text: test ids hold brackets rich would read as markup
        tables.append(table)
    return Group(Text(f"edgebench fleet {merged.run_id}: {headline(summary)}"), *tables)


def _ok(value: bool | None) -> str:
    return {True: "within tolerance", False: "OUT OF TOLERANCE", None: "not measured"}[value]


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
