"""A backend that does no inference: timing it measures the harness's own per-call overhead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import check_precision

if TYPE_CHECKING:
    from harness.edge import EdgeModel


class NullBackend:
    name = "null"

    def __init__(self) -> None:
        self._num_classes = 0
        self._device = "CPU"

    def load(self, model: EdgeModel, device: str = "CPU", precision: str = "FP32") -> None:
        check_precision(self.name, precision, ("FP32",))
        self._num_classes = len(model.classes)
        self._device = device

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.zeros((len(batch), self._num_classes), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "runtime": "none", "version": "", "device": self._device, "precision": "FP32"}
