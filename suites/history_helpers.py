"""Shared by the ``edgebench history`` suites (test_history_*.py): stored processor identities, pytest-benchmark
documents as the latency suite writes them, and series of per-run medians. Not a test module: pytest puts
suites/ on sys.path, so the suites import it by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from harness.gate.history_records import BENCH_KIND, MachineKey, Point
from harness.gate.history_trend import Series

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def identity(**changes) -> dict:
    """A stored processor identity (harness.measure.processor_identity's shape) with some fields changed."""
    machine = {
        "cpu_brand": "Intel(R) Xeon(R) Test",
        "arch": "x86_64",
        "logical_cpus": 2,
        "usable_cpus": 2,
        "isa_flags": ["avx", "avx2", "avx512f", "fma", "sse4_2"],
        "openvino_devices": {"CPU": "Intel Xeon Test"},
        "platform": "Linux",
        "python": "3.11.7",
        "packages": {"tensorflow-cpu": "2.21.0", "openvino": "2026.4.1", "numpy": "2.2.0"},
    }
    for name, value in changes.items():
        if name in ("openvino", "numpy", "tensorflow-cpu"):
            machine["packages"][name] = value
        else:
            machine[name] = value
    return machine


def benchmark_json(
    machine: dict, when: datetime, medians_ms: dict[str, float], samples: int = 20, seed: int = 0
) -> dict:
    """A pytest-benchmark document as the latency suite writes it (--benchmark-save-data): raw samples in
    seconds, extra_info with the backend's label, machine_info.edgebench the processor identity."""
    rng = np.random.default_rng(seed)
    benchmarks = []
    for label, median in medians_ms.items():
        data = (median / 1e3 * (1 + 0.01 * rng.standard_normal(samples))).tolist()
        benchmarks.append(
            {
                "group": "infer-batch1",
                "name": f"test_infer_latency_batch1[{label}]",
                "fullname": f"suites/test_latency.py::test_infer_latency_batch1[{label}]",
                "params": {"latency_case": label},
                "extra_info": {"label": label, "backend": label},
                "stats": {
                    "data": data,
                    "median": float(np.median(data)),
                    "rounds": samples,
                    "min": min(data),
                    "max": max(data),
                    "mean": float(np.mean(data)),
                },
            }
        )
    return {
        "machine_info": {"node": "n", "cpu": {"brand_raw": machine["cpu_brand"]}, "edgebench": machine},
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": when.isoformat(),
        "version": "5.1.0",
    }


def series_of(values, name: str = "openvino") -> Series:
    key = MachineKey.from_identity(identity())
    return Series(
        key,
        BENCH_KIND,
        name,
        tuple(T0 + timedelta(hours=i) for i in range(len(values))),
        tuple(f"run-{i}.json" for i in range(len(values))),
        tuple(Point(float(v), 100) for v in values),
    )


def write(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path
