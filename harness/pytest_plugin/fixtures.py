"""Session fixtures: the suite models (trained once into ``<rootdir>/.cache/edgebench/pytest``, shared by
xdist workers through file locks) or the --edgebench-artifact, their inputs, and backends loaded once per
worker and configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest

from harness import data, edge
from harness.backends import Backend, BackendConfig
from harness.numeric import FloatArray
from harness.pytest_plugin.cases import (
    EDGE_MODEL,
    GIVEN,
    PARITY_DATASET,
    SUITE_DATASET,
    SUITE_MODELS,
    VALIDATION_DATASET,
    default_model_key,
)
from harness.pytest_plugin.models import (
    GIVEN_MODEL,
    ModelUnderTest,
    ParitySet,
    generated_dataset,
    trained_suite_model,
)


class SuiteArtifacts(Protocol):
    """``suite_artifacts``: (model.tar.gz, held-out test dir, training channel) of a suite model."""

    def __call__(self, model_id: str, seed: int | None = None) -> tuple[Path, Path, Path]: ...


class ModelsUnderTest(Protocol):
    """``models_under_test``: a SUITE_MODELS name (or "given") and a training seed -> the model under test."""

    def __call__(self, key: str, seed: int | None = None) -> ModelUnderTest: ...


class Backends(Protocol):
    """``backends``: a backend loaded once per worker and configuration."""

    def __call__(
        self, name: str, device: str | None = None, precision: str = "FP32", batch: int | None = None
    ) -> Backend: ...


@pytest.fixture(scope="session")
def edgebench_cache(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.rootpath) / ".cache" / "edgebench" / "pytest"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def suite_dataset(edgebench_cache: Path) -> data.Dataset:
    return generated_dataset(edgebench_cache, SUITE_DATASET)


@pytest.fixture(scope="session")
def suite_artifacts(edgebench_cache: Path, suite_dataset: data.Dataset, pytestconfig: pytest.Config) -> SuiteArtifacts:
    """(model id, training seed) -> (model.tar.gz, held-out test dir, training channel), each trained once per
    cache key; other xdist workers wait on the lock and reuse it."""

    def get(model_id: str, seed: int | None = None) -> tuple[Path, Path, Path]:
        seed = pytestconfig.getoption("edgebench_train_seed") if seed is None else seed
        return trained_suite_model(edgebench_cache, suite_dataset, model_id, seed)

    return get


@pytest.fixture(scope="session")
def suite_artifact(suite_artifacts: SuiteArtifacts) -> tuple[Path, Path]:
    """The default model's (model.tar.gz, held-out test dir)."""
    artifact, test_dir, _ = suite_artifacts(SUITE_MODELS[EDGE_MODEL])
    return artifact, test_dir


@pytest.fixture(scope="session")
def parity_set(edgebench_cache: Path) -> ParitySet:
    dataset = generated_dataset(edgebench_cache, PARITY_DATASET)
    return ParitySet(
        data.load_batch([image.path for image in dataset.images]), tuple(image.label for image in dataset.images)
    )


@pytest.fixture(scope="session")
def validation_images(edgebench_cache: Path) -> FloatArray:
    return data.load_batch([image.path for image in generated_dataset(edgebench_cache, VALIDATION_DATASET).images])


@pytest.fixture(scope="session")
def models_under_test(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    parity_set: ParitySet,
    validation_images: FloatArray,
) -> ModelsUnderTest:
    """(key, training seed) -> ModelUnderTest; key is a SUITE_MODELS name, or "given" for --edgebench-artifact
    (imported at session start). Suite models are imported into this worker's own edge folder as an edge node
    would. The last few stay loaded (backends hold memory; edge boxes are small)."""
    cache: dict[tuple[str, int | None], ModelUnderTest] = {}

    def get(key: str, seed: int | None = None) -> ModelUnderTest:
        if (key, seed) not in cache:
            if key == GIVEN:
                given = request.config.stash[GIVEN_MODEL]
                cache[(key, seed)] = ModelUnderTest(
                    key, given.model, parity_set, given.calibration, given.reason, given.validation
                )
            else:
                artifact, test_dir, training_dir = request.getfixturevalue("suite_artifacts")(SUITE_MODELS[key], seed)
                model = edge.import_local(artifact, tmp_path_factory.mktemp(f"edge-{key}") / "node", test_dir)
                calibration = data.load_batch([i.path for i in data.load_dataset(training_dir).images])
                cache[(key, seed)] = ModelUnderTest(key, model, parity_set, calibration, "", validation_images)
            while len(cache) > len(SUITE_MODELS):
                del cache[next(iter(cache))]
        return cache[(key, seed)]

    return get


@pytest.fixture(scope="session")
def model_under_test(models_under_test: ModelsUnderTest, pytestconfig: pytest.Config) -> ModelUnderTest:
    """The model the node's suites use: --edgebench-artifact, or the default MobileNetV2."""
    return models_under_test(default_model_key(pytestconfig))


@pytest.fixture(scope="session")
def edge_model(model_under_test: ModelUnderTest) -> edge.EdgeModel:
    return model_under_test.model


@pytest.fixture(scope="session")
def test_images(model_under_test: ModelUnderTest) -> FloatArray:
    """Preprocessed held-out images (preprocessing happens here, never inside a timed call); an artifact
    imported without test images is fed the parity images: parity needs inputs, not labels."""
    paths = [image.path for image in model_under_test.model.test_images]
    return data.load_batch(paths) if paths else model_under_test.parity_images[:8]


@pytest.fixture(scope="session")
def backends(model_under_test: ModelUnderTest, pytestconfig: pytest.Config) -> Backends:
    """backends(name, device=None, precision="FP32", batch=None): loaded once per worker and configuration."""

    def get(name: str, device: str | None = None, precision: str = "FP32", batch: int | None = None) -> Backend:
        device = device or (pytestconfig.getoption("edgebench_device") if name != "tf" else "CPU")
        return model_under_test.backend(name, BackendConfig(device, precision, batch))

    return get
