"""Numerics shared by several steps (import, parity, reports), with no I/O; the array types they pass around."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
"""Images, batches, logits, probabilities, timing samples and ratios: any float dtype (a backend returns what its
runtime gives; preprocessing makes float32, statistics float64)."""
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]
"""Class indices: labels, decisions, sample indices."""


def softmax(logits: FloatArray) -> FloatArray:
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: FloatArray = exp / exp.sum(axis=-1, keepdims=True)
    return probabilities
