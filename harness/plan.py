"""Which backend x precision pairs ``edgebench run`` measures, and which it skips and why.

- The reference (stock TF at FP32) runs whenever a candidate does: parity and speedup are measured
  against it, so it is added when it was not asked for, and it runs at FP32 whatever precisions were asked.
- Precisions apply to the candidates (every backend but the reference and ``null``); ``null`` measures the
  harness's own overhead and runs once, at FP32.
- The precision ladder is every precision the OpenVINO device runs natively: FP32 always, FP16, BF16 and
  INT8 where the device's ``OPTIMIZATION_CAPABILITIES`` lists them (virtual devices such as AUTO: CPU's).
- Nothing passes by absence: every asked-for (or ladder) pair that does not run is listed with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.backends import PRECISIONS, backend_class, result_label
from harness.errors import BackendError

REFERENCE = "tf"
REFERENCE_PRECISION = "FP32"
OPENVINO = "openvino"  # the backend whose device capabilities decide which precisions are native
NOT_CANDIDATES = (REFERENCE, "null")  # the reference itself, and the backend that computes nothing

NativePrecisions = Callable[[str], Sequence[str]]  # OpenVINO device -> the precisions it runs natively


def is_candidate(backend: str) -> bool:
    """A backend judged against the reference (parity required)."""
    return backend not in NOT_CANDIDATES


@dataclass(frozen=True)
class Pair:
    backend: str
    precision: str

    @property
    def label(self) -> str:
        return result_label(self.backend, self.precision)


@dataclass(frozen=True)
class Skipped:
    backend: str
    precision: str
    reason: str


@dataclass(frozen=True)
class Ladder:
    device: str  # the OpenVINO device asked for
    capabilities_of: str  # the device whose capabilities count: CPU for a virtual device (AUTO, ...)
    precisions: tuple[str, ...]  # the rungs that run: FP32 plus what the device's capabilities list


@dataclass(frozen=True)
class BackendPlan:
    pairs: tuple[Pair, ...]
    skipped: tuple[Skipped, ...]
    reference_added: bool
    ladder: Ladder | None

    @property
    def notes(self) -> list[str]:
        """One line each, for the console: what the run adds or leaves out on its own."""
        lines = []
        if self.reference_added:
            lines.append(
                f"Reference {REFERENCE} {REFERENCE_PRECISION} added: every candidate is compared with it "
                f"(parity, speedup)"
            )
        if self.ladder is not None:
            lines.append(f"Precision ladder on {self.ladder.device}: {', '.join(self.ladder.precisions)}")
        lines += [f"Skipped {s.backend} {s.precision}: {s.reason}" for s in self.skipped]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [p.label for p in self.pairs],
            "reference": result_label(REFERENCE, REFERENCE_PRECISION),
            "reference_added": self.reference_added,
            "ladder": None
            if self.ladder is None
            else {**asdict(self.ladder), "precisions": list(self.ladder.precisions)},
            "skipped": [asdict(s) for s in self.skipped],
        }


def plan_backends(
    backends: Sequence[str],
    precisions: Sequence[str],
    device: str,
    ladder: bool = False,
    native: NativePrecisions | None = None,
) -> BackendPlan:
    """The pairs to measure, in order (the reference first), and the skipped ones with their reasons.
    ``native`` (default: OpenVINO's answer) gives the precisions a device runs natively: the ladder's rungs,
    and what an asked-for OpenVINO precision is checked against (the plugin would silently run FP16 as BF16
    or FP32 on a CPU without it, under FP16's name)."""
    candidates = [b for b in dict.fromkeys(backends) if is_candidate(b)]
    checks_native = ladder or (OPENVINO in candidates and any(p != REFERENCE_PRECISION for p in precisions))
    device_rungs = read_ladder(device, native or _openvino_native) if checks_native else None
    wanted = device_rungs.precisions if ladder and device_rungs else tuple(dict.fromkeys(precisions))
    reference_added = bool(candidates) and REFERENCE not in backends
    names = ([REFERENCE] if reference_added else []) + list(dict.fromkeys(backends))
    pairs, skipped = [], []
    for name in names:
        if not is_candidate(name):
            pairs.append(Pair(name, REFERENCE_PRECISION))
            continue
        supported = backend_class(name).precisions
        for precision in PRECISIONS if ladder else wanted:
            if precision not in wanted:
                skipped.append(_not_native(name, precision, device_rungs))
            elif precision not in supported:
                skipped.append(Skipped(name, precision, f"backend {name} runs {', '.join(supported)} only"))
            elif name == OPENVINO and device_rungs and precision not in device_rungs.precisions:
                skipped.append(_not_native(name, precision, device_rungs))
            else:
                pairs.append(Pair(name, precision))
    if candidates and not any(is_candidate(p.backend) for p in pairs):
        raise BackendError(
            f"nothing to compare with {REFERENCE}: "
            + "; ".join(f"{s.backend} {s.precision} {s.reason}" for s in skipped)
            + "; ask for a precision the device runs"
        )
    pairs.sort(key=lambda p: p.backend != REFERENCE)
    return BackendPlan(tuple(pairs), tuple(skipped), reference_added, device_rungs if ladder else None)


def _not_native(backend: str, precision: str, rungs: Ladder | None) -> Skipped:
    assert rungs is not None
    return Skipped(
        backend,
        precision,
        f"not native on {rungs.device}: {rungs.capabilities_of}'s OPTIMIZATION_CAPABILITIES list no {precision}",
    )


def read_ladder(device: str, native: NativePrecisions) -> Ladder:
    precisions = tuple(native(device))
    if not precisions:
        from harness.measure import processor_identity

        raise BackendError(
            f"OpenVINO device {device!r} is not available on this node; it has "
            f"{', '.join(processor_identity()['openvino_devices']) or 'none'}"
        )
    from harness.backends.openvino import VIRTUAL_DEVICES

    return Ladder(device, "CPU" if device.split(":")[0] in VIRTUAL_DEVICES else device, precisions)


def _openvino_native(device: str) -> tuple[str, ...]:
    from harness.backends.openvino import native_precisions

    try:
        return native_precisions(device)
    except ImportError as exc:
        raise BackendError(
            f"reading the OpenVINO device's capabilities: cannot import openvino ({exc}); install it on this node"
        ) from None
