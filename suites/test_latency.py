"""Latency of ``Backend.infer`` alone (inputs preprocessed in fixtures), one benchmark per backend x precision.

Run serially (pytest-benchmark disables itself under xdist): ``pytest -m edge --benchmark-json=node.json``.
The JSON's machine_info["edgebench"] holds the processor identity; each benchmark's extra_info holds the
backend's own description (versions, device full name, precision in effect, hint, batch) and, for drift
compensation, ``extra_info["edgebench_drift"]``: the raw per-turn series of the model and of a fixed
reference workload timed between its calls (format: :mod:`harness.gate.drift`), which ``edgebench gate``
compares as model ÷ reference per turn.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.backends import BackendConfig, result_label
from harness.gate import drift
from harness.measure import TimingPlan, time_infer
from harness.pytest_plugin.helpers import skip_unless_native

pytestmark = pytest.mark.latency  # the node's benchmarks are also marked edge; the benchmark_app check is slow


ROUNDS = 150  # timed calls per benchmark (after WARMUP): enough for the gate's rank test and bootstrap
WARMUP = 5
BLOCK = 5  # a turn: BLOCK timed reference calls (after one untimed), one untimed model call, BLOCK timed model calls


@pytest.fixture(scope="module")
def references():
    """The drift reference per (device, precision), compiled once per module."""
    made: dict[tuple[str, str], drift.Reference] = {}

    def get(device: str, precision: str) -> drift.Reference:
        if (device, precision) not in made:
            made[device, precision] = drift.make_reference(drift.REFERENCE, device, precision)
        return made[device, precision]

    return get


def time_with_reference(benchmark, backend, batch: np.ndarray, reference: drift.Reference) -> np.ndarray:
    """pytest-benchmark times one model call per round (``stats.data`` stays the model's raw seconds); every
    BLOCK rounds, before the round and untimed by it, the reference's block is timed here and one untimed
    model call absorbs the switch back. Turn i is (reference block i, model calls i·BLOCK … i·BLOCK + BLOCK − 1);
    the series go to extra_info[drift.FIELD]."""
    reference_ns: list[list[int]] = []
    rounds = [0]

    def round_start() -> None:
        if rounds[0] >= WARMUP and (rounds[0] - WARMUP) % BLOCK == 0:
            reference_ns.append(drift.time_block(reference.run, BLOCK))
            backend.infer(batch)
        rounds[0] += 1

    out = benchmark.pedantic(
        backend.infer, args=(batch,), setup=round_start, warmup_rounds=WARMUP, rounds=ROUNDS, iterations=1
    )
    data = [round(seconds * 1e9) for seconds in benchmark.stats.stats.data]
    model_ns = [data[start : start + BLOCK] for start in range(0, len(data), BLOCK)]
    series = drift.DriftSeries(reference.describe(), model_ns, reference_ns)
    benchmark.extra_info[drift.FIELD] = series.to_json()
    return out


@pytest.mark.edge
def test_infer_latency_batch1(benchmark, model_under_test, latency_case, pytestconfig, record_property, references):
    """One benchmark per backend x precision the node runs: TF FP32 (the reference), each candidate at every
    precision its device runs natively, and the null backend (the harness's own cost). extra_info carries
    the precision in effect and that precision's agreement with TF FP32 and accuracy."""
    name, precision, quantization = latency_case
    device = "CPU" if name in ("tf", "null") else pytestconfig.getoption("edgebench_device")
    if name == "openvino":
        skip_unless_native(device, precision)
    config = BackendConfig(device, precision, 1, quantization=quantization)
    backend = model_under_test.backend(name, config)
    benchmark.group = "infer-batch1"
    benchmark.extra_info.update(
        {
            **backend.describe(),
            "label": result_label(name, precision, quantization),
            "accuracy": model_under_test.accuracy() if name == "tf" else None,
        }
    )
    if name not in ("tf", "null"):
        verdict = model_under_test.parity(name, config)
        benchmark.extra_info.update({"accuracy": verdict.candidate_accuracy, "parity": verdict.to_json()})
    batch = model_under_test.parity_images[:1]
    if name == "null":  # the harness's own cost: no reference between its sub-microsecond calls
        logits = benchmark.pedantic(backend.infer, args=(batch,), warmup_rounds=WARMUP, rounds=ROUNDS, iterations=1)
    else:
        logits = time_with_reference(benchmark, backend, batch, references(device, precision))
        stored = benchmark.extra_info[drift.FIELD]
        assert sum(map(len, stored["model_ns"])) == len(benchmark.stats.stats.data) == ROUNDS
        assert drift.compensated_series(stored).size == len(stored["reference_ns"]) == ROUNDS // BLOCK
    assert logits.shape == (1, len(model_under_test.model.classes))
    assert len(benchmark.stats.stats.data) >= 30
    if name == "null":
        # The harness's own cost per timed call: what every other figure includes on top of inference.
        record_property(
            "edgebench_figure",
            f"harness overhead per timed infer call (null backend median): {benchmark.stats.stats.median * 1e6:.2f} µs",
        )


@pytest.mark.edge
def test_openvino_throughput_async_queue(benchmark, model_under_test, record_property):
    """Throughput scenario: THROUGHPUT hint, AsyncInferQueue, 64 images per round, 30 rounds; images/s in
    extra_info."""
    backend = model_under_test.backend("openvino", BackendConfig(batch=1, hint="THROUGHPUT"))
    images = np.ascontiguousarray(model_under_test.parity_images[:64])
    benchmark.group = "throughput-64-images"
    benchmark.extra_info.update({**backend.describe(), "label": "openvino-throughput"})
    rates = []
    benchmark.pedantic(lambda: rates.append(backend.infer_many(images)), warmup_rounds=1, rounds=30, iterations=1)
    benchmark.extra_info["images_per_second"] = float(np.median(rates))
    record_property(
        "edgebench_figure",
        f"OpenVINO throughput (THROUGHPUT hint, {backend.describe()['num_streams']} "
        f"streams): {np.median(rates):.0f} images/s",
    )
    assert backend.describe()["performance_hint"] == "THROUGHPUT" and np.median(rates) > 0
    assert len(benchmark.stats.stats.data) >= 30


@pytest.mark.slow
def test_harness_vs_benchmark_app_prints_ratio_and_stays_within_2x(model_under_test, tmp_path, record_property):
    """The same IR, device, hint and precision timed by edgebench and by OpenVINO's benchmark_app: prints
    harness median ÷ benchmark_app median (target <= 1.03)."""
    import openvino as ov

    tool = shutil.which("benchmark_app") or shutil.which("benchmark_app", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("benchmark_app not found beside this Python or on PATH (it ships with the openvino wheel)")
    ir = tmp_path / "model.xml"
    converted = ov.convert_model(str(model_under_test.model.saved_model_dir))
    converted.reshape({converted.input(0): [1, 224, 224, 3]})
    ov.save_model(converted, ir, compress_to_fp16=False)
    backend = model_under_test.backend("openvino", BackendConfig(batch=1))
    images = np.ascontiguousarray(model_under_test.parity_images[:1])
    tool_medians, our_medians = [], []
    for _ in range(3):  # interleaved rounds: this machine's speed drifts more between minutes than between tools
        completed = subprocess.run(
            [tool, "-m", str(ir), "-d", "CPU", "-hint", "latency", "-infer_precision", "f32", "-t", "5"],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        tool_medians.append(float(re.search(r"Median:\s+([\d.]+) ms", completed.stdout).group(1)))
        stats = time_infer(backend, images, TimingPlan(warmup=20, min_calls=300, min_seconds=5))
        our_medians.append(float(np.median(stats.samples_ms)))
    ours, tool_median = float(np.median(our_medians)), float(np.median(tool_medians))
    ratio = ours / tool_median
    record_property(
        "edgebench_figure",
        f"harness median {ours:.3f} ms / benchmark_app median {tool_median:.3f} ms "
        f"= {ratio:.3f} (target <= 1.03; rounds {our_medians} vs {tool_medians})",
    )
    # A sanity bound, not the target: shared VMs switch between speed regimes 1.5x apart within minutes
    # (seen here: 3.8 and 5.7 ms for this model), and a round can land in either.
    assert ratio <= 2.0, f"harness {ours:.3f} ms vs benchmark_app {tool_median:.3f} ms"
