"""The merge: read a run folder (``runs/<run-id>/<node-id>/``, downloaded or written by ``edgebench upload``;
it does not care how results arrived) into one summary: per node its ladder, parity and verdict, per
processor the ladder over its nodes, the tests not run, and the failed nodes with their reasons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import fileio
from harness.backends import PRECISIONS, result_label
from harness.errors import ConfigError
from harness.fleet.publish import FAILURE, MANIFEST, log_tail
from harness.fleet.results import NOT_A_MODEL, REFERENCE
from harness.measure import shown_isa

FLEET_SCHEMA = "edgebench.fleet/2"
VERDICTS = ("pass", "not run", "fail")  # per node; it passes only if everything ran and every check held


@dataclass
class MergedRun:
    run_id: str
    nodes: list[dict[str, Any]]  # report.json of each complete node
    failures: list[dict[str, Any]]  # node_id, reason, log_tail

    def to_json(self) -> dict[str, Any]:
        rows = [node_row(n) for n in self.nodes]
        rungs = ladder_rungs(rows)
        for row in rows:  # a rung another node ran and this one did not is visible on this node's row
            row["rungs_not_run"] = [label for label in rungs if label not in row["ladder"]]
            row["verdict"] = node_verdict(row)
        return {
            "schema": FLEET_SCHEMA,
            "run_id": self.run_id,
            "rungs": rungs,
            "processors": processor_rows(rows, rungs),
            "nodes": rows,
            "not_run": not_run_summary(rows),
            "failed": self.failures,
            "openvino_ok": sum(1 for row in rows if row["openvino_ok"]),
            "verdicts": {v: sum(1 for row in rows if row["verdict"] == v) for v in VERDICTS},
        }


def merge_run(run_dir: Path) -> MergedRun:
    """Read ``run_dir/<node-id>/``: complete nodes have a manifest whose files match; the rest are failed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder; pass s3://BUCKET/runs/<run-id>/ or a local copy")
    nodes, failures = [], []
    for node_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        try:
            if (node_dir / MANIFEST).is_file():
                nodes.append(_complete_node(node_dir))
            elif (node_dir / FAILURE).is_file():
                failure = fileio.read_json_file(node_dir / FAILURE)
                failures.append(
                    {
                        "node_id": node_dir.name,
                        "reason": failure.get("reason", "?"),
                        "log_tail": failure.get("log_tail") or log_tail(node_dir / "log.txt"),
                    }
                )
            else:
                failures.append(
                    {
                        "node_id": node_dir.name,
                        "reason": "incomplete: no manifest (the node did not finish publishing)",
                        "log_tail": log_tail(node_dir / "log.txt"),
                    }
                )
        except ConfigError as exc:
            failures.append({"node_id": node_dir.name, "reason": str(exc), "log_tail": ""})
    if not nodes and not failures:
        raise ConfigError(f"{run_dir}: no node folders in it; is this s3://BUCKET/runs/<run-id>/?")
    return MergedRun(run_dir.name, nodes, failures)


def _complete_node(node_dir: Path) -> dict[str, Any]:
    manifest = fileio.read_json_file(node_dir / MANIFEST)
    for name, entry in manifest.get("files", {}).items():
        path = node_dir / name
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            raise ConfigError(f"{node_dir.name}: {name} listed in the manifest is missing or truncated")
    document = fileio.read_json_file(node_dir / "report.json")
    document.setdefault("node_id", node_dir.name)
    return document


def node_ladder(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each backend x precision the node measured (the null backend is no rung): median latency, speedup over
    TF FP32 on this node, top-1 agreement with TF FP32 and parity verdict (candidates; None for TF itself),
    top-1 accuracy on the labelled parity images."""
    backends = document.get("backends", {})
    reference = backends.get(REFERENCE, {}).get("latency", {}).get("median_ms")
    ladder = {}
    for label, result in backends.items():
        describe = result.get("describe", {})
        if describe.get("backend") in NOT_A_MODEL:
            continue
        parity, median = result.get("parity") or {}, result["latency"]["median_ms"]
        ladder[label] = {
            "backend": describe.get("backend", label),
            "precision": result.get("precision") or describe.get("precision"),
            "median_ms": median,
            "speedup": reference / median if reference and median else None,
            "speedup_ci": (document.get("speedup_ci") or {}).get(label),
            "top1_agreement": parity.get("top1_agreement"),
            "accuracy": result.get("accuracy"),
            "within_tolerance": parity.get("within_tolerance") if result.get("parity") else None,
        }
    return ladder


def node_row(document: dict[str, Any]) -> dict[str, Any]:
    """One node: processor identity, its ladder, parity over every figure it published (the parity tests'
    and each rung's), and its test outcomes with passed, failed and not run apart (None: unknown)."""
    machine, ladder = document.get("machine", {}), node_ladder(document)
    verdicts = [(f.get("backend"), f.get("within_tolerance") is True) for f in document.get("parity", {}).values()]
    verdicts += [
        (rung["backend"], rung["within_tolerance"] is True)
        for rung in ladder.values()
        if rung["within_tolerance"] is not None
    ]
    openvino = [ok for backend, ok in verdicts if backend == "openvino"]
    tests = document.get("tests") or {}
    return {
        "node_id": document.get("node_id"),
        "cpu": machine.get("cpu_brand", "?"),
        "isa": shown_isa(machine.get("isa_flags", [])),
        "openvino_device": machine.get("openvino_devices", {}).get("CPU", ""),
        "ladder": ladder,
        "parity_ok": all(ok for _, ok in verdicts) if verdicts else None,
        "openvino_ok": result_label("openvino", "FP32") in ladder and bool(openvino) and all(openvino),
        "tests": {
            "passed": tests.get("passed"),
            "failed": tests.get("failed"),
            "not_run": tests.get("not_run", tests.get("skipped")),
        },
        "not_run_tests": document.get("not_run_tests", []),
    }


def node_verdict(row: dict[str, Any]) -> str:
    """One of VERDICTS. Fail: a check out of tolerance or a failed test. Pass: no test failed, every rung the
    fleet measured ran here, and parity was measured and held. Not run: anything else (a missing rung, no
    parity figure, unknown outcomes): never passing by absence. Tests a node skips for what its processor
    lacks (FP16 on a CPU without it, a runtime with no wheel) are counted and listed as not run beside the
    verdict; demoting every such node would make "pass" unreachable on most processors."""
    tests = row["tests"]
    if row["parity_ok"] is False or tests["failed"]:
        return "fail"
    ran_everything = tests["passed"] is not None and not row["rungs_not_run"]
    return "pass" if ran_everything and row["parity_ok"] else "not run"


def ladder_rungs(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every rung any node measured, in ladder order (TF FP32 first, then each backend by precision)."""
    rungs = {
        label: {"backend": r["backend"], "precision": r["precision"]}
        for row in rows
        for label, r in row["ladder"].items()
    }
    order = {p: i for i, p in enumerate(PRECISIONS)}
    return dict(
        sorted(
            rungs.items(),
            key=lambda item: (
                item[0] != REFERENCE,
                item[1]["backend"],
                order.get(item[1]["precision"], len(order)),
                item[0],
            ),
        )
    )


def processor_rows(rows: list[dict[str, Any]], rungs: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Node rows grouped by CPU brand: ISA, OpenVINO device name, node verdicts, tests not run, and the
    precision ladder over the group's nodes (a rung no node of the group ran shows 0 nodes)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["cpu"], []).append(row)
    return [
        {
            "cpu": cpu,
            "nodes": len(members),
            "isa": members[0]["isa"],
            "openvino_device": members[0]["openvino_device"],
            "parity_ok": _all_ok(m["parity_ok"] for m in members),
            "verdicts": {v: sum(1 for m in members if m["verdict"] == v) for v in VERDICTS},
            "not_run": sum(m["tests"]["not_run"] or 0 for m in members),
            "ladder": [_rung(label, rung, members) for label, rung in rungs.items()],
        }
        for cpu, members in sorted(groups.items())
    ]


def _rung(label: str, rung: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    """One rung over a processor's nodes: medians of latency and speedup, the worst node's top-1 agreement
    and accuracy, and how many of the nodes that ran it held parity."""
    ran = [m["ladder"][label] for m in members if label in m["ladder"]]
    judged = [r["within_tolerance"] for r in ran if r["within_tolerance"] is not None]
    return {
        "label": label,
        **rung,
        "nodes_ran": len(ran),
        "median_ms": _median_of(ran, "median_ms"),
        "speedup": _median_of(ran, "speedup"),
        "top1_agreement": _min_of(ran, "top1_agreement"),
        "accuracy": _min_of(ran, "accuracy"),
        "within_tolerance": sum(judged),
        "judged": len(judged),
    }


def not_run_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tests not run, by test and reason, with how many nodes did not run them (most first)."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        for item in row["not_run_tests"]:
            key = (item.get("test", "?"), item.get("reason", ""))
            counts[key] = counts.get(key, 0) + 1
    return [
        {"test": test, "reason": reason, "nodes": n}
        for (test, reason), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _all_ok(values: Iterable[bool | None]) -> bool | None:
    """False if any is False, None if any is unknown, True only if every one is True."""
    values = list(values)
    return False if False in values else (None if None in values or not values else True)


def _median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return float(np.median(values)) if values else None


def _min_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return min(values) if values else None
