"""``edgebench ab BASE NEW``: same-job A/B. Baseline and candidate measured interleaved in one job, then gated.

Shared CI runners swing 26–50 % between jobs for the same code but well under 1 % within one job, so a
stored baseline from another job cannot see a 2 % slowdown there; two arms measured turn by turn in the
same minutes can. An arm is one loaded backend: two artifacts, or the same artifact under two checkouts of
edgebench (a backend change), or the same artifact with an injected slowdown (the gate's own validation).
Arms run in worker processes (:mod:`harness.gate.ab_worker`), one per checkout: arms of one checkout share a
process, because separate processes add an offset of their own (up to 2 % here, measured) that two loads
in one process do not (about 0.5 %); comparing two checkouts pays it, so give that mode a larger minimum
effect. Each arm is loaded ``replicas`` times and turn i times copy i mod replicas. The parent asks the
arms in turn for a block of timed calls (after one untimed call), rotating the order every turn (AB BA …)
so that no arm always runs in the same position, until the measurement budget (wall-clock seconds, all
arms together) is spent. Every arm keeps the same warm-up rule (``warmup`` untimed calls after loading). The raw
per-call samples go to the gate's rule through :func:`harness.gate.compare_interleaved`, which compares the arms turn by
turn (the ratio of their block medians), so that the machine's speed regime, which shifts within minutes on shared
hosts, cancels; the minimum effect defaults to 0.5 %, a tenth of the stored-baseline mode's, because it can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.gate.ab_worker import REFERENCE_PREFIX
from harness.gate.compare import compare_interleaved
from harness.gate.verdicts import Comparison, GateOptions, GateResult
from harness.numeric import FloatArray

WORKER = Path(__file__).with_name("ab_worker.py")
INTERLEAVED_THRESHOLD = 0.005  # minimum effect in this mode: 0/24 false alarms, 23/24 of 2 % caught here


@dataclass(frozen=True)
class Arm:
    """One side: an artifact, optionally under another edgebench checkout, optionally slowed on purpose."""

    label: str
    artifact: Path
    checkout: Path | None = None  # a checkout whose ``harness`` runs this arm (default: this one)
    slowdown: float = field(  # injected extra CPU work, a fraction of each call's own inference time
        default=0.0, metadata={"help": "make NEW slower by this fraction with calibrated extra work (checks the gate)"}
    )


@dataclass(frozen=True)
class ABPlan:
    backend: str = field(default="openvino", metadata={"help": "tf or openvino"})
    device: str = field(default="CPU", metadata={"help": "device to run on (OpenVINO: CPU, GPU, AUTO, ...)"})
    precision: str = field(default="FP32", metadata={"help": "inference precision: FP32, FP16, BF16 or INT8"})
    # measurement budget, wall clock, all arms together
    seconds: float = field(default=10.0, metadata={"help": "measurement budget, both arms"})
    # timed calls per arm per turn (after one untimed call)
    block: int = field(default=5, metadata={"help": "timed calls per arm per turn"})
    warmup: int = 20  # untimed calls after loading, per arm and replica
    replicas: int = 2  # loads per arm, timed in rotation: a single load's offset (~0.5 %) averages out
    # fixed reference workloads (harness.gate.drift) timed as extra arms "reference:<name>" by this checkout's worker
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.block < 1 or self.warmup < 0 or self.replicas < 1:
            raise ConfigError(
                f"A/B plan seconds={self.seconds}, block={self.block}, warmup={self.warmup}, "
                f"replicas={self.replicas}: need seconds > 0, block >= 1, warmup >= 0, replicas >= 1"
            )


@dataclass
class Session:
    """Raw samples (seconds per call) per arm label as one block per turn, and the wall-clock seconds the
    measurement took."""

    blocks: dict[str, list[list[float]]] = field(default_factory=dict)
    seconds: float = 0.0
    turns: int = 0

    def samples(self, label: str) -> FloatArray:
        return np.concatenate([np.asarray(block) for block in self.blocks[label]])

    def compare(self, name: str, base: str, new: str, options: GateOptions) -> Comparison:
        return compare_interleaved(name, self.blocks[base], self.blocks[new], options)


class CheckoutWorker:
    """A running worker process for the arms of one checkout: start it, ask it for blocks, close it."""

    def __init__(
        self,
        checkout: Path | None,
        arms: Sequence[Arm],
        plan: ABPlan,
        batch_file: Path,
        log_dir: Path,
        references: Sequence[str] = (),
    ) -> None:
        self.labels = [arm.label for arm in arms] + [REFERENCE_PREFIX + name for name in references]
        if checkout is not None and not (Path(checkout) / "harness" / "__init__.py").is_file():
            raise ConfigError(
                f"{checkout}: not an edgebench checkout (no harness/__init__.py); pass the folder "
                "that holds harness/ and pyproject.toml"
            )
        self.root = Path(checkout).resolve() if checkout else Path(__file__).resolve().parents[2]  # holds harness/
        self.shown = f" (checkout {checkout})" if checkout else ""
        # errors name the artifact as the user gave it, not the absolute path the worker was handed
        self.given = {str(Path(arm.artifact).resolve()): str(arm.artifact) for arm in arms}
        spec = {
            "backend": plan.backend,
            "device": plan.device,
            "precision": plan.precision,
            "batch_file": str(batch_file),
            "warmup": plan.warmup,
            "replicas": plan.replicas,
            "references": list(references),
            "arms": [
                {"label": arm.label, "artifact": str(Path(arm.artifact).resolve()), "slowdown": arm.slowdown}
                for arm in arms
            ],
        }
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        self.log = log_dir / f"worker-{_slug('-'.join(arm.label for arm in arms))}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=self.root,
                env=env,
            )
        self.ready = self._receive()

    def measure(self, label: str, calls: int, turn: int) -> list[float]:
        self._send({"cmd": "measure", "arm": label, "calls": calls, "turn": turn})
        return [ns / 1e9 for ns in self._receive()["samples_ns"]]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self._send({"cmd": "quit"})
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until the worker answers or dies
        if not line:
            self.process.wait()
            raise ConfigError(
                f"A/B worker for {', '.join(self.labels)} exited with code {self.process.returncode} "
                f"before answering; see {self.log}: {_tail(self.log)}"
            )
        message = json.loads(line)
        if "error" in message:
            error = str(message["error"])
            for resolved, given in self.given.items():
                error = error.replace(resolved, given)
            raise ConfigError(f"A/B arm {message.get('arm')!r} could not load{self.shown}: {error}")
        answer: dict[str, Any] = message  # the worker's JSON line: an object
        return answer


class ArmPool:
    """The arms of a measurement on one input batch, one worker process per checkout; closes them on exit."""

    def __init__(self, arms: Sequence[Arm], plan: ABPlan, batch: FloatArray) -> None:
        self.labels = [arm.label for arm in arms]
        # the references run in this checkout's worker (other checkouts may predate harness.gate.drift)
        self.references = [REFERENCE_PREFIX + name for name in plan.references]
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"A/B arms need distinct labels, got {self.labels}")
        self._tmp = tempfile.TemporaryDirectory(prefix="edgebench-ab-")
        self.dir = Path(self._tmp.name)
        batch_file = self.dir / "batch.npy"
        np.save(batch_file, np.ascontiguousarray(batch, dtype=np.float32))
        by_checkout: dict[Path | None, list[Arm]] = {}
        for arm in arms:
            by_checkout.setdefault(Path(arm.checkout).resolve() if arm.checkout else None, []).append(arm)
        self.workers: list[CheckoutWorker] = []
        try:
            if plan.references and None not in by_checkout:
                by_checkout[None] = []  # a worker of this checkout just for the references
            for checkout, group in by_checkout.items():
                self.workers.append(
                    CheckoutWorker(
                        checkout, group, plan, batch_file, self.dir, plan.references if checkout is None else ()
                    )
                )
        except BaseException:
            self.close()
            raise
        self._worker_of = {label: worker for worker in self.workers for label in worker.labels}

    def measure(self, label: str, calls: int, turn: int = 0) -> list[float]:
        return self._worker_of[label].measure(label, calls, turn)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self._tmp.cleanup()

    def __enter__(self) -> ArmPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure_interleaved(pool: ArmPool, seconds: float, block: int, labels: Sequence[str] | None = None) -> Session:
    """Turns of ``block`` calls per arm until ``seconds`` of wall clock passed. The order rotates every turn
    (AB BA for two arms; ABC BCA CAB for three), so every arm runs in every position equally often."""
    labels = list(labels or pool.labels)
    session = Session({label: [] for label in labels})
    start = time.perf_counter()
    while session.turns == 0 or time.perf_counter() - start < seconds:
        shift = session.turns % len(labels)
        for label in labels[shift:] + labels[:shift]:
            session.blocks[label].append(pool.measure(label, block, session.turns))
        session.turns += 1
    session.seconds = time.perf_counter() - start
    return session


def run_ab(
    base: Arm,
    new: Arm,
    plan: ABPlan,
    batch: FloatArray,
    options: GateOptions = GateOptions(threshold=INTERLEAVED_THRESHOLD),
    reruns: int = 0,
) -> tuple[GateResult, Session]:
    """Measure BASE and NEW interleaved in one job (with ``plan.references`` as extra arms, stored, not
    judged: BASE and NEW already share every turn) and gate NEW against BASE; while the outcome is
    inconclusive (or there were too few turns), measure another ``plan.seconds`` and judge all turns
    again, up to ``reruns`` times."""
    from harness.measure import processor_identity

    name = f"{plan.backend}/{plan.device}/{plan.precision}/batch{len(batch)}"
    with ArmPool([base, new], plan, batch) as pool:
        labels = [base.label, new.label, *pool.references]
        session = measure_interleaved(pool, plan.seconds, plan.block, labels)
        comparison = session.compare(name, base.label, new.label, options)
        attempt = 0
        while comparison.outcome == "inconclusive" and attempt < reruns:  # incl. too few turns
            attempt += 1
            more = measure_interleaved(pool, plan.seconds, plan.block, labels)
            for label in labels:
                session.blocks[label].extend(more.blocks[label])
            session.turns += more.turns
            session.seconds += more.seconds
            comparison = session.compare(name, base.label, new.label, options)
    cpu = processor_identity()["cpu_brand"]
    return GateResult((comparison,), options, cpu, cpu, test="Wilcoxon (per-turn ratios)", reruns=attempt), session


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(empty log)"
    except OSError:
        return "(no log)"
