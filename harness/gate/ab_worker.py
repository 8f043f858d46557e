"""The arms of a same-job A/B measurement (``edgebench ab``) that share one checkout: a process that loads
each arm's artifact with the same backend, then times a block of ``infer`` calls of the arm the parent
names, whenever it asks (JSON lines on stdin/stdout).

Arms of one checkout share this process on purpose: two processes loading the same model differ by up to
2 % on a shared 2-core VM (thread pinning, memory placement), two loads in one process by about 0.5 %;
each arm also loads ``replicas`` copies and turn i times copy i mod replicas, so that what is left of a
load's own offset averages out instead of deciding the verdict.
The parent runs this file with the checkout first on ``PYTHONPATH``, so ``harness`` below is that
checkout's code while the timing loop (this file) is the same for every arm. It therefore uses only harness
API every version has: ``edge.import_local``, ``load_backend`` (``backends``, in older checkouts ``workflow``),
``backends.BackendConfig`` and, for
an injected slowdown, ``backends.slowed``; a checkout asked for reference workloads (``spec["references"]``,
drift compensation) also needs ``harness.gate.drift``, so the parent asks only its own checkout for them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # nothing of harness at import time: the checkout on PYTHONPATH decides which harness runs
    from harness.numeric import FloatArray

REFERENCE_PREFIX = "reference:"  # arm label of a reference workload (harness.gate.drift), e.g. reference:ov-convnet


def main() -> int:
    spec = json.loads(sys.argv[1])
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to the log, never into the protocol
    sys.stdout = sys.stderr
    with tempfile.TemporaryDirectory(prefix="edgebench-ab-") as tmp:
        import numpy as np

        batch = np.ascontiguousarray(np.load(spec["batch_file"]))
        backends: dict[str, list[Any]] = {}  # an arm's replicas: backends of the checkout this runs in
        for index, arm in enumerate(spec["arms"]):
            try:
                backends[arm["label"]] = [
                    load(spec, arm, batch, Path(tmp) / f"arm{index}-{replica}")
                    for replica in range(int(spec["replicas"]))
                ]
            except Exception as exc:  # noqa: BLE001 - reported to the parent as one line naming the arm
                _send(protocol, {"error": f"{type(exc).__name__}: {exc}", "arm": arm["label"]})
                return 1
        import harness

        describe = {label: _jsonable(loaded[0].describe()) for label, loaded in backends.items()}
        references = {}
        for name in spec.get("references") or ():  # drift compensation: fixed workloads timed as pseudo-arms
            from harness.gate import drift

            references[REFERENCE_PREFIX + name] = reference = drift.make_reference(
                name, spec["device"], spec["precision"]
            )
            for _ in range(int(spec["warmup"])):
                reference.run()
            describe[REFERENCE_PREFIX + name] = reference.describe()
        _send(protocol, {"ready": True, "harness": str(Path(harness.__file__).parent), "describe": describe})
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("cmd") != "measure":
                break
            if request["arm"] in references:
                samples = time_calls(references[request["arm"]], None, int(request["calls"]))
                _send(protocol, {"samples_ns": samples})
                continue
            replicas = backends[request["arm"]]
            samples = time_calls(replicas[int(request["turn"]) % len(replicas)], batch, int(request["calls"]))
            _send(protocol, {"samples_ns": samples})
    return 0


def load(spec: dict[str, Any], arm: dict[str, Any], batch: FloatArray, tmp: Path) -> Any:
    from harness import edge
    from harness.backends import BackendConfig

    try:
        from harness.backends import load_backend
    except ImportError:  # a checkout from before the backend helpers moved out of the workflow
        from harness.workflow import load_backend  # type: ignore[attr-defined,no-redef]  # there, in those

    model = edge.import_local(Path(arm["artifact"]), tmp / "edge")
    config = BackendConfig(spec["device"], spec["precision"], batch=len(batch))
    backend = load_backend(spec["backend"], model, config)
    if arm.get("slowdown"):
        from harness.backends.slowed import SlowedBackend

        backend = SlowedBackend(backend, float(arm["slowdown"]))
    for _ in range(int(spec["warmup"])):
        backend.infer(batch)
    return backend


def time_calls(backend: Any, batch: FloatArray | None, calls: int) -> list[int]:
    """:func:`time_block` on ``backend.infer(batch)``, or on a reference workload's ``run`` (``batch`` None)."""
    return time_block(backend.run if batch is None else lambda: backend.infer(batch), calls)


def time_block(call: Callable[[], object], calls: int) -> list[int]:
    """Back-to-back timed calls after one untimed call: the first call after another arm ran pays for waking
    this model's threads and refilling caches, which is the switch, not the model."""
    clock = time.perf_counter_ns
    call()
    samples = []
    for _ in range(calls):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def _send(stream: TextIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


if __name__ == "__main__":
    sys.exit(main())
