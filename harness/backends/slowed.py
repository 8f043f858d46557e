"""A wrapper that makes any backend slower by a set fraction, to prove the gate catches slowdowns.

The extra is CPU work (a pure-Python integer loop, like a real code regression), not a sleep: it holds the
core the way slower code would. Its amount is calibrated on every call: after the inner ``infer`` took d,
the wrapper works for ``fraction`` × d more, inside the timed call. A fixed amount of work calibrated once
would not do: shared machines switch between speed regimes (the same model here runs at 3.8 ms or 5.7 ms
per call from one minute to the next), and a fixed extra of 2 % in one regime is 1.3 % in the other.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from harness.backends import Backend, BackendConfig
from harness.errors import ConfigError
from harness.numeric import FloatArray

if TYPE_CHECKING:
    from harness.edge import EdgeModel


def busy_work(until_ns: int) -> int:
    """Integer additions until the monotonic clock reaches ``until_ns``; returns how many loops ran."""
    loops, total = 0, 0
    while time.perf_counter_ns() < until_ns:
        for i in range(100):
            total += i
        loops += 1
    return loops


class SlowedBackend:
    def __init__(self, inner: Backend, fraction: float) -> None:
        if not 0 <= fraction < 10:
            raise ConfigError(f"injected slowdown {fraction!r}: give a fraction >= 0 (0.02 means 2 % slower)")
        self.inner, self.fraction = inner, fraction
        self.name = f"{inner.name}+{fraction:.0%}"
        self.precisions = inner.precisions

    def load(self, model: EdgeModel, config: BackendConfig) -> None:
        self.inner.load(model, config)

    def infer(self, batch: FloatArray) -> FloatArray:
        start = time.perf_counter_ns()
        out = self.inner.infer(batch)
        end = time.perf_counter_ns()
        busy_work(end + int(self.fraction * (end - start)))
        return out

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "injected_slowdown": self.fraction}
