"""The models a session tests and their inputs: the suite models trained once into the cache (file-locked for
xdist workers), the model given with --edgebench-artifact (imported once at session start, on
``config.stash[GIVEN_MODEL]``), and ``ModelUnderTest``, which loads each backend configuration once."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from harness import contract, data, edge, parity, store, weather
from harness.backends import Backend, BackendConfig, create_backend, infer_each
from harness.errors import EdgebenchError
from harness.numeric import FloatArray, IntArray
from harness.pytest_plugin.cases import SUITE_DATASET, SUITE_HYPERPARAMETERS, SUITE_TRAINING
from harness.training import hyperparameters as hyperparameter_code
from harness.training import train


@dataclasses.dataclass(frozen=True)
class ParitySet:
    """Preprocessed labelled images every candidate is compared on (never the training images)."""

    images: FloatArray
    labels: tuple[str, ...]


class ModelUnderTest:
    """One imported model with its inputs: held-out images, the parity set and, for INT8, calibration images
    from the training split. Backends are loaded once per configuration, parity computed once per backend."""

    def __init__(
        self,
        key: str,
        model: edge.EdgeModel,
        parity_set: ParitySet,
        calibration: FloatArray | None,
        calibration_reason: str = "",
        validation: FloatArray | None = None,
    ) -> None:
        self.key, self.model, self.calibration, self.validation = key, model, calibration, validation
        self.parity_images = parity_set.images
        # Accuracy needs the parity set's classes to be the model's (a given artifact may know other classes).
        known = set(parity_set.labels) <= set(model.classes)
        self.labels = np.array([model.classes.index(x) for x in parity_set.labels]) if known else None
        self.calibration_reason = calibration_reason
        self._loaded: dict[tuple[str, BackendConfig], Backend] = {}
        self._parity: dict[tuple[str, BackendConfig], parity.ParityResult] = {}
        self._reference: FloatArray | None = None
        self._faulted: dict[str, FloatArray] = {}
        self._decisions: IntArray | None = None

    def backend(self, name: str, config: BackendConfig = BackendConfig()) -> Backend:
        if config.precision == "INT8" and config.calibration is None:
            if self.calibration is None:
                pytest.skip(self.calibration_reason)
            config = dataclasses.replace(config, calibration=self.calibration)
        if config.quantization == "accuracy-control" and config.validation is None:
            if self.validation is None:
                pytest.skip("accuracy-aware INT8 needs validation images (--edgebench-calibration)")
            config = dataclasses.replace(config, validation=(self.validation, self.reference_decisions()))
        if (name, config) not in self._loaded:
            backend = create_backend(name)
            backend.load(self.model, config)
            self._loaded[(name, config)] = backend
        return self._loaded[(name, config)]

    def reference_decisions(self) -> IntArray:
        """TF FP32's classes for the validation images: what accuracy-aware INT8 must keep (its metric is
        agreement with them, which also bounds the accuracy change; a weak FP32 model's errors, which INT8
        may happen to fix, cannot hide changed decisions)."""
        if self._decisions is None:
            assert self.validation is not None, "reference decisions need validation images"
            self._decisions = infer_each(self.backend("tf"), self.validation, self.model.classes).argmax(axis=1)
        return self._decisions

    def reference_logits(self) -> FloatArray:
        """Stock TF at FP32, image by image: what every candidate is compared with."""
        if self._reference is None:
            self._reference = infer_each(self.backend("tf"), self.parity_images, self.model.classes)
        return self._reference

    def compare(self, backend: Backend, rung: str, batch: int | None = 1) -> parity.ParityResult:
        """``backend``'s logits on the parity set against the reference, at its batch size, under ``rung``'s
        bounds (parity.rung)."""
        return parity.compare(self.reference_logits(), self._logits(backend, batch), rung, self.labels)

    def reference_under(self, fault: str, rung: str) -> parity.ParityResult:
        """The TF FP32 reference with ``fault`` injected (faulty.Fault syntax) against itself, under ``rung``'s
        bounds: does the fault change this model's answers at all? (Its logits are computed once.)"""
        if fault not in self._faulted:
            from harness.backends.faulty import Fault, FaultyBackend

            self._faulted[fault] = self._logits(FaultyBackend(self.backend("tf"), Fault.parse(fault)), 1)
        return parity.compare(self.reference_logits(), self._faulted[fault], rung, self.labels)

    def _logits(self, backend: Backend, batch: int | None) -> FloatArray:
        images, step = self.parity_images, batch or 1
        return np.concatenate([backend.infer(images[i : i + step]) for i in range(0, len(images), step)])

    def parity(self, name: str, config: BackendConfig) -> parity.ParityResult:
        """The verdict for a loaded backend configuration, computed once (parity and latency tests share it)."""
        if (name, config) not in self._parity:
            self._parity[(name, config)] = self.compare(
                self.backend(name, config), parity.rung(config.precision, config.quantization), config.batch
            )
        return self._parity[(name, config)]

    def accuracy(self) -> float | None:
        return None if self.labels is None else float(np.mean(self.reference_logits().argmax(1) == self.labels))


def generated_dataset(cache: Path, config: data.GeneratorConfig) -> data.Dataset:
    """A generated weather dataset, made once under the cache (file-locked for xdist workers)."""
    root = cache / f"weather-seed{config.seed}-n{config.images_per_class}"
    with FileLock(str(root) + ".lock"):
        data.generate_weather_dataset(root, config)
    return data.load_dataset(root)


def trained_suite_model(cache: Path, dataset: data.Dataset, model_id: str, seed: int) -> tuple[Path, Path, Path]:
    """(model.tar.gz, held-out test dir, training channel) of a suite model, trained once per cache key; other
    xdist workers wait on the lock and reuse it."""
    hyperparameters = dataclasses.replace(SUITE_HYPERPARAMETERS, **SUITE_TRAINING[model_id], random_seed=seed)
    target = cache / f"model-{_training_key(model_id, hyperparameters)}"
    with FileLock(str(target) + ".lock"):
        artifact, split_dir = target / "model.tar.gz", target / "split"
        if not artifact.is_file():
            shutil.rmtree(target, ignore_errors=True)
            split = data.split_holdout(dataset, split_dir, per_class=1, seed=0)
            train.train_local(split.training_dir, target, hyperparameters, model_id)
    return artifact, split_dir / "test", split_dir / "training"


def _training_key(model_id: str, hyperparameters: train.Hyperparameters) -> str:
    """Changes when the training code or configuration changes, so a stale cached model is never used. The code
    counts by its syntax tree, so reformatting or editing comments keeps the cached models."""
    digest = hashlib.sha256()
    for module in (data, weather, hyperparameter_code, train, contract):  # contract: the tarball's layout
        digest.update(ast.dump(ast.parse(inspect.getsource(module))).encode())
    digest.update(json.dumps([model_id, asdict(SUITE_DATASET), asdict(hyperparameters)], sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class GivenModel:
    model: edge.EdgeModel
    calibration: FloatArray | None
    reason: str  # why INT8 cannot run, when calibration is None
    # accuracy-aware INT8 validates on the calibration images (all a node is given besides the test images)
    validation: FloatArray | None = None


GIVEN_MODEL = pytest.StashKey[GivenModel]()


def import_given_model(config: pytest.Config) -> None:
    """Import --edgebench-artifact (test and calibration images too) once, before any test, onto
    ``config.stash[GIVEN_MODEL]``: a bad artifact or an image that cannot be decoded stops the run here with one
    line naming it, not every test apart."""
    if not config.getoption("edgebench_artifact"):
        return
    edge_dir = Path(tempfile.mkdtemp(prefix="edgebench-node-"))
    config.add_cleanup(lambda: shutil.rmtree(edge_dir, ignore_errors=True))
    try:
        config.stash[GIVEN_MODEL] = _import_given(config, edge_dir)
    except EdgebenchError as exc:
        raise pytest.UsageError(f"edgebench: {exc}") from None


def _import_given(config: pytest.Config, edge_dir: Path) -> GivenModel:
    option, test_option = config.getoption("edgebench_artifact"), config.getoption("edgebench_test_images")
    calibration_option = config.getoption("edgebench_calibration")
    s3 = None
    if option.startswith("s3://"):
        bucket, _ = store.parse_s3_uri(option)
        s3 = store.S3Store(store.S3Location(bucket, prefix="", endpoint_url=os.environ.get("AWS_ENDPOINT_URL")))
        model = edge.import_from_s3(s3, option, test_option, edge_dir / "node")
    else:
        if any(o and o.startswith("s3://") for o in (test_option, calibration_option)):
            raise pytest.UsageError(
                "--edgebench-test-images / --edgebench-calibration on S3 need --edgebench-artifact on S3 as well"
            )
        model = edge.import_local(Path(option), edge_dir / "node", Path(test_option) if test_option else None)
    if not calibration_option:
        return GivenModel(
            model,
            None,
            "INT8 needs calibration images from the training split: pass "
            "--edgebench-calibration DIR|s3://BUCKET/PREFIX",
        )
    calibration_dir = edge.import_calibration(calibration_option, edge_dir / "calibration", s3)
    images = data.load_batch([i.path for i in data.load_dataset(calibration_dir, check_images=False).images])
    return GivenModel(model, images, "", images)
