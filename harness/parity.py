"""Do two backends give the same answers? One tolerance table, read by the tests and the reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    max_abs_prob: float  # largest |p_candidate - p_reference| over all images and classes
    max_abs_logit: float  # largest |logit difference|
    min_top1_agreement: float  # fraction of images whose predicted class is the same


# Candidate precision -> tolerance against stock TensorFlow FP32. Measured worst cases (MobileNetV2 trained
# by the local trainer, procedural set, OpenVINO 2026.4 CPU, f32 hint) are noted beside each bound.
TOLERANCES: dict[str, Tolerance] = {
    # measured worst: |Δp| 9.0e-6, |Δlogit| 5.5e-5 (Xeon with AMX, 2026-11-25, `edgebench run`)
    "FP32": Tolerance(max_abs_prob=1e-4, max_abs_logit=1e-3, min_top1_agreement=1.0),
}


@dataclass(frozen=True)
class ParityResult:
    precision: str
    images: int
    max_abs_prob: float
    max_abs_logit: float
    top1_agreement: float
    tolerance: Tolerance

    @property
    def within_tolerance(self) -> bool:
        t = self.tolerance
        return (self.max_abs_prob <= t.max_abs_prob and self.max_abs_logit <= t.max_abs_logit
                and self.top1_agreement >= t.min_top1_agreement)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "within_tolerance": self.within_tolerance}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def compare(reference_logits: np.ndarray, candidate_logits: np.ndarray, precision: str = "FP32") -> ParityResult:
    """Compare candidate logits against reference logits (same images, same order)."""
    if reference_logits.shape != candidate_logits.shape:
        raise ValueError(f"shape mismatch: reference {reference_logits.shape} vs candidate {candidate_logits.shape}")
    reference_probs, candidate_probs = softmax(reference_logits), softmax(candidate_logits)
    return ParityResult(
        precision=precision,
        images=int(reference_logits.shape[0]),
        max_abs_prob=float(np.max(np.abs(reference_probs - candidate_probs))),
        max_abs_logit=float(np.max(np.abs(reference_logits.astype(np.float64) - candidate_logits))),
        top1_agreement=float(np.mean(np.argmax(reference_logits, 1) == np.argmax(candidate_logits, 1))),
        tolerance=TOLERANCES[precision],
    )
