"""Shared by the fleet suites (test_fleet_*.py, test_slurm.py): the short node suite, the node spec the fleet
tests run, helpers around a run, and synthetic node results (for the merge tests and the 200-node merge
benchmark). Not a test module: pytest puts suites/ on sys.path, so the suites import it by name."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np

from harness import fileio, fleet, store
from harness.backends import result_label
from harness.training import train

# One node's share of the edge suite in these tests: the latency benchmarks (TF, OpenVINO at each precision the
# node runs natively, INT8 included, and null) and the FP32 parity case.
# Accuracy-aware INT8 is left out: its search costs a minute per node and adds nothing the fleet's own
# tests check.
QUICK_SUITE = ("-k", "(test_infer_latency_batch1 and not int8-ac) or FP32-b1")
NULL_ONLY = ("-k", "test_infer_latency_batch1 and null")


def suite_node_spec(s3_location: store.S3Location, suite_artifacts) -> fleet.NodeSpec:
    """The suite model, its held-out images and calibration images from its training split in the test
    bucket (as `edgebench fleet run` lays them out), and where node results go (the ``fleet_spec`` fixture of
    each fleet suite)."""
    artifact, test_dir, training_dir = suite_artifacts(train.DEFAULT_MODEL_ID)
    s3 = store.S3Store(s3_location)
    artifact_uri = s3.upload_file(artifact, s3_location.key("artifacts", "model.tar.gz"))
    s3.upload_tree(test_dir, s3_location.key("artifacts", "test"))
    calibration_uri = s3.upload_images(
        fleet.calibration_subset(training_dir).images, s3_location.key("artifacts", "calibration")
    )
    return fleet.NodeSpec(
        run_id="run-1",
        node_id="",
        artifact_uri=artifact_uri,
        results=s3_location,
        test_images_uri=s3.location.uri(s3_location.key("artifacts", "test")),
        calibration_uri=calibration_uri,
        pytest_args=QUICK_SUITE,
        timeout_s=600,
    )


def download(spec: fleet.NodeSpec, tmp_path: Path) -> Path:
    return fleet.download_run(spec.results, spec.run_id, tmp_path / spec.run_id)


def first_worker_running_pytest(pids: dict[str, int], psutil, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address, pid in pids.items():
            try:
                children = psutil.Process(pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            if any("pytest" in " ".join(child.cmdline()) for child in children if child.is_running()):
                return address
        time.sleep(0.2)
    raise AssertionError("no worker started its node's suite within 120 s")


# ------------------------------------------------------------------------------------------------
# Synthetic node results (for merge tests and the 200-node merge benchmark)

PROCESSORS = (
    "Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz",
    "Intel(R) Core(TM) i7-1185G7 @ 3.00GHz",
    "Intel(R) Xeon(R) Platinum 8480+",
    "Intel(R) Atom(TM) x6425E CPU @ 2.00GHz",
)
INT8_SKIP = (
    "suites/test_latency.py::test_infer_latency_batch1[openvino-int8]",
    "INT8 needs calibration images from the training split: pass --edgebench-calibration DIR|s3://BUCKET/PREFIX",
)
# Logit noise on the candidate: FP32 within every FP32 bound; INT8 changes a few decisions, within INT8's.
NOISE = {"FP32": 1e-7, "INT8": 0.3}


def _parity(rng, precision: str, noise: float) -> dict:
    """A real ParityResult's JSON: 200 labelled images, reference logits decisive on the true class."""
    from harness import parity

    labels = rng.integers(0, 5, 200)
    reference = rng.normal(0, 1, (200, 5))
    reference[np.arange(200), labels] += 4.0
    return parity.compare(reference, reference + rng.normal(0, noise, reference.shape), precision, labels).to_json()


def synthetic_node(
    node_dir: Path,
    cpu: str,
    tf_ms: float,
    ov_ms: float,
    samples: int = 100,
    int8: bool = True,
    int8_noise: float = NOISE["INT8"],
) -> Path:
    """A node folder as `pytest -m edge --benchmark-save-data --edgebench-node-report` leaves it: one latency
    benchmark per rung (label, accuracy and parity in extra_info). ``int8=False``: INT8 skipped, as on a node
    without calibration images."""
    rng = np.random.default_rng(zlib.crc32(f"{node_dir.name}/{cpu}".encode()))  # same data every run
    rungs = [("tf", "FP32", tf_ms, None), ("openvino", "FP32", ov_ms, NOISE["FP32"]), ("null", "FP32", 0.0003, None)]
    if int8:
        rungs.insert(2, ("openvino", "INT8", ov_ms / 2, int8_noise))
    benchmarks = [_synthetic_benchmark(rng, *rung, samples) for rung in rungs]
    machine = {"cpu_brand": cpu, "isa_flags": ["avx2", "avx512f"], "usable_cpus": 4, "openvino_devices": {"CPU": cpu}}
    fileio.write_json(node_dir / "benchmark.json", {"machine_info": {"edgebench": machine}, "benchmarks": benchmarks})
    figure = {**_parity(rng, "FP32", NOISE["FP32"]), "case": "given-openvino-CPU-FP32-b1", "backend": "openvino"}
    outcomes = {
        "passed": [{"test": f"t{i}", "reason": ""} for i in range(len(rungs) + 1)],
        "failed": [],
        "skipped": [] if int8 else [dict(zip(("test", "reason"), INT8_SKIP, strict=True))],
    }
    fileio.write_json(node_dir / "report.json", fleet.node_summary(machine, [figure], outcomes, 0))
    return node_dir


def _synthetic_benchmark(
    rng: np.random.Generator, backend: str, precision: str, ms: float, noise: float | None, samples: int
) -> dict:
    """One rung's latency benchmark as pytest-benchmark saves it, label, accuracy and parity in extra_info."""
    data = list(ms / 1e3 * rng.lognormal(0, 0.05, samples))
    label = result_label(backend, precision)
    info = {
        "backend": backend,
        "device": "CPU",
        "precision": precision,
        "label": label,
        "accuracy": 0.92 if backend == "tf" else None,
    }
    if noise is not None:
        info["parity"] = _parity(rng, precision, noise)
        info["accuracy"] = info["parity"]["candidate_accuracy"]
    stats = {
        "data": data,
        "median": float(np.median(data)),
        "min": min(data),
        "max": max(data),
        "mean": float(np.mean(data)),
        "rounds": samples,
    }
    return {
        "name": f"test_infer_latency_batch1[{label}]",
        "extra_info": info,
        "stats": stats,
        "params": {"latency_case": [backend, precision]},
    }


def synthetic_run(run_dir: Path, nodes: int, without_int8: tuple[int, ...] = ()) -> Path:
    """``nodes`` published node folders (report.json as the fleet completes it, manifest last); the nodes
    numbered in ``without_int8`` did not run INT8."""
    for i in range(nodes):
        cpu = PROCESSORS[i % len(PROCESSORS)]
        node_dir = synthetic_node(
            run_dir / f"node-{i:03d}", cpu, tf_ms=20.0 + i % 7, ov_ms=4.0 + (i % 4) / 2, int8=i not in without_int8
        )
        files = {name: node_dir / name for name in ("benchmark.json", "report.json")}
        fleet.complete_report(files, run_dir.name, node_dir.name, node_dir / "report.json")
        fileio.write_json(node_dir / fleet.MANIFEST, fleet.manifest_for(run_dir.name, node_dir.name, files))
    return run_dir
