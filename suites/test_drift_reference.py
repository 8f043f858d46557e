"""Which reference workload tracks this machine's speed best: the measurement behind
:data:`harness.gate.drift.REFERENCE`.

Each job is a fresh process (started ``--edgebench-gate-spacing`` seconds after the previous one began) that
loads the suite model on OpenVINO (FP32, batch 1, LATENCY) and every candidate reference (the
:data:`harness.gate.drift.CANDIDATES` and TF running the same model on the same input), then measures them turn
by turn (a block of 5 calls each after one untimed call, the order rotating every turn) for a few seconds.
Printed per candidate, over all turns of all jobs: the correlation of the log block medians with the
model's (does it move when the model moves, within and between jobs), the spread (robust CV, 1.4826 × MAD
of the log) of the per-turn model/reference ratio, and the spread across jobs of the per-job median ratio
next to that of the model's own per-job median (what the stored-baseline gate suffers from). The asserts
hold the measurement, not the machine: every job measured every candidate (3 turns at least).

``pytest -m slow suites/test_drift_reference.py -p no:xdist -s`` (``--edgebench-gate-runs N`` jobs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.gate import drift

pytestmark = [pytest.mark.latency, pytest.mark.slow]

SECONDS_PER_JOB = 6.0
BLOCK = 5


@pytest.mark.slow
def test_reference_candidates_track_the_machine(suite_artifact, pytestconfig, tmp_path, record_property):
    jobs = max(3, pytestconfig.getoption("edgebench_gate_runs") // 2)
    spacing = pytestconfig.getoption("edgebench_gate_spacing")
    results = []
    for job in range(jobs):
        started = time.monotonic()
        out = tmp_path / f"job{job}.json"
        root = Path(__file__).resolve().parent.parent  # this checkout's harness, not an installed one
        subprocess.run(
            [sys.executable, __file__, str(suite_artifact[0]), str(out), str(SECONDS_PER_JOB)],
            check=True,
            timeout=600,
            cwd=root,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
                "TF_CPP_MIN_LOG_LEVEL": "2",
            },
        )
        results.append(json.loads(out.read_text()))
        time.sleep(max(0.0, spacing - (time.monotonic() - started)) if job < jobs - 1 else 0)
    figures = reference_figures(results)
    lines = [
        (
            f"reference candidates over {jobs} fresh jobs ({spacing:.0f} s apart, {SECONDS_PER_JOB:.0f} s each); "
            f"model per-job median spread (robust CV) {figures['model']['job_cv']:.1%}"
        )
    ]
    for name, f in figures.items():
        if name != "model":
            lines.append(
                f"  {name}: corr(log turn medians) {f['corr']:.2f}, per-turn ratio CV {f['turn_cv']:.1%}, "
                f"per-job median ratio CV {f['job_cv']:.1%}, median {f['median_ms']:.2f} ms"
            )
    record_property("edgebench_figure", "\n".join(lines))
    print("\n".join(lines))
    # every job measured every workload (a loaded machine gives few turns: the figures pool them all)
    assert all(len(blocks) >= 3 for r in results for blocks in r["blocks"].values()), [
        {name: len(blocks) for name, blocks in r["blocks"].items()} for r in results
    ]
    assert set(figures) == {"model", "tf", *drift.CANDIDATES}


def reference_figures(results: list[dict]) -> dict[str, dict[str, float]]:
    """Per workload: correlation with the model's log turn medians, robust CV of per-turn and per-job ratios."""

    def robust_cv(log_values: np.ndarray) -> float:
        return float(1.4826 * np.median(np.abs(log_values - np.median(log_values))))

    names = list(results[0]["blocks"])
    medians = {n: [np.median(np.asarray(r["blocks"][n], dtype=float), axis=1) for r in results] for n in names}
    model_log = np.log(np.concatenate(medians["model"]))
    job_model = np.log([np.median(m) for m in medians["model"]])
    figures = {"model": {"job_cv": robust_cv(job_model)}}
    for name in names:
        if name == "model":
            continue
        ref_log = np.log(np.concatenate(medians[name]))
        per_job = np.log([np.median(m / r) for m, r in zip(medians["model"], medians[name], strict=True)])
        figures[name] = {
            "corr": float(np.corrcoef(model_log, ref_log)[0, 1]),
            "turn_cv": robust_cv(model_log - ref_log),
            "job_cv": robust_cv(per_job),
            "median_ms": float(np.exp(np.median(ref_log)) / 1e6),
        }
    return figures


def _job(artifact: Path, out: Path, seconds: float) -> None:
    """One fresh process: the model and every candidate, turn by turn, blocks of raw ns per workload."""
    import tempfile

    from harness import data, edge
    from harness.backends import BackendConfig, load_backend

    with tempfile.TemporaryDirectory() as tmp:
        model = edge.import_local(artifact, Path(tmp) / "edge")
        batch = np.ascontiguousarray(data.to_tensor(data.generated_image("sunny", seed=0))[None])
        config = BackendConfig("CPU", "FP32", batch=1)
        ov_backend = load_backend("openvino", model, config)
        tf_backend = load_backend("tf", model, config)
        workloads = {"model": lambda: ov_backend.infer(batch), "tf": lambda: tf_backend.infer(batch)}
        for name in drift.CANDIDATES:
            workloads[name] = drift.make_reference(name).run
        for fn in workloads.values():
            for _ in range(10):
                fn()
        blocks: dict[str, list[list[int]]] = {name: [] for name in workloads}
        names = list(workloads)
        end, turn = time.perf_counter() + seconds, 0
        while time.perf_counter() < end:
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                blocks[name].append(drift.time_block(workloads[name], BLOCK))
            turn += 1
    out.write_text(json.dumps({"blocks": blocks}))


if __name__ == "__main__":
    _job(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
