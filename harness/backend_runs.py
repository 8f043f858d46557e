"""The backends step of ``edgebench run``: each planned backend x precision loaded, timed and run image by image
(:class:`Measured`), and what report.json says of them: parity verdicts against TF FP32, predictions and
accuracy on the held-out and validation images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import data, edge, parity, plan
from harness.backends import BackendConfig, create_backend, infer_each, result_label
from harness.measure import TimingPlan, time_infer
from harness.numeric import FloatArray, IntArray, softmax
from harness.progress import Steps


@dataclass(frozen=True)
class Measured:
    """One backend at one precision: its description, latency, and logits on the held-out and validation sets."""

    label: str
    backend: str
    precision: str
    describe: dict[str, Any]
    latency: dict[str, Any]
    test_logits: FloatArray
    validation_logits: FloatArray | None

    @property
    def parity_logits(self) -> FloatArray:
        """Held-out plus validation images: five held-out images alone make agreement rates too coarse."""
        parts = [self.test_logits] + ([self.validation_logits] if self.validation_logits is not None else [])
        return np.concatenate(parts)


def parity_labels(model: edge.EdgeModel, validation: data.Dataset | None) -> IntArray:
    """Class indices in the order of :attr:`Measured.parity_logits`: held-out images, then validation images."""
    images = model.test_images + (validation.images if validation is not None else ())
    return np.array([model.classes.index(image.label) for image in images], dtype=np.int64)


def parity_verdicts(measured: list[Measured], labels: IntArray) -> dict[str, dict[str, Any]]:
    """Each candidate against the reference (TF FP32) on the same images, with accuracy against ``labels``.
    A candidate missing here has no verdict: ``report.check_parity`` refuses that."""
    reference = next((m for m in measured if m.label == result_label(plan.REFERENCE, plan.REFERENCE_PRECISION)), None)
    if reference is None:
        return {}
    return {
        m.label: parity.compare(reference.parity_logits, m.parity_logits, m.precision, labels).to_json()
        for m in measured
        if plan.is_candidate(m.backend)
    }


def run_backends(
    device: str,
    timing: TimingPlan,
    backend_plan: plan.BackendPlan,
    model: edge.EdgeModel,
    split: data.Split,
    validation: data.Dataset | None,
    steps: Steps,
) -> list[Measured]:
    """Each planned backend x precision (the reference TF on CPU at FP32): latency of ``infer`` alone, then
    logits for every held-out (and validation) image at batch 1."""
    images = data.load_batch([image.path for image in model.test_images])  # preprocessing, outside all timing
    validation_images = data.load_batch([i.path for i in validation.images]) if validation else None
    # INT8: NNCF calibrates on training images, never held-out ones: the subset this run uploads for edge nodes
    calibration = None
    if any(pair.precision == "INT8" for pair in backend_plan.pairs):
        subset = data.spread_over_classes(split.train, edge.CALIBRATION_IMAGES)
        calibration = data.load_batch([image.path for image in subset])
    measured = []
    for pair in backend_plan.pairs:
        name, precision, label = pair.backend, pair.precision, pair.label
        on = "CPU" if name == plan.REFERENCE else device
        with steps(f"backend:{label}", f"Backend {name}: load, time, infer ({on}, {precision})"):
            backend = create_backend(name)
            steps.mark(f"{label}:compile")
            backend.load(model, BackendConfig(on, precision, calibration=calibration))
            steps.mark(f"{label}:timing")
            stats = time_infer(backend, images[:1], timing)  # first: its first call is timed apart
            steps.mark(f"{label}:infer")
            measured.append(
                Measured(
                    label,
                    name,
                    precision,
                    backend.describe(),
                    stats.to_json(),
                    infer_each(backend, images, model.classes),
                    infer_each(backend, validation_images, model.classes) if validation_images is not None else None,
                )
            )
    return measured


def measured_sections(
    measured: list[Measured], model: edge.EdgeModel, validation: data.Dataset | None, validation_seed: int
) -> dict[str, Any]:
    """report.json's ``parity``, ``predictions``, ``accuracy`` and ``validation`` sections."""
    return {
        "parity": parity_verdicts(measured, parity_labels(model, validation)),
        "predictions": predictions(model, {m.label: m.test_logits for m in measured}),
        "accuracy": {m.label: accuracy(model.classes, model.test_images, m.test_logits) for m in measured},
        "validation": None
        if validation is None
        else {
            "images": len(validation.images),
            "generator_seed": validation_seed,
            "accuracy": {m.label: accuracy(model.classes, validation.images, m.validation_logits) for m in measured},
        },
    }


def predictions(model: edge.EdgeModel, logits: dict[str, FloatArray]) -> list[dict[str, Any]]:
    rows = []
    for index, image in enumerate(model.test_images):
        row: dict[str, Any] = {"image": str(image.path.relative_to(model.root)), "label": image.label}
        for name, out in logits.items():
            probabilities = softmax(out[index])
            row[name] = {
                "predicted_label": model.classes[int(np.argmax(probabilities))],
                "probabilities": [round(float(p), 6) for p in probabilities],
            }
        rows.append(row)
    return rows


def accuracy(
    classes: tuple[str, ...], images: tuple[data.LabeledImage, ...], logits: FloatArray | None
) -> float | None:
    """Inference-mode top-1 accuracy; None when there is nothing labelled to score."""
    if not len(images) or logits is None:
        return None
    truth = np.array([classes.index(image.label) for image in images])
    return float(np.mean(np.argmax(logits, axis=1) == truth))
