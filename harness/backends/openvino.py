"""Native OpenVINO: ``ov.convert_model`` on the SavedModel, ``Core.compile_model`` with explicit hints.

Precision is always set: the CPU plugin otherwise picks bf16 on processors with AVX-512 BF16 / AMX, which
changes both the answers and the speed. ``describe()`` reports the precision the compiled model says it
runs, not the one asked for.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import PRECISIONS, check_precision
from harness.errors import BackendError

if TYPE_CHECKING:
    from harness.edge import EdgeModel

PRECISION_TYPES = {"FP32": "f32", "FP16": "f16", "BF16": "bf16"}


class OpenVINOBackend:
    name = "openvino"

    def __init__(self, performance_hint: str = "LATENCY") -> None:
        self.performance_hint = performance_hint
        self._compiled: Any = None
        self._request: Any = None
        self._details: dict[str, Any] = {}

    def load(self, model: EdgeModel, device: str = "CPU", precision: str = "FP32") -> None:
        import openvino as ov

        check_precision(self.name, precision, PRECISIONS)
        core = ov.Core()
        if not _is_virtual(device) and device not in core.available_devices:
            raise BackendError(f"backend 'openvino': device {device!r} not available here; this node has "
                               f"{', '.join(core.available_devices)}")
        try:
            converted = ov.convert_model(str(model.saved_model_dir))
        except Exception as exc:  # the converter raises many unrelated types; all mean "cannot convert"
            raise BackendError(f"{model.saved_model_dir}: OpenVINO cannot convert this SavedModel "
                               f"({str(exc).splitlines()[0]})") from None
        hints = {"PERFORMANCE_HINT": self.performance_hint, "INFERENCE_PRECISION_HINT": PRECISION_TYPES[precision]}
        # Virtual devices pass the precision on to the device(s) they pick.
        config = hints if not _is_virtual(device) else {
            "PERFORMANCE_HINT": self.performance_hint,
            "DEVICE_PROPERTIES": {d: {"INFERENCE_PRECISION_HINT": PRECISION_TYPES[precision]}
                                  for d in core.available_devices}}
        try:
            self._compiled = core.compile_model(converted, device, config)
        except RuntimeError as exc:
            raise BackendError(f"backend 'openvino': cannot compile for {device} at {precision} "
                               f"({str(exc).splitlines()[0]})") from None
        self._request = self._compiled.create_infer_request()
        layers = _runtime_layers(self._compiled)
        reported = _property(self._compiled, "INFERENCE_PRECISION_HINT")
        self._details = {
            "device": device,
            "device_full_name": _full_device_name(core, device),
            "execution_devices": _property(self._compiled, "EXECUTION_DEVICES") or [device],
            "precision_requested": precision,
            # AUTO/MULTI do not report a precision: then the lowest float precision any runtime layer uses.
            "precision": _precision_name(reported) if reported else _lowest_float(layers["by_precision"]),
            "performance_hint": str(_property(self._compiled, "PERFORMANCE_HINT")).split(".")[-1],
            "num_streams": str(_property(self._compiled, "NUM_STREAMS")),
            "ops_converted": len(converted.get_ops()),
            "runtime_layers": layers,
        }

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._request.infer(batch)[0]

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        return {"backend": self.name, "runtime": "openvino", "version": ov.get_version(), **self._details}


def _is_virtual(device: str) -> bool:
    return device.split(":")[0] in ("AUTO", "MULTI", "HETERO", "BATCH")


def _property(compiled: Any, name: str) -> Any:
    try:
        return compiled.get_property(name)
    except RuntimeError:  # not every device (AUTO, MULTI) reports every property
        return None


def _lowest_float(by_precision: dict[str, int]) -> str:
    for short in ("f16", "bf16", "f32"):
        if by_precision.get(short):
            return _precision_name(short)
    return "unknown"


def _precision_name(element_type: Any) -> str:
    """ov.Type f32 -> "FP32", so reports use one vocabulary for asked and actual precision."""
    short = element_type if isinstance(element_type, str) else element_type.get_type_name()
    return {v: k for k, v in PRECISION_TYPES.items()}.get(short, short)


def _full_device_name(core: Any, device: str) -> str:
    try:
        return str(core.get_property(device.split(":")[0].split(".")[0], "FULL_DEVICE_NAME"))
    except RuntimeError:
        return device


def _runtime_layers(compiled: Any) -> dict[str, Any]:
    """What actually executes: layer count and how many layers run at each precision."""
    precisions: Counter[str] = Counter()
    ops = compiled.get_runtime_model().get_ops()
    for op in ops:
        info = op.get_rt_info()
        if "runtimePrecision" in info:
            precisions[info["runtimePrecision"].astype(str)] += 1
    return {"count": len(ops), "by_precision": dict(sorted(precisions.items()))}
