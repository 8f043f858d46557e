"""Timing of ``Backend.infer`` only (inputs preprocessed beforehand), and the processor's identity."""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from harness.backends import Backend
from harness.numeric import FloatArray

# ISA flags that decide which kernels TF and OpenVINO pick (py-cpuinfo spellings).
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
# The subset shown to people (tables, captions, the fleet report): what separates the precisions' kernels.
ISA_SHOWN = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile")
PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "openvino", "numpy", "pillow", "boto3", "moto", "nncf")


def shown_isa(flags: Iterable[str]) -> list[str]:
    """The recorded flags a reader is shown (``ISA_SHOWN``), in the recorded order."""
    return [flag for flag in flags if flag in ISA_SHOWN]


def isa_summary(flags: Iterable[str], sep: str = ", ") -> str:
    """``shown_isa`` as one string; "no AVX2" when none of them is there."""
    return sep.join(shown_isa(flags)) or "no AVX2"


@dataclass(frozen=True)
class TimingPlan:
    """Stop rule: at least ``min_calls`` timed calls AND at least ``min_seconds`` of them, after warm-up."""

    warmup: int = 5
    min_calls: int = field(default=30, metadata={"help": "timed infer calls per backend, at least"})
    min_seconds: float = 1.0
    max_calls: int = 10_000


@dataclass(frozen=True)
class LatencyStats:
    samples_ns: tuple[int, ...]
    first_call_ms: float

    @property
    def samples_ms(self) -> FloatArray:
        return np.asarray(self.samples_ns, dtype=np.float64) / 1e6

    def summary(self) -> dict[str, float]:
        ms = self.samples_ms
        return {
            "n": int(ms.size),
            "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(ms.mean()),
            "min_ms": float(ms.min()),
            "max_ms": float(ms.max()),
            "stdev_ms": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            "first_call_ms": self.first_call_ms,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "samples_ns": list(self.samples_ns)}


def time_infer(backend: Backend, batch: FloatArray, plan: TimingPlan = TimingPlan()) -> LatencyStats:
    """Time back-to-back ``infer`` calls (pauses between calls inflate OpenVINO latency). The first call
    is timed apart: it includes lazy initialisation that steady-state numbers must not."""
    clock = time.perf_counter_ns
    start = clock()
    backend.infer(batch)
    first_call_ms = (clock() - start) / 1e6
    for _ in range(plan.warmup):
        backend.infer(batch)
    samples: list[int] = []
    budget_end = clock() + int(plan.min_seconds * 1e9)
    while len(samples) < plan.max_calls and (len(samples) < plan.min_calls or clock() < budget_end):
        start = clock()
        backend.infer(batch)
        samples.append(clock() - start)
    return LatencyStats(tuple(samples), first_call_ms)


@functools.cache
def processor_identity() -> dict[str, Any]:
    """CPU brand, core counts, ISA flags, OpenVINO device names and package versions of this node."""
    import cpuinfo

    info = cpuinfo.get_cpu_info()
    flags = set(info.get("flags", []))
    return {
        "cpu_brand": info.get("brand_raw", platform.processor() or "unknown"),
        "arch": info.get("arch_string_raw", platform.machine()),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa_flags": sorted(flag for flag in ISA_FLAGS if flag in flags),
        "openvino_devices": _openvino_devices(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES if _version(name)},
    }


def _openvino_devices() -> dict[str, str]:
    try:
        import openvino as ov
    except ImportError:
        return {}
    core = ov.Core()
    return {device: str(core.get_property(device, "FULL_DEVICE_NAME")) for device in core.available_devices}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""
