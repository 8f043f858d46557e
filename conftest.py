"""pytest wiring for edgebench: options, session fixtures shared safely across xdist workers, and the
processor identity in pytest-benchmark's JSON.

Edge nodes run ``pytest -m edge --benchmark-json=node.json`` (optionally ``--edgebench-artifact=s3://…``).
Without an artifact, a small model is trained once on the procedural dataset and cached under
``.cache/edgebench/pytest`` (file-locked, keyed by the training code and configuration).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from harness import data, edge, store, train  # noqa: E402
from harness.backends import Backend, create_backend  # noqa: E402
from harness.measure import processor_identity  # noqa: E402

# The model the suites train when no --edgebench-artifact is given: small, but trained enough that its
# outputs are far from a uniform softmax (parity on near-uniform outputs would prove little).
SUITE_DATASET = data.GeneratorConfig(images_per_class=16, seed=7)
SUITE_HYPERPARAMETERS = train.Hyperparameters(epochs=3, batch_size=16, train_only_top_layer=False,
                                              validation_split_ratio=0.0)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench")
    group.addoption("--edgebench-artifact", default=None, metavar="PATH|s3://BUCKET/KEY",
                    help="model.tar.gz to test (local path or S3 URI; S3 uses the standard AWS credential chain "
                         "and AWS_ENDPOINT_URL if set). Default: train a small model once and cache it.")
    group.addoption("--edgebench-test-images", default=None, metavar="DIR|s3://BUCKET/PREFIX",
                    help="held-out {class}/{image} folder for the artifact (default: the cached model's)")
    group.addoption("--backend", action="append", default=None, dest="edgebench_backends", metavar="NAME",
                    help="backend(s) to test against TF, repeatable (default: openvino)")
    group.addoption("--device", default="CPU", dest="edgebench_device", help="OpenVINO device (default CPU)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    candidates = metafunc.config.getoption("edgebench_backends") or ["openvino"]
    if "candidate_backend" in metafunc.fixturenames:
        metafunc.parametrize("candidate_backend", candidates)
    if "latency_backend" in metafunc.fixturenames:  # the reference, the candidates, and the harness's overhead
        metafunc.parametrize("latency_backend", list(dict.fromkeys(["tf", *candidates, "null"])))


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark may be disabled (-p no:benchmark)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Put the processor's identity (CPU brand, ISA flags, OpenVINO device names, versions) in the JSON, so
    results from many edge nodes can be told apart and compared."""
    machine_info["edgebench"] = processor_identity()


# ------------------------------------------------------------------------------------------------
# Session fixtures


@pytest.fixture(scope="session")
def edgebench_cache(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.rootpath) / ".cache" / "edgebench" / "pytest"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def suite_dataset(edgebench_cache: Path) -> data.Dataset:
    root = edgebench_cache / f"weather-seed{SUITE_DATASET.seed}-n{SUITE_DATASET.images_per_class}"
    with FileLock(str(root) + ".lock"):
        data.generate_weather_dataset(root, SUITE_DATASET)
    return data.load_dataset(root)


@pytest.fixture(scope="session")
def suite_artifact(edgebench_cache: Path, suite_dataset: data.Dataset) -> tuple[Path, Path]:
    """(model.tar.gz, held-out test dir) trained once per cache key; other xdist workers wait on the lock."""
    key = _training_key()
    target = edgebench_cache / f"model-{key}"
    with FileLock(str(target) + ".lock"):
        artifact, test_dir = target / "model.tar.gz", target / "split" / "test"
        if not artifact.is_file():
            shutil.rmtree(target, ignore_errors=True)
            split = data.split_holdout(suite_dataset, target / "split", per_class=1, seed=0)
            train.train_local(split.training_dir, target, SUITE_HYPERPARAMETERS)
    return artifact, test_dir


def _training_key() -> str:
    """Changes when the training code or configuration changes, so a stale cached model is never used."""
    digest = hashlib.sha256()
    for module in (data, train):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(json.dumps([asdict(SUITE_DATASET), asdict(SUITE_HYPERPARAMETERS)], sort_keys=True).encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def edge_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> edge.EdgeModel:
    """The artifact under test, imported into this worker's own edge folder as an edge node would."""
    option = request.config.getoption("edgebench_artifact")
    edge_dir = tmp_path_factory.mktemp("edge")
    if option is None:
        artifact, test_dir = request.getfixturevalue("suite_artifact")
        return edge.import_local(artifact, edge_dir / "node", test_dir)
    test_option = request.config.getoption("edgebench_test_images")
    if not option.startswith("s3://"):
        if test_option and test_option.startswith("s3://"):
            raise pytest.UsageError("--edgebench-test-images on S3 needs --edgebench-artifact on S3 as well")
        return edge.import_local(Path(option), edge_dir / "node", Path(test_option) if test_option else None)
    bucket, _ = store.parse_s3_uri(option)
    s3 = store.S3Store(store.S3Location(bucket, prefix="", endpoint_url=os.environ.get("AWS_ENDPOINT_URL")))
    return edge.import_from_s3(s3, option, test_option, edge_dir / "node")


@pytest.fixture(scope="session")
def test_images(edge_model: edge.EdgeModel, suite_dataset: data.Dataset) -> np.ndarray:
    """Preprocessed held-out images (preprocessing happens here, never inside a timed call). An artifact
    imported without test images is fed generated images: parity needs inputs, not labels."""
    paths = [image.path for image in edge_model.test_images] or [image.path for image in suite_dataset.images[:8]]
    return data.load_batch(paths)


@pytest.fixture(scope="session")
def backends(edge_model: edge.EdgeModel, pytestconfig: pytest.Config):
    """Load each (backend, device, precision) once per worker; later requests reuse it."""
    loaded: dict[tuple[str, str, str], Backend] = {}

    def get(name: str, device: str | None = None, precision: str = "FP32") -> Backend:
        device = device or (pytestconfig.getoption("edgebench_device") if name != "tf" else "CPU")
        if (name, device, precision) not in loaded:
            backend = create_backend(name)
            backend.load(edge_model, device, precision)
            loaded[(name, device, precision)] = backend
        return loaded[(name, device, precision)]

    return get


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for the whole session (state persists: tests use unique buckets)."""
    with store.embedded_s3() as endpoint:
        yield endpoint


@pytest.fixture
def aws_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials through the standard chain (env), as moto's own tests do; no real profile is read."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3_location(s3_endpoint: str, aws_dummy_credentials: None, request: pytest.FixtureRequest):
    """A uniquely named, empty bucket on the session's moto server, emptied and deleted afterwards."""
    import uuid

    location = store.S3Location(bucket=f"edgebench-test-{uuid.uuid4().hex[:12]}", prefix="suite",
                                endpoint_url=s3_endpoint)
    s3 = store.S3Store(location)
    s3.ensure_bucket(create=True)
    try:
        yield location
    finally:
        for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket):
            for item in page.get("Contents", []):
                s3.client.delete_object(Bucket=location.bucket, Key=item["Key"])
        s3.client.delete_bucket(Bucket=location.bucket)


# Hypothesis: a quick default profile for CI, a deeper one with --hypothesis-profile=nightly.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=40, deadline=None)
_hypothesis_settings.register_profile("nightly", max_examples=2000, deadline=None)
_hypothesis_settings.load_profile("ci")  # --hypothesis-profile=nightly overrides
