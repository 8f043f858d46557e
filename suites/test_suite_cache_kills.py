"""Kills against the pytest suite's own model cache (issue 14, item 4: "no cache is left corrupt", the suite
cache included). The suite trains each model once into ``<rootdir>/.cache/edgebench/pytest/model-<key>``
under a file lock, and ``model.tar.gz`` is written last (temporary file, then rename). A child process runs
that same code (``trained_suite_model``, with one epoch on a tiny generated dataset so a training takes
seconds) and is SIGKILLed at fractions of an uninterrupted run's duration: in dataset generation, in the
holdout split, in training, in the tarball write. After every kill the cache either has no ``model.tar.gz``
or a complete one, and a dataset either absent, being generated, or complete; an uninterrupted call on what
the kill left then completes the cache (the dataset loads, the model imports: SavedModel and label map
checked), and a further call reuses it without training again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import data, edge, fileio

# One epoch on 3 images per class: the suite cache's code path (dataset, split, train, tar) in seconds.
CHILD = """
import sys
from pathlib import Path
from harness import data
from harness.pytest_plugin import models
from harness.training import train

cache = Path(sys.argv[1])
models.SUITE_TRAINING = {train.DEFAULT_MODEL_ID: {"epochs": 1, "batch_size": 4}}
dataset = models.generated_dataset(cache, data.GeneratorConfig(images_per_class=3, seed=5))
artifact, _, _ = models.trained_suite_model(cache, dataset, train.DEFAULT_MODEL_ID, seed=1)
print(artifact)
"""
DATASET = "weather-seed5-n3"  # the child's generated dataset in the cache
FRACTIONS = (0.01, 0.015, 0.02, 0.03, 0.2, 0.5, 0.8, 0.9, 0.95, 0.97, 0.99)  # of an uninterrupted call


def _call(cache: Path, kill_after: float | None = None) -> tuple[subprocess.CompletedProcess[str] | None, float]:
    """Run the child on ``cache``; with ``kill_after``, SIGKILL its process group that many seconds in."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cache)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=kill_after if kill_after is not None else 600)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return None, time.perf_counter() - started
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr), time.perf_counter() - started


def _cache_state(cache: Path) -> str:
    """What a kill left. Dataset: absent, being generated (staging folders only) or complete. Model: absent,
    a folder without ``model.tar.gz`` (the next call starts it over) or complete. A dataset with its marker
    that does not load, or a ``model.tar.gz`` that does not import, is corruption."""
    dataset = cache / DATASET
    if dataset.is_dir():
        try:
            data.load_dataset(dataset, check_images=True)
            parts = ["dataset complete"]
        except Exception as exc:  # noqa: BLE001 - a dataset folder that does not load is corrupt
            parts = [f"CORRUPT dataset: {exc}"]
    else:
        parts = ["dataset being generated" if fileio.stale_staging(dataset) else "no dataset"]
    folders = [p for p in cache.glob("model-*") if p.is_dir()]
    artifact = folders[0] / "model.tar.gz" if folders else None
    if artifact is None:
        parts.append("no model folder")
    elif not artifact.is_file():
        parts.append("model folder without model.tar.gz")
    else:
        try:
            edge.import_local(
                artifact, cache.parent / f"check-{time.monotonic_ns()}", artifact.parent / "split" / "test"
            )
            parts.append("model complete")
        except Exception as exc:  # noqa: BLE001 - anything but a clean import is a corrupt cache
            parts.append(f"CORRUPT model: {exc}")
    return ", ".join(parts)


@pytest.mark.slow
def test_killed_suite_model_training_leaves_no_corrupt_cache(tmp_path, record_property):
    calibration, seconds = _call(tmp_path / "calibration")
    assert calibration is not None and calibration.returncode == 0, calibration and calibration.stderr[-2000:]
    states, artifact = [], None
    for index, fraction in enumerate(FRACTIONS):  # each kill on a fresh cache, at the same point of a whole call
        cache = tmp_path / f"cache-{index}"
        finished, _ = _call(cache, kill_after=fraction * seconds)
        state = "ran to the end" if finished else _cache_state(cache)
        states.append(f"{fraction:.1%}: {state}")
        recovered, _ = _call(cache)
        assert recovered is not None and recovered.returncode == 0, (state, recovered and recovered.stderr[-2000:])
        artifact = Path(recovered.stdout.split()[0])
        assert _cache_state(cache) == "dataset complete, model complete", (state, _cache_state(cache))
    assert artifact is not None
    stamp = artifact.stat().st_mtime_ns
    reused, reuse_seconds = _call(artifact.parent.parent)
    assert reused is not None and reused.returncode == 0 and artifact.stat().st_mtime_ns == stamp
    figure = (
        f"suite model cache under SIGKILL: {len(FRACTIONS)} kills (an uninterrupted call {seconds:.0f} s), left "
        f"[{'; '.join(states)}]; each re-run completed the cache (dataset loads, model imports), and a further "
        f"call reused it without training ({reuse_seconds:.1f} s)"
    )
    record_property("edgebench_figure", figure)
    assert not any("CORRUPT" in state for state in states), figure
