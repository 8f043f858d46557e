"""Inference runtimes behind one protocol. A new runtime is one new module plus one line in BACKENDS."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from harness.errors import ArtifactError, BackendError
from harness.numeric import FloatArray, IntArray

if TYPE_CHECKING:
    from harness.edge import EdgeModel

PRECISIONS = ("FP32", "FP16", "BF16", "INT8")
HINTS = ("LATENCY", "THROUGHPUT")
# INT8 only: NNCF post-training quantization, or accuracy-aware quantization that keeps the layers that
# cost most accuracy in floating point until the drop on labelled validation images is within 1 %.
QUANTIZATIONS = ("ptq", "accuracy-control")

# name -> "module:Class", imported only when asked for (TensorFlow and OpenVINO are slow to import).
BACKENDS = {
    "tf": "harness.backends.tf:TensorFlowBackend",
    "openvino": "harness.backends.openvino:OpenVINOBackend",
    "ovtf": "harness.backends.ovtf:OpenVINOTensorFlowBackend",
    "null": "harness.backends.null:NullBackend",
}


@dataclass(frozen=True)
class BackendConfig:
    """How to load a model: device, precision, batch (None: one dynamic-batch model for every batch size),
    performance hint, and for INT8 the calibration images (preprocessed training images, never test ones)."""

    device: str = field(default="CPU", metadata={"help": "device to run on (OpenVINO: CPU, GPU, AUTO, ...)"})
    precision: str = field(default="FP32", metadata={"help": "inference precision: FP32, FP16, BF16 or INT8"})
    batch: int | None = None
    hint: str = "LATENCY"
    quantization: str = "ptq"
    calibration: FloatArray | None = field(default=None, compare=False, hash=False, repr=False)
    # accuracy-control: (preprocessed images, target class per image) it measures the drop on; the targets
    # are normally the FP32 reference's decisions, so the drop bounds changed decisions
    validation: tuple[FloatArray, IntArray] | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BackendError(f"precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.batch is not None and self.batch < 1:
            raise BackendError(f"batch {self.batch}: must be >= 1, or None for a dynamic batch")
        if self.hint not in HINTS:
            raise BackendError(f"performance hint {self.hint!r}: choose one of {', '.join(HINTS)}")
        if self.quantization not in QUANTIZATIONS or (self.quantization != "ptq" and self.precision != "INT8"):
            raise BackendError(
                f"quantization {self.quantization!r}: choose one of {', '.join(QUANTIZATIONS)} "
                "(accuracy-control applies to INT8 only)"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "precision_requested": self.precision,
            "batch": self.batch if self.batch is not None else "dynamic",
            "hint": self.hint,
            "calibration_images": 0 if self.calibration is None else len(self.calibration),
            **({"quantization": self.quantization} if self.precision == "INT8" else {}),
        }


@runtime_checkable
class Backend(Protocol):
    name: str
    precisions: tuple[str, ...]  # what load() accepts in BackendConfig.precision

    def load(self, model: EdgeModel, config: BackendConfig) -> None:
        """Prepare the imported model's SavedModel for inference as ``config`` says (compile, warm caches)."""

    def infer(self, batch: FloatArray) -> FloatArray:
        """(N, H, W, 3) float32 preprocessed images -> (N, classes) logits. The only timed call."""

    def describe(self) -> dict[str, Any]:
        """Versions, device full name, the precision actually in effect, and runtime details."""


def result_label(backend: str, precision: str, quantization: str = "ptq") -> str:
    """How results name one backend at one precision, everywhere (run report, node JSON, fleet report):
    ``openvino`` at FP32, ``openvino-int8`` otherwise, ``openvino-int8-ac`` for accuracy-aware INT8."""
    label = backend if precision == "FP32" else f"{backend}-{precision.lower()}"
    return label + ("-ac" if quantization == "accuracy-control" else "")


def backend_class(name: str) -> type[Backend]:
    """The runtime's class, imported on first use: its class attributes (``precisions``) without an instance.
    A runtime that imports but cannot run on this node says why in an optional ``unavailable_reason()``."""
    if name not in BACKENDS:
        raise BackendError(f"backend {name!r}: unknown; choose one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {name!r}: cannot import its runtime ({exc}); install it on this node") from None
    cls: type[Backend] = getattr(module, class_name)
    reason = getattr(cls, "unavailable_reason", lambda: None)()
    if reason:
        raise BackendError(f"backend {name!r}: {reason}")
    return cls


def create_backend(name: str) -> Backend:
    return backend_class(name)()


def check_request(names: tuple[str, ...] | list[str], precision: str) -> None:
    """Fail fast (before any training) on an unknown backend name or precision."""
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise BackendError(f"backend {unknown[0]!r}: unknown; choose from {', '.join(BACKENDS)}")
    BackendConfig(precision=precision)


def require(
    backend: str, config: BackendConfig, precisions: tuple[str, ...] = ("FP32",), devices: tuple[str, ...] = ("CPU",)
) -> None:
    """For runtimes that support less than OpenVINO does: refuse a precision or device they cannot honour."""
    if config.precision not in precisions:
        raise BackendError(
            f"backend {backend!r}: precision {config.precision!r} is not supported; choose one of "
            f"{', '.join(precisions)}"
        )
    if config.device not in devices:
        raise BackendError(
            f"backend {backend!r}: device {config.device!r} is not supported; use {' or '.join(devices)}"
        )


def load_backend(name: str, model: EdgeModel, config: BackendConfig) -> Backend:
    backend = create_backend(name)
    backend.load(model, config)
    return backend


def infer_each(backend: Backend, images: FloatArray, classes: tuple[str, ...]) -> FloatArray:
    """Logits for each image at batch 1, checked against the label map's width."""
    out = np.concatenate([backend.infer(images[i : i + 1]) for i in range(len(images))])
    if out.ndim != 2 or out.shape[1] != len(classes):
        raise ArtifactError(
            f"backend {backend.name}: model outputs shape {out.shape[1:]} but the label map has "
            f"{len(classes)} classes; the label file does not belong to this model"
        )
    return out
