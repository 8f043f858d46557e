"""A wrapper that makes any backend wrong in a chosen way, to prove the parity bounds catch wrong answers.

Like ``slowed`` for latency: each fault is a bug a real conversion or deployment can have.

- ``class-swap``: the logits of two classes trade places (a label map out of order);
- ``channel-swap``: the input arrives BGR instead of RGB (an OpenCV decode left unconverted);
- ``constant``: every image gets the first image's logits (a stale output buffer);
- ``flip:K``: K % of decisions change (runner-up and top logits trade places on every (100/K)-th image, in
  the order images arrive: an operator bug that bites on some inputs);
- ``scale:S``: every logit multiplied by S (a lost or doubled normalisation, a wrong dequantisation scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.backends import Backend, BackendConfig
from harness.errors import ConfigError
from harness.numeric import FloatArray

if TYPE_CHECKING:
    from harness.edge import EdgeModel

FAULTS = ("class-swap", "channel-swap", "constant", "flip", "scale")


@dataclass(frozen=True)
class Fault:
    kind: str
    amount: float = 0.0  # flip: percent of decisions; scale: the factor

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``class-swap``, ``channel-swap``, ``constant``, ``flip:10`` (percent) or ``scale:1.01``."""
        kind, _, amount = text.partition(":")
        if kind not in FAULTS:
            raise ConfigError(f"fault {text!r}: choose one of class-swap, channel-swap, constant, flip:K, scale:S")
        needs_amount = kind in ("flip", "scale")
        if needs_amount != bool(amount):
            raise ConfigError(
                f"fault {text!r}: {'give an amount, e.g. flip:10 or scale:1.01' if needs_amount else 'takes no amount'}"
            )
        try:
            value = float(amount) if amount else 0.0
        except ValueError:
            raise ConfigError(f"fault {text!r}: {amount!r} is not a number") from None
        if kind == "flip" and not 0 < value <= 100:
            raise ConfigError(f"fault {text!r}: flip takes a percentage in (0, 100]")
        if kind == "scale" and not (np.isfinite(value) and value > 0):
            raise ConfigError(f"fault {text!r}: scale takes a factor > 0")
        return cls(kind, value)

    def __str__(self) -> str:
        return self.kind if self.kind in ("class-swap", "channel-swap", "constant") else f"{self.kind}:{self.amount:g}"


class FaultyBackend:
    def __init__(self, inner: Backend, fault: Fault) -> None:
        self.inner, self.fault = inner, fault
        self.name = f"{inner.name}!{fault}"
        self.precisions = inner.precisions
        self._rows_seen = 0
        self._constant: FloatArray | None = None

    def load(self, model: EdgeModel, config: BackendConfig) -> None:
        self.inner.load(model, config)

    def infer(self, batch: FloatArray) -> FloatArray:
        if self.fault.kind == "channel-swap":
            return self.inner.infer(np.ascontiguousarray(batch[..., ::-1]))
        logits = np.array(self.inner.infer(batch), copy=True)
        match self.fault.kind:
            case "class-swap":
                logits[:, [0, 1]] = logits[:, [1, 0]]
            case "constant":
                if self._constant is None:
                    self._constant = logits[0].copy()
                logits[:] = self._constant
            case "scale":
                logits *= np.float32(self.fault.amount)
            case "flip":
                logits = self._flip(logits)
        return logits

    def _flip(self, logits: FloatArray) -> FloatArray:
        """Swap the top two logits on rows n where floor(n·K/100) steps up: exactly K of every 100 rows."""
        rate = self.fault.amount / 100
        for row in range(len(logits)):
            n = self._rows_seen + row
            if math.floor((n + 1) * rate + 1e-9) > math.floor(n * rate + 1e-9):  # 1e-9: 0.1 * 30 is 3.0000000004
                top, runner_up = np.argsort(logits[row])[::-1][:2]
                logits[row, [top, runner_up]] = logits[row, [runner_up, top]]
        self._rows_seen += len(logits)
        return logits

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "injected_fault": str(self.fault)}
