"""Inference runtimes behind one protocol. A new runtime is one new module plus one line in BACKENDS."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from harness.errors import BackendError

if TYPE_CHECKING:
    from harness.edge import EdgeModel

PRECISIONS = ("FP32", "FP16", "BF16")

# name -> "module:Class", imported only when asked for (TensorFlow and OpenVINO are slow to import).
BACKENDS = {
    "tf": "harness.backends.tf:TensorFlowBackend",
    "openvino": "harness.backends.openvino:OpenVINOBackend",
    "null": "harness.backends.null:NullBackend",
}


@runtime_checkable
class Backend(Protocol):
    name: str

    def load(self, model: EdgeModel, device: str = "CPU", precision: str = "FP32") -> None:
        """Prepare the imported model's SavedModel for inference on ``device`` at ``precision`` (compile, warm caches)."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 preprocessed images -> (N, classes) logits. The only timed call."""

    def describe(self) -> dict[str, Any]:
        """Versions, device full name, the precision actually in effect, and runtime details."""


def create_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise BackendError(f"backend {name!r}: unknown; choose one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {name!r}: cannot import its runtime ({exc}); install it on this node") from None
    return getattr(module, class_name)()


def check_request(names: tuple[str, ...] | list[str], precision: str) -> None:
    """Fail fast (before any training) on an unknown backend name or precision."""
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise BackendError(f"backend {unknown[0]!r}: unknown; choose from {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


def check_precision(backend: str, precision: str, supported: tuple[str, ...]) -> None:
    if precision not in supported:
        raise BackendError(f"backend {backend!r}: precision {precision!r} is not supported; choose one of "
                           f"{', '.join(supported)}")
