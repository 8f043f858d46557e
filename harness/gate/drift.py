"""Drift compensation: a fixed reference workload timed interleaved with the model, and the stored series.

A shared VM switches between speed regimes (here the same model ran at 3.8 ms or 5.7 ms per call from one
minute to the next), so two separate jobs' raw latencies differ by far more than a real regression. Each
latency benchmark therefore also times a *reference workload* that never changes (:data:`REFERENCE`), turn
by turn with the model's calls, in the same process and on the same threads. The model's time relative to
the reference, per turn, is what the stored-baseline gate compares: a regime that slows everything by 30 %
moves both and cancels; a slowdown of the model alone does not.

Which reference: measured (``pytest -m slow suites/test_drift_reference.py``, README "Drift
compensation") by how well each candidate's per-turn time tracks the model's and how much the per-job
median model/reference ratio still varies across fresh processes. The chosen one, ``ov-convnet``, is a
fixed small OpenVINO network (MobileNet-like: a strided convolution, depthwise and pointwise convolutions,
a pooled dense head; weights from a fixed seed) compiled with the same device, hint and precision as the
model, so it runs the same oneDNN kernels on the same OpenVINO CPU threads. The other candidates are kept
for the measurement: ``ov-convnet-224`` (the same kind of network at MobileNetV2's input size, about the
suite model's time per call), ``ov-matmul`` (one fixed 384×384 MatMul in OpenVINO: compute-bound oneDNN) and
``numpy-matmul`` (a 128×128 matmul through numpy's BLAS, its own threads).

Stored field (the data format :mod:`harness.gate` and ``edgebench history`` read). Each latency benchmark
of ``suites/test_latency.py`` stores, in pytest-benchmark's ``extra_info`` under :data:`FIELD`
(``"edgebench_drift"``)::

    {
      "schema": "edgebench.drift/1",
      "reference": {"name": "ov-convnet", "device": "CPU", "precision": "FP32", ...},  # describe()
      "model_ns":     [[t, ...], ...],   # per turn: the model's timed calls, nanoseconds
      "reference_ns": [[t, ...], ...]    # per turn: the reference's timed calls, nanoseconds
    }

Both lists have one entry per turn, in the order measured; a turn is a block of the model's calls and a
block of the reference's calls back to back (the order alternates turn by turn). The compensated series is
``median(model_ns[i]) / median(reference_ns[i])`` per turn (:func:`compensated_series`); the benchmark's
``stats.data`` still holds the model's raw per-call seconds, so uncompensated tools keep working. The same
series are written by ``edgebench ab --json``: ``blocks_s`` holds, beside BASE and NEW, a
``"reference:<name>"`` entry (seconds per call, one block per turn).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.numeric import FloatArray

FIELD = "edgebench_drift"
SCHEMA = "edgebench.drift/1"
REFERENCE = "ov-convnet"  # the chosen reference (see the module docstring for the measurement)
CANDIDATES = ("ov-convnet", "ov-convnet-224", "ov-matmul", "numpy-matmul")
_SEED = 20261125  # fixed weights: the reference is the same network in every job, on every checkout


class Reference:
    """A fixed workload: ``run()`` does one unit of work (about a millisecond or two on a 2-core VM)."""

    name: str

    def run(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class _OpenVINOReference(Reference):
    def __init__(self, name: str, model: Any, device: str, precision: str, hint: str) -> None:
        import openvino as ov

        from harness.backends.openvino import PRECISION_TYPES

        core = ov.Core()
        config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": PRECISION_TYPES.get(precision, "f32")}
        self.name, self.device, self.precision, self.hint = name, device, precision, hint
        self._compiled = core.compile_model(model, device, config)
        self._request = self._compiled.create_infer_request()
        shape = [int(d) for d in model.input(0).get_shape()]
        self._input = np.random.default_rng(_SEED).random(shape, dtype=np.float32)

    def run(self) -> None:
        self._request.infer(self._input, share_inputs=True)

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        return {
            "name": self.name,
            "runtime": "openvino",
            "version": ov.get_version(),
            "device": self.device,
            "precision": self.precision,
            "hint": self.hint,
            "inference_threads": str(self._compiled.get_property("INFERENCE_NUM_THREADS")),
        }


CONVNET_BLOCKS = {  # input side -> (output channels, stride) of each depthwise + pointwise block
    112: ((64, 1), (128, 2), (128, 1), (256, 2)),
    # MobileNetV2's input and strides, channels up to 512: about the suite model's time per call (3 ms here)
    224: ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)),
}


def _convnet(side: int = 112) -> Any:
    """MobileNet-like, NHWC float input 1×side×side×3: conv 3×3/2 (32), then depthwise 3×3 + pointwise blocks
    (:data:`CONVNET_BLOCKS`), global average, dense (10). Fixed weights."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(_SEED)

    def weights(*shape: int) -> Any:
        return ops.constant((rng.standard_normal(shape) * 0.1).astype(np.float32))

    image = ops.parameter([1, side, side, 3], np.float32, name="image")
    x = ops.transpose(image, ops.constant(np.array([0, 3, 1, 2], dtype=np.int64)))
    x = ops.relu(ops.convolution(x, weights(32, 3, 3, 3), [2, 2], [1, 1], [1, 1], [1, 1]))
    channels = 32
    for out, stride in CONVNET_BLOCKS[side]:
        x = ops.relu(ops.group_convolution(x, weights(channels, 1, 1, 3, 3), [stride, stride], [1, 1], [1, 1], [1, 1]))
        x = ops.relu(ops.convolution(x, weights(out, channels, 1, 1), [1, 1], [0, 0], [0, 0], [1, 1]))
        channels = out
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], dtype=np.int64)), keep_dims=False)
    x = ops.matmul(x, weights(channels, 10), False, False)
    return ov.Model([x], [image], "edgebench-reference-convnet")


def _matmul(size: int = 384) -> Any:
    import openvino as ov
    import openvino.opset13 as ops

    a = ops.parameter([size, size], np.float32, name="a")
    b = ops.constant(np.random.default_rng(_SEED).random((size, size), dtype=np.float32))
    return ov.Model([ops.matmul(a, b, False, False)], [a], "edgebench-reference-matmul")


class _NumpyMatmul(Reference):
    name = "numpy-matmul"

    def __init__(self, size: int = 128) -> None:
        rng = np.random.default_rng(_SEED)
        self._a, self._b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)

    def run(self) -> None:
        self._a @ self._b

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "runtime": "numpy", "version": np.__version__}


def make_reference(
    name: str = REFERENCE, device: str = "CPU", precision: str = "FP32", hint: str = "LATENCY"
) -> Reference:
    """A reference workload by name (:data:`CANDIDATES`). OpenVINO ones compile for ``device`` (a virtual
    device such as AUTO falls back to CPU: the reference measures the host) at ``precision``."""
    from harness.errors import ConfigError

    device = device if device in ("CPU", "GPU", "NPU") else "CPU"
    precision = precision if precision in ("FP32", "FP16", "BF16") else "FP32"  # INT8 models: float reference
    if name == "ov-convnet":
        return _OpenVINOReference(name, _convnet(112), device, precision, hint)
    if name == "ov-convnet-224":
        return _OpenVINOReference(name, _convnet(224), device, precision, hint)
    if name == "ov-matmul":
        return _OpenVINOReference(name, _matmul(), device, precision, hint)
    if name == "numpy-matmul":
        return _NumpyMatmul()
    raise ConfigError(f"reference workload {name!r}: choose from {', '.join(CANDIDATES)}")


def time_block(fn: Callable[[], Any], calls: int) -> list[int]:
    """One untimed call (it absorbs the switch from the other workload), then ``calls`` timed ones, in ns:
    the same loop :mod:`harness.gate.ab_worker` times every arm with."""
    from harness.gate.ab_worker import time_block as loop

    return loop(fn, calls)


@dataclass
class DriftSeries:
    """Per turn: the model's and the reference's timed calls (ns), and what the reference was."""

    reference: dict[str, Any]
    model_ns: list[list[int]] = field(default_factory=list)
    reference_ns: list[list[int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "reference": self.reference,
            "model_ns": self.model_ns,
            "reference_ns": self.reference_ns,
        }

    def ratios(self) -> FloatArray:
        return compensated_series(self.to_json())


def time_interleaved(
    model: Callable[[], Any], reference: Reference, turns: int, block: int = 5, min_seconds: float = 0.0
) -> DriftSeries:
    """``turns`` turns (and at least ``min_seconds``): a block of the model's calls and a block of the
    reference's, the order alternating every turn (MR RM MR …)."""
    series = DriftSeries(reference.describe())
    end = time.perf_counter() + min_seconds
    while len(series.model_ns) < turns or time.perf_counter() < end:
        first_model = len(series.model_ns) % 2 == 0
        for is_model in (first_model, not first_model):
            if is_model:
                series.model_ns.append(time_block(model, block))
            else:
                series.reference_ns.append(time_block(reference.run, block))
    return series


def compensated_series(record: object) -> FloatArray:
    """The drift-compensated series of a stored :data:`FIELD` record: per turn, median model time ÷ median
    reference time. Raises ValueError on a record that does not follow the schema."""
    if not isinstance(record, Mapping) or record.get("schema") != SCHEMA:
        raise ValueError(f"not an {SCHEMA} record")
    model, reference = record.get("model_ns"), record.get("reference_ns")
    if not isinstance(model, Sequence) or not isinstance(reference, Sequence) or len(model) != len(reference):
        raise ValueError("model_ns and reference_ns need one block per turn, the same number of turns")
    try:
        blocks = [
            (np.asarray(m, dtype=np.float64), np.asarray(r, dtype=np.float64))
            for m, r in zip(model, reference, strict=True)
        ]
    except (TypeError, ValueError):
        raise ValueError("model_ns and reference_ns blocks must be non-empty lists of numbers") from None
    if any(m.ndim != 1 or r.ndim != 1 or not m.size or not r.size for m, r in blocks):
        raise ValueError("model_ns and reference_ns blocks must be non-empty lists of numbers")
    medians = np.array([[np.median(m), np.median(r)] for m, r in blocks]).reshape(-1, 2)
    if not np.all(np.isfinite(medians)) or np.any(medians <= 0):
        raise ValueError("a turn's median is not a positive number")
    ratios: FloatArray = medians[:, 0] / medians[:, 1]
    return ratios
