"""A node's results, summarised where they were measured: the node report the pytest plugin writes
(``node_summary``), and ``report.json`` as published (``complete_report``: that summary plus latency per
backend x precision from the pytest-benchmark JSON, read from the structured ``extra_info`` fields, and
speedup intervals)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness import fileio, plan
from harness.backends import result_label

NODE_SCHEMA = "edgebench.node/2"
REFERENCE = result_label(plan.REFERENCE, plan.REFERENCE_PRECISION)  # the ladder's bottom rung: stock TF at FP32
NOT_A_MODEL = ("null",)  # backends that compute nothing (the harness's own cost): no rung of the ladder
MIN_CI_SAMPLES = 10  # raw latency samples per side below which a node's speedup gets no interval (as the gate)


def node_summary(
    processor: dict[str, Any],
    parity: list[dict[str, Any]],
    outcomes: Mapping[str, list[dict[str, Any]]],
    exitstatus: int,
) -> dict[str, Any]:
    """What the pytest plugin writes with --edgebench-node-report: the part of report.json pytest knows.

    ``parity``: the figures parity tests recorded (``ParityResult.to_json()`` plus ``backend``, ``precision``
    and ``case``, an opaque id). ``outcomes``: ``passed``/``failed``/``skipped`` -> ``[{"test", "reason"}]``.
    A skipped test is published as not run, with its reason: never counted with the passed ones."""
    failed, not_run = list(outcomes.get("failed", [])), list(outcomes.get("skipped", []))
    return {
        "schema": NODE_SCHEMA,
        "machine": processor,
        "exitstatus": exitstatus,
        "parity": {str(figure.get("case", index)): figure for index, figure in enumerate(parity)},
        "tests": {"passed": len(outcomes.get("passed", [])), "failed": len(failed), "not_run": len(not_run)},
        "failed_tests": failed,
        "not_run_tests": not_run,
    }


def complete_report(files: Mapping[str, Path], run_id: str, node_id: str, out: Path, **extra: Any) -> Path:
    """report.json as published: the pytest summary (if any) plus latency from benchmark.json, node and run.
    Without the pytest summary the test outcomes are unknown (``tests`` is empty), not zero failures."""
    summary = (
        fileio.read_json_file(files["report.json"])
        if "report.json" in files
        else {**node_summary({}, [], {}, 0), "tests": {}}
    )
    benchmark = fileio.read_json_file(files["benchmark.json"])
    if not summary.get("machine"):
        summary["machine"] = (benchmark.get("machine_info") or {}).get("edgebench") or {}
    results = node_results(benchmark)
    summary.update(
        {**results, "speedup_ci": speedup_intervals(results["backends"]), "node_id": node_id, "run_id": run_id, **extra}
    )
    return fileio.write_json(out, summary)


def speedup_intervals(backends: Mapping[str, dict[str, Any]], confidence: float = 0.95) -> dict[str, list[float]]:
    """Per rung, the percentile-bootstrap interval of its speedup over TF FP32 on this node (TF median ÷ rung
    median, each side's raw samples resampled on their own; the gate's statistics). Computed once where the
    samples are, so a merge of many nodes reads intervals instead of bootstrapping. Rungs with fewer than
    ``MIN_CI_SAMPLES`` samples on either side get none."""
    from harness.gate import median_ratio_ci

    reference = np.asarray(backends.get(REFERENCE, {}).get("latency", {}).get("samples_ns") or [], dtype=float)
    intervals = {}
    for label, result in backends.items():
        samples = np.asarray(result["latency"].get("samples_ns") or [], dtype=float)
        if (
            label == REFERENCE
            or result["describe"].get("backend") in NOT_A_MODEL
            or min(reference.size, samples.size) < MIN_CI_SAMPLES
        ):
            continue
        intervals[label] = list(median_ratio_ci(samples, reference, confidence))  # median(TF) / median(rung)
    return intervals


def node_results(benchmark: dict[str, Any]) -> dict[str, Any]:
    """Latency per backend x precision from a pytest-benchmark JSON, keyed by the ``label`` the latency
    benchmark puts in ``extra_info`` (``result_label(backend, precision)``; older files, which measured each
    backend at FP32 only: the ``backend`` field). Only ``extra_info`` is read, never a test's name or
    parameters. Each label keeps the backend's ``describe``, the ``precision`` in effect, the top-1
    ``accuracy`` on the labelled parity images, ``parity`` against TF FP32 (candidates) and ``latency`` in ms
    with the raw samples, as in the run report's ``backends``."""
    backends, throughput = {}, {}
    for bench in benchmark.get("benchmarks", []):
        info = dict(bench.get("extra_info") or {})
        label = info.pop("label", None) or info.get("backend")
        if not label:
            continue
        if "images_per_second" in info:
            throughput[label] = info["images_per_second"]
            continue
        accuracy, parity = info.pop("accuracy", None), info.pop("parity", None)
        backends[label] = {
            "describe": {**info, "backend": info.get("backend", label)},
            "precision": info.get("precision"),
            "accuracy": accuracy,
            "parity": parity,
            "latency": _latency(bench["stats"]),
        }
    return {"backends": backends, "throughput_images_per_s": throughput}


def _latency(stats: dict[str, Any]) -> dict[str, Any]:
    samples = stats.get("data") or []
    return {
        "n": len(samples) or stats["rounds"],
        "median_ms": stats["median"] * 1e3,
        "p90_ms": float(np.percentile(samples, 90)) * 1e3 if samples else stats["max"] * 1e3,
        "min_ms": stats["min"] * 1e3,
        "mean_ms": stats["mean"] * 1e3,
        "samples_ns": [round(s * 1e9) for s in samples],
    }
