"""Run output: the ``report.json`` schema (written atomically by ``harness.fileio``) and the terminal summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from harness.errors import ConfigError, ParityError
from harness.fileio import read_json
from harness.measure import isa_summary
from harness.plan import REFERENCE, is_candidate

RUN_SCHEMA = "edgebench.run/2"  # /2: parity gained relative-logit and top-5 figures


def read_run_report(path: Path) -> dict[str, Any]:
    document = read_json(path, problem="not a readable report", hint="pass the report.json an edgebench run wrote")
    if not isinstance(document, dict) or document.get("schema") != RUN_SCHEMA:
        raise ConfigError(
            f"{path}: not an edgebench run report (no schema {RUN_SCHEMA!r}); pass reports/<run-id>/report.json"
        )
    return document


def speedups(document: dict[str, Any], reference: str = "tf") -> dict[str, float]:
    """reference median latency ÷ backend median latency, per backend (> 1 means faster than reference)."""
    backends = document["backends"]
    if reference not in backends:
        return {}
    base = backends[reference]["latency"]["median_ms"]
    return {name: base / result["latency"]["median_ms"] for name, result in backends.items()}


def check_parity(document: dict[str, Any]) -> dict[str, list[str]]:
    """Each candidate (every backend but the reference and ``null``) must have a parity verdict: a
    ParityError names those without one. Returns the candidates outside tolerance -> the bounds they break."""
    candidates = [
        label
        for label, result in document["backends"].items()
        if is_candidate(result["describe"].get("backend", label))
    ]
    verdicts = document.get("parity") or {}
    missing = [label for label in candidates if label not in verdicts]
    if missing:
        why = "the TF FP32 reference did not run" if REFERENCE not in document["backends"] else "none recorded"
        raise ParityError(
            f"no parity verdict for {', '.join(missing)} ({why}): its results are unchecked; re-run "
            f"`edgebench run`, which runs the reference beside every candidate"
        )
    return {
        label: list(verdicts[label].get("failures") or ["outside tolerance"])
        for label in candidates
        if not verdicts[label]["within_tolerance"]
    }


def unchecked_bounds(document: dict[str, Any]) -> dict[str, list[str]]:
    """Candidates with bounds their images could not test (``ParityResult.unchecked``) -> those bounds."""
    return {label: v["unchecked"] for label, v in (document.get("parity") or {}).items() if v.get("unchecked")}


def summary_table(document: dict[str, Any], reference: str = "tf") -> Table:
    machine = document["machine"]
    devices = "; ".join(f"{k}: {v}" for k, v in machine.get("openvino_devices", {}).items())
    table = Table(
        title=f"edgebench {document['run_id']}",
        caption=f"{machine['cpu_brand']}, "
        f"{machine['usable_cpus']} CPUs, {isa_summary(machine['isa_flags'])}"
        + (f" | OpenVINO {devices}" if devices else ""),
    )
    table.add_column("backend", no_wrap=True, min_width=13)
    for column in (
        "device",
        "prec.",
        "median ms",
        "p90 ms",
        "n",
        "speedup",
        "acc.",
        "val. acc.",
        "max|Δp|",
        "top-1",
        "ops",
    ):
        table.add_column(column, justify="right")
    stored = document.get("speedup")  # older reports have none: computed from their medians
    ratios = speedups(document, reference) if stored is None else {reference: 1.0, **stored}
    validation = (document.get("validation") or {}).get("accuracy", {})
    for name, result in document["backends"].items():
        described, latency = result["describe"], result["latency"]
        check = document["parity"].get(name)
        table.add_row(
            name,
            described["device"],
            described["precision"],
            f"{latency['median_ms']:.2f}",
            f"{latency['p90_ms']:.2f}",
            str(latency["n"]),
            f"{ratios[name]:.2f}×" if name in ratios else "–",
            _fraction(document["accuracy"].get(name)),
            _fraction(validation.get(name)),
            *(
                _parity_cell(check, key, fmt, name == reference)
                for key, fmt in (("max_abs_prob", "{:.0e}"), ("top1_agreement", "{:.2f}"))
            ),
            ops_cell(described),
        )
    return table


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def ops_cell(described: dict[str, Any]) -> str:
    """Where ops run: TF graph ops; for OpenVINO converted ops -> executed layers, and how many run in INT8."""
    if "graph_ops" in described:
        return f"{described['graph_ops']} TF"
    layers = described.get("runtime_layers")
    if not layers:
        return "–"
    int8 = layers["by_precision"].get("i8", 0) + layers["by_precision"].get("u8", 0)
    return f"{described['ops_converted']}→{layers['count']}" + (f" ({int8} int8)" if int8 else "")


def _parity_cell(check: dict[str, Any] | None, key: str, fmt: str, is_reference: bool) -> str:
    if check is None:
        return "ref" if is_reference else "–"
    mark = "" if check["within_tolerance"] else " [red]✗[/red]"
    return fmt.format(check[key]) + mark
