"""OpenVINO integration with TensorFlow (``openvino_tensorflow``): stock TF graph execution with supported
clusters offloaded to OpenVINO, as the seed ran it. The package is discontinued: its last release needs
Python <= 3.10 and TensorFlow 2.9, so on most nodes it does not import and this backend refuses to load
(its tests skip with that reason).

Where it runs, ``describe()`` carries the parsed ``OVTF Summary`` line: how many TF graph nodes ran on
OpenVINO out of how many.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import BackendConfig, require
from harness.backends.tf import TensorFlowBackend
from harness.errors import BackendError

if TYPE_CHECKING:
    from harness.edge import EdgeModel

SUMMARY = re.compile(r"OVTF Summary -> (\d+) out of (\d+) nodes in the graph \((\d+)%\)")


def unavailable_reason() -> str | None:
    """Why openvino_tensorflow cannot be used on this node, or None if it can."""
    try:
        import openvino_tensorflow  # noqa: F401  (importing it sets CUDA_VISIBLE_DEVICES=-1)
    except ImportError as exc:
        return (
            f"openvino_tensorflow is not importable ({exc}): it has no wheel for Python "
            f"{sys.version_info.major}.{sys.version_info.minor} (its last release needs Python <= 3.10 and "
            "TensorFlow 2.9)"
        )
    return None


def parse_ovtf_summary(log_text: str) -> dict[str, int]:
    """``OVTF Summary -> N out of M nodes in the graph (P%) ...`` -> {nodes_on_openvino, nodes_total, percent}."""
    match = SUMMARY.search(log_text)
    if not match:
        return {}
    on_openvino, total, percent = (int(v) for v in match.groups())
    return {"nodes_on_openvino": on_openvino, "nodes_total": total, "percent": percent}


class OpenVINOTensorFlowBackend(TensorFlowBackend):
    name = "ovtf"
    precisions = ("FP32",)
    unavailable_reason = staticmethod(unavailable_reason)  # checked by backend_class, before any training

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise BackendError(f"backend 'ovtf': {reason}")
        super().__init__()
        self._placement: dict[str, int] = {}
        self._device = "CPU"

    def load(self, model: EdgeModel, config: BackendConfig) -> None:
        import openvino_tensorflow as ovtf

        require(self.name, config, devices=tuple(ovtf.list_backends()))
        ovtf.set_backend(config.device)
        ovtf.enable()
        os.environ["OPENVINO_TF_LOG_PLACEMENT"] = "1"  # ovtf prints its placement summary on the first run
        super().load(model, BackendConfig())  # the TF SavedModel signature, executed through ovtf
        self._device = config.device
        probe = np.zeros((1, *self._input_shape()), dtype=np.float32)
        self._placement = parse_ovtf_summary(_stderr_of(lambda: self.infer(probe)))

    def _input_shape(self) -> tuple[int, ...]:
        spec = self._signature.structured_input_signature[1][self._input_name]
        return tuple(int(d) for d in spec.shape[1:])

    def describe(self) -> dict[str, Any]:
        import openvino_tensorflow as ovtf

        return {
            **super().describe(),
            "backend": self.name,
            "runtime": "openvino_tensorflow",
            "version": ovtf.__version__,
            "device": self._device,
            "ovtf_backend": ovtf.get_backend(),
            "placement": self._placement,
        }


def _stderr_of(call: Any) -> str:
    """What native code writes to file descriptor 2 during ``call()`` (ovtf logs from C++)."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")
