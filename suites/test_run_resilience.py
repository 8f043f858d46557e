"""Kills at any point (issue 14, item 4) and two runs at once (item 5), on the real ``edgebench run``.

Each run is a subprocess of the installed CLI with a tiny generated dataset, 1 epoch and few timing calls. The
run appends each stage to ``$EDGEBENCH_STAGE_LOG`` as it starts (``progress.STAGE_LOG_ENV``); a kill point is
(stage, fraction): the signal goes to the run's process group (as Ctrl-C does) when the stage starts plus that
fraction of the stage's duration, measured on a complete run of the same size first. The stage actually
running when the signal went out is what is reported.

Kills in a sequence share one cache folder and one reports folder; each round starts on a fresh dataset seed,
so its first kill lands in dataset generation and later ones in validation-set generation. After every kill:
no ``report.json`` anywhere under reports/ is partial, every cached dataset is complete (marker, every image
decodes, the count the generator promises), and for SIGINT the process exits 130 having printed exactly one
line after the signal. Every run after a kill is a re-run on what the kill left: it must reach its own kill
point without an error, and each round ends with a run that must complete (exit 0, a complete report). A kill
point counts as a clean recovery when all of that holds.

``make test`` runs a few kill points (``test_kills_subset``); the whole sweep of 20 points per signal is
``pytest -m slow suites/test_run_resilience.py`` (about 25 minutes on 2 cores).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import data, progress, report, workflow

EDGEBENCH = Path(sys.executable).with_name("edgebench")
TINY_RUN = ("run", "--images-per-class", "3", "--epochs", "1", "--hp", "batch_size=4", "--min-calls", "3")
# In workflow order: dataset generation, training (+ model upload), test-image upload, import, validation-set
# generation, TF load, OpenVINO convert + compile, timing, report write.
STAGES = (
    "dataset",
    "train",
    "store",
    "import",
    "validation",
    "tf:compile",
    "openvino:compile",
    "openvino:timing",
    "report",
)
RUN_TIMEOUT = 600.0
INTERRUPTED = "edgebench: interrupted"


@dataclasses.dataclass
class Finished:
    """One run of ``edgebench run`` as seen from outside."""

    returncode: int
    stdout: str
    stderr: str
    stages: list[tuple[float, str]]  # (unix time, stage) as the run logged them
    stderr_after_signal: str = ""
    signalled_in: str | None = None  # the stage running when the signal went out; None: no signal sent

    def durations(self) -> dict[str, float]:
        """Seconds from each stage's start to the next one's (the last: to the end of the log)."""
        ends = [*(t for t, _ in self.stages[1:]), self.stages[-1][0] + 0.05]
        return {name: end - start for (start, name), end in zip(self.stages, ends, strict=True)}


def _read_in_background(proc: subprocess.Popen) -> tuple[dict[str, list[bytes]], list[threading.Thread]]:
    """Threads that keep reading the child's stdout and stderr into chunks (a full pipe would stall it)."""
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    readers = [
        threading.Thread(target=lambda s=s, n=n: chunks[n].extend(iter(lambda: s.read1(4096), b"")), daemon=True)
        for s, n in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
    ]
    for reader in readers:
        reader.start()
    return chunks, readers


def _signal_in_stage(
    proc: subprocess.Popen,
    kill: tuple[str, float, signal.Signals],
    durations: dict[str, float],
    stage_log: Path,
    stderr_chunks: list[bytes],
    deadline: float,
) -> tuple[str | None, int]:
    """The signal to the process group ``fraction`` of the stage's duration after the stage starts: (the stage
    logged last when it went, bytes of stderr before it); (None, 0) when the run ended first."""
    stage, fraction, sig = kill
    while proc.poll() is None and time.monotonic() < deadline:
        started = [t for t, name in _read_stages(stage_log) if name == stage]
        if started:
            time.sleep(max(0.0, started[0] + fraction * durations.get(stage, 0.0) - time.time()))
            if proc.poll() is None:
                logged = _read_stages(stage_log)
                signalled_in = logged[-1][1] if logged else "start"
                time.sleep(0.05)  # what was written before the signal reaches the reader first
                mark = sum(len(c) for c in stderr_chunks)
                os.killpg(proc.pid, sig)
                return signalled_in, mark
            break
        time.sleep(0.01)
    return None, 0


def _read_stages(path: Path) -> list[tuple[float, str]]:
    if not path.is_file():
        return []
    lines = [line.split(" ", 1) for line in path.read_text().splitlines() if " " in line]
    return [(float(t), name) for t, name in lines]


def run_edgebench(
    workdir: Path,
    seed: int,
    kill: tuple[str, float, signal.Signals] | None = None,
    durations: dict[str, float] | None = None,
    extra: tuple[str, ...] = (),
) -> Finished:
    """``edgebench run`` with reports and caches under ``workdir``; with ``kill=(stage, fraction, signal)``
    the signal goes to its process group ``fraction`` of the stage's duration after the stage starts."""
    stage_log = workdir / f"stages-{time.monotonic_ns()}.log"
    env = {**os.environ, progress.STAGE_LOG_ENV: str(stage_log), "PYTHONUNBUFFERED": "1"}
    argv = [str(EDGEBENCH), *TINY_RUN, "--seed", str(seed), "--reports-dir", str(workdir / "reports")]
    argv += ["--cache-dir", str(workdir / "cache"), *extra]
    # A new session, as a terminal's foreground job; SIGINT handled by default even when pytest itself was
    # started in the background (where a shell ignores SIGINT, and children inherit that).
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    chunks, readers = _read_in_background(proc)
    signalled_in, mark = None, 0
    deadline = time.monotonic() + RUN_TIMEOUT
    if kill is not None:
        signalled_in, mark = _signal_in_stage(proc, kill, durations or {}, stage_log, chunks["stderr"], deadline)
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"edgebench run did not end within {RUN_TIMEOUT:.0f} s (kill point {kill})")
    for reader in readers:
        reader.join(timeout=10)
    stderr = b"".join(chunks["stderr"])
    return Finished(
        proc.returncode,
        b"".join(chunks["stdout"]).decode(errors="replace"),
        stderr.decode(errors="replace"),
        _read_stages(stage_log),
        stderr[mark:].decode(errors="replace") if signalled_in else "",
        signalled_in,
    )


def report_problems(reports: Path) -> list[str]:
    """Every ``report.json`` under ``reports`` is a complete run report; a folder of the last run without one
    is fine (the run was killed before it wrote it)."""
    problems = []
    for path in sorted(reports.rglob("report.json")):
        try:
            document = report.read_run_report(path)
        except Exception as exc:  # noqa: BLE001 - any failure to read it back is a partial report
            problems.append(f"{path}: {exc}")
            continue
        if document.get("run_id") != path.parent.name or "step_seconds" not in document:
            problems.append(f"{path}: incomplete (run_id {document.get('run_id')!r}, keys {sorted(document)})")
    return problems


def cache_problems(cache: Path) -> list[str]:
    """Every generated dataset under ``cache`` is complete: its marker matches, each image decodes, and it has
    the images its config promises. Staging folders of an interrupted generation may remain until the next
    generation (under the same lock) removes them; they are not datasets."""
    problems = []
    for marker in sorted(cache.rglob(".edgebench-dataset.json")):
        root = marker.parent
        if root.name.startswith("."):
            continue  # a staging folder whose rename never happened
        try:
            config = json.loads(marker.read_text())
            dataset = data.load_dataset(root, check_images=True)
        except Exception as exc:  # noqa: BLE001 - unreadable is corrupt
            problems.append(f"{root}: {exc}")
            continue
        expected = config["images_per_class"] * len(config["classes"])
        if len(dataset.images) != expected:
            problems.append(f"{root}: {len(dataset.images)} images, the generator makes {expected}")
    problems.extend(
        f"{root}: a dataset folder without its marker"
        for root in sorted(p for p in (cache / "datasets").glob("weather-*") if p.is_dir())
        if not (root / ".edgebench-dataset.json").is_file()
    )
    return problems


@dataclasses.dataclass
class KillOutcome:
    stage: str  # the kill point's stage
    signal: str
    landed_in: str | None  # the stage running when the signal went out (None: the run ended first)
    returncode: int
    problems: list[str]

    @property
    def clean(self) -> bool:
        return not self.problems


def _finished_first(run: Finished) -> bool:
    """The run completed before the signal landed (or went out): the report write is milliseconds long."""
    return run.signalled_in is None or run.returncode == 0


def _check_killed(run: Finished, sig: signal.Signals, workdir: Path, may_finish: bool = False) -> list[str]:
    """``may_finish``: a run that completes before the signal lands is no failure (the kill point is the last
    stage); what it left must still be complete."""
    problems = report_problems(workdir / "reports") + cache_problems(workdir / "cache")
    if _finished_first(run):
        if not may_finish:
            problems.append(f"the run ended (exit {run.returncode}) before the signal: {_last_line(run.stderr)}")
    elif sig == signal.SIGKILL and run.returncode != -signal.SIGKILL:
        problems.append(f"exit {run.returncode} after SIGKILL")
    elif sig == signal.SIGINT:
        after = [line for line in run.stderr_after_signal.splitlines() if line.strip()]
        if run.returncode != 130 or after != [INTERRUPTED]:
            problems.append(f"SIGINT: exit {run.returncode}, {len(after)} line(s) after it: {after[:6]}")
    before = run.stderr[: len(run.stderr) - len(run.stderr_after_signal)]
    if "edgebench: error" in before or "Traceback" in run.stderr:
        problems.append(f"an error before the kill point (a failed re-run): {_last_line(before)}")
    return problems


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _check_complete(run: Finished, workdir: Path) -> list[str]:
    problems = report_problems(workdir / "reports") + cache_problems(workdir / "cache")
    if run.returncode != 0 or "Traceback" in run.stderr:
        problems.append(f"re-run: exit {run.returncode}: {_last_line(run.stderr)}")
    leftovers = [p.name for p in (workdir / "cache" / "datasets").iterdir() if p.name.startswith(".")]
    if leftovers:
        problems.append(f"staging folders left in the dataset cache after a complete run: {leftovers}")
    return problems


def kill_sweep(
    workdir: Path, rounds: list[list[tuple[str, signal.Signals]]], rng: random.Random, base_seed: int
) -> tuple[list[KillOutcome], Finished]:
    """A complete run first (its stage durations place the kill points), then each round on a fresh dataset
    seed: its kills in order, then a run that must complete. Returns one outcome per kill point."""
    calibration = run_edgebench(workdir, seed=base_seed)
    assert calibration.returncode == 0, calibration.stderr[-3000:]
    durations = calibration.durations()
    outcomes: list[KillOutcome] = []
    for index, kills in enumerate(rounds):
        seed = base_seed + 1 + index
        for stage, sig in kills:
            fraction = rng.random()
            run = run_edgebench(workdir, seed, kill=(stage, fraction, sig), durations=durations)
            outcomes.append(
                KillOutcome(
                    stage,
                    sig.name,
                    None if _finished_first(run) else run.signalled_in,
                    run.returncode,
                    _check_killed(run, sig, workdir, may_finish=stage == "report"),
                )
            )
            with (workdir / "kills.log").open("a") as log:  # progress of a long sweep, readable while it runs
                log.write(json.dumps({**dataclasses.asdict(outcomes[-1]), "seed": seed, "fraction": fraction}) + "\n")
        final = run_edgebench(workdir, seed)
        final_problems = _check_complete(final, workdir)
        with (workdir / "kills.log").open("a") as log:
            log.write(json.dumps({"re-run": seed, "returncode": final.returncode, "problems": final_problems}) + "\n")
        for outcome in outcomes[len(outcomes) - len(kills) :]:  # the round's re-run proves its kills' recovery
            outcome.problems += final_problems
    return outcomes, calibration


def _figure(title: str, outcomes: list[KillOutcome]) -> str:
    landed: dict[str, int] = {}
    for outcome in outcomes:
        landed[outcome.landed_in or "(after the end)"] = landed.get(outcome.landed_in or "(after the end)", 0) + 1
    clean = sum(outcome.clean for outcome in outcomes)
    where = ", ".join(f"{stage} {count}" for stage, count in landed.items())
    lines = [f"{title}: {len(outcomes)} kill points tried, {clean} clean recoveries [{where}]"]
    lines += [
        f"  not clean: {o.signal} at {o.stage} (landed in {o.landed_in}): {'; '.join(o.problems)}"
        for o in outcomes
        if not o.clean
    ]
    return "\n".join(lines)


def _assert_clean(outcomes: list[KillOutcome], figure: str, record_property) -> None:
    record_property("edgebench_figure", figure)  # in the terminal summary (a passing test's print() is hidden)
    assert all(o.landed_in for o in outcomes if o.stage != "report"), figure
    assert all(o.clean for o in outcomes), figure


def test_kills_subset(tmp_path, record_property):
    """SIGKILL in dataset generation, SIGINT in training, SIGKILL at the report write; then a re-run."""
    rng = random.Random(14)
    rounds = [[("dataset", signal.SIGKILL), ("train", signal.SIGINT), ("report", signal.SIGKILL)]]
    outcomes, _ = kill_sweep(tmp_path, rounds, rng, base_seed=7)
    _assert_clean(outcomes, _figure("kills (subset)", outcomes), record_property)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kills_at_any_point(tmp_path, sig, record_property):
    """20 kill points per signal, random moments (seeded): every stage twice, then dataset and training again,
    in three rounds each on a fresh dataset."""
    seed = int(os.environ.get("EDGEBENCH_KILL_SEED", "2026"))
    rng = random.Random(seed)
    rounds = [[(stage, sig) for stage in stages] for stages in (STAGES, STAGES, STAGES[:2])]
    outcomes, _ = kill_sweep(tmp_path, rounds, rng, base_seed=40)
    _assert_clean(outcomes, _figure(f"{sig.name} (seed {seed})", outcomes), record_property)


def test_two_runs_at_once_share_the_caches_and_write_separate_reports(tmp_path, record_property):
    """Both start together on a fresh dataset seed, so both want to generate the same cached datasets."""
    runs: list[Finished] = []
    threads = [threading.Thread(target=lambda: runs.append(run_edgebench(tmp_path, seed=21))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for run in runs:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert report_problems(tmp_path / "reports") == [] and cache_problems(tmp_path / "cache") == []
    documents = [report.read_run_report(path) for path in sorted((tmp_path / "reports").glob("*/report.json"))]
    assert len({d["run_id"] for d in documents}) == 2, "the two runs wrote one report folder"
    # One cached copy of each dataset, both runs trained and validated on it; nothing half-made left behind.
    cached = sorted(p.name for p in (tmp_path / "cache" / "datasets").iterdir() if not p.name.endswith(".lock"))
    assert cached == ["weather-seed1021-n20", "weather-seed21-n3"], cached
    assert documents[0]["dataset"] == documents[1]["dataset"]
    assert documents[0]["validation"]["images"] == documents[1]["validation"]["images"] == 100
    record_property(
        "edgebench_figure",
        f"two runs at once: both exit 0, reports {sorted(d['run_id'] for d in documents)}, one copy of each "
        f"cached dataset ({', '.join(cached)})",
    )


def test_a_taken_run_id_is_never_shared(tmp_path):
    """Two runs started in the same second with the same random suffix: the second gets a fresh id and folder."""
    ids = iter(["20261126T000000Z-aaaa", "20261126T000000Z-aaaa", "20261126T000000Z-bbbb"])
    first = workflow.claim_run_dir(tmp_path, make_id=lambda: next(ids))
    second = workflow.claim_run_dir(tmp_path, make_id=lambda: next(ids))
    assert first == ("20261126T000000Z-aaaa", tmp_path / "20261126T000000Z-aaaa")
    assert second == ("20261126T000000Z-bbbb", tmp_path / "20261126T000000Z-bbbb")
    assert workflow.claim_run_dir(tmp_path, "given")[1].is_dir()  # an explicit id is reused as is
