"""A backend that does no inference: timing it measures the harness's own per-call overhead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import BackendConfig, require
from harness.numeric import FloatArray

if TYPE_CHECKING:
    from harness.edge import EdgeModel


class NullBackend:
    name = "null"
    precisions = ("FP32",)

    def __init__(self) -> None:
        self._num_classes = 0
        self._device = "CPU"

    def load(self, model: EdgeModel, config: BackendConfig) -> None:
        require(self.name, config, devices=(config.device,))  # any device: it does nothing anywhere
        self._num_classes = len(model.classes)
        self._device = config.device

    def infer(self, batch: FloatArray) -> FloatArray:
        return np.zeros((len(batch), self._num_classes), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "runtime": "none", "version": "", "device": self._device, "precision": "FP32"}
