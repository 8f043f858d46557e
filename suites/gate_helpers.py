"""Shared by the gate suites (test_gate_*.py): latency-like synthetic samples and the gate's input files
(pytest-benchmark JSON, edgebench run reports). Not a test module: pytest puts suites/ on sys.path, so the
suites import it by name."""

from __future__ import annotations

import json

import numpy as np

from harness.report import RUN_SCHEMA

CPU = "Intel(R) Xeon(R) Processor"


def latency(
    rng: np.random.Generator,
    n: int,
    factor: float = 1.0,
    sigma: float = 0.06,
    spikes: float = 0.02,
    median_s: float = 0.010,
) -> np.ndarray:
    """Latency-like noise: a lognormal body and a few 1.5–3× spikes (preemption, GC, page faults)."""
    samples = median_s * factor * rng.lognormal(0.0, sigma, n)
    hit = rng.random(n) < spikes
    samples[hit] *= rng.uniform(1.5, 3.0, int(hit.sum()))
    return samples


def write_pytest_benchmark(path, benchmarks: dict, cpu: str | None = CPU, edgebench_cpu: str | None = None):
    """A --benchmark-json file as pytest-benchmark 5 writes it (with --benchmark-save-data); None: no data."""
    machine_info = {"node": "ci", "machine": "x86_64", "python_version": "3.11.7", "system": "Linux"}
    if cpu is not None:
        machine_info["cpu"] = {"arch": "X86_64", "count": 2, "brand_raw": cpu, "vendor_id_raw": "GenuineIntel"}
    if edgebench_cpu is not None:
        machine_info["edgebench"] = {"cpu_brand": edgebench_cpu, "usable_cpus": 2, "isa_flags": ["avx2"]}
    entries = []
    for fullname, data in benchmarks.items():
        name = fullname.split("::")[-1]
        param = name[name.index("[") + 1 : -1]
        stats = {"rounds": 0 if data is None else len(data), "iterations": 1}
        if data is not None:
            stats.update(
                min=float(np.min(data)),
                max=float(np.max(data)),
                mean=float(np.mean(data)),
                median=float(np.median(data)),
                data=[float(x) for x in data],
            )
        entries.append(
            {
                "group": "infer-batch1",
                "name": name,
                "fullname": fullname,
                "params": {"name": param},
                "param": param,
                "extra_info": {"backend": param, "device": "CPU", "precision": "FP32"},
                "options": {"timer": "perf_counter", "min_rounds": 5, "warmup": False},
                "stats": stats,
            }
        )
    path.write_text(
        json.dumps(
            {
                "machine_info": machine_info,
                "commit_info": {"id": "abc"},
                "benchmarks": entries,
                "datetime": "2026-11-25T14:21:43",
                "version": "5.1.0",
            }
        )
    )
    return path


def write_run_report(run_dir, backends: dict, cpu: str = CPU, samples: bool = True):
    """reports/<run-id>/report.json as edgebench run writes it (latency.samples_ns in nanoseconds)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    latency_of = {}
    for label, seconds in backends.items():
        ns = np.round(np.asarray(seconds) * 1e9).astype(int)
        latency_of[label] = {
            "n": len(ns),
            "median_ms": float(np.median(ns)) / 1e6,
            "p90_ms": 0.0,
            **({"samples_ns": ns.tolist()} if samples else {}),
        }
    document = {
        "schema": RUN_SCHEMA,
        "run_id": run_dir.name,
        "machine": {"cpu_brand": cpu, "usable_cpus": 2, "isa_flags": ["avx2"]},
        "backends": {
            label: {"describe": {"backend": label, "device": "CPU", "precision": "FP32"}, "latency": latency_of[label]}
            for label in backends
        },
        "parity": {},
        "accuracy": {},
    }
    (run_dir / "report.json").write_text(json.dumps(document))
    return run_dir


BENCH = "suites/test_latency.py::test_infer_latency_batch1"
TF, OV, OLD, NEW = (f"{BENCH}[{backend}]" for backend in ("tf", "openvino", "ovtf", "null"))
