"""pytest wiring for edgebench: options, session fixtures shared safely across xdist workers, and the
processor identity in pytest-benchmark's JSON.

Edge nodes run ``pytest -m edge --benchmark-json=node.json`` (optionally ``--edgebench-artifact=s3://…``).
Without an artifact, a small model is trained once on the procedural dataset and cached under
``.cache/edgebench/pytest`` (file-locked, keyed by the training code and configuration).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from filelock import FileLock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from harness import data, edge, fileio, parity, s3_faults, store  # noqa: E402
from harness.backends import PRECISIONS, Backend, BackendConfig, create_backend, result_label  # noqa: E402
from harness.backends import infer_each  # noqa: E402
from harness.training import train  # noqa: E402
from harness.measure import processor_identity  # noqa: E402

# The model the suites train when no --edgebench-artifact is given: small, but trained enough that its
# decisions mean something (reference accuracy and margins are printed at the end of every run).
SUITE_DATASET = data.GeneratorConfig(images_per_class=16, seed=7)
SUITE_HYPERPARAMETERS = train.Hyperparameters(epochs=6, batch_size=8, train_only_top_layer=False,
                                              validation_split_ratio=0.0)
SUITE_MODELS = {"mobilenet_v2": train.DEFAULT_MODEL_ID, "efficientnet_v2_b0": train.EFFICIENTNET_MODEL_ID,
                "resnet50_v2": train.RESNET_MODEL_ID}
# From single trainings on these 75 images (README): MobileNetV2 at 3 epochs of batch 16 scored 0.85-0.995
# on the parity images over 5 seeds; at 6 epochs of batch 8 (twice the optimizer steps per epoch) the seed
# that scored 0.73 at batch 16 scored 0.965. EfficientNetV2-B0 fell to 0.34-0.37 at batch 8 and keeps 16
# (0.80 at 6 epochs, 0.56 at 3). ResNet50-V2 costs 3x per epoch: 4 epochs of batch 16.
SUITE_TRAINING = {train.DEFAULT_MODEL_ID: {}, train.EFFICIENTNET_MODEL_ID: {"batch_size": 16},
                  train.RESNET_MODEL_ID: {"batch_size": 16, "epochs": 4}}
EDGE_MODEL = "mobilenet_v2"  # the one model `pytest -m edge` trains without an artifact; the others: -m matrix
GIVEN = "given"  # the model passed with --edgebench-artifact
# 200 labelled images (another seed than the training set): one image is 0.5 % of an agreement rate.
PARITY_DATASET = data.GeneratorConfig(images_per_class=40, seed=999)
# Images accuracy-aware INT8 validates on (agreement with TF FP32): neither training nor parity images.
VALIDATION_DATASET = data.GeneratorConfig(images_per_class=20, seed=1999)
# The precision ladder a node measures: every precision, and INT8 twice (plain and accuracy-aware NNCF).
LADDER = (*((p, "ptq") for p in PRECISIONS), ("INT8", "accuracy-control"))
MATRIX_DEVICES = ("AUTO", "GPU", "NPU")  # besides --device; GPU/NPU skip where OpenVINO does not list them


@dataclasses.dataclass
class Figures:
    """What the run measured, collected on the controller (xdist ships user_properties there) for the
    terminal summary and --edgebench-node-report."""

    parity: list[dict] = dataclasses.field(default_factory=list)
    faults: list[dict] = dataclasses.field(default_factory=list)
    margins: list[dict] = dataclasses.field(default_factory=list)
    lines: list[str] = dataclasses.field(default_factory=list)
    s3_faults: list[dict] = dataclasses.field(default_factory=list)
    outcomes: dict[str, list[dict]] = dataclasses.field(
        default_factory=lambda: {"passed": [], "failed": [], "skipped": []})


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FigureCollector(), "edgebench-figures")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench")
    group.addoption("--edgebench-artifact", default=None, metavar="PATH|s3://BUCKET/KEY",
                    help="model.tar.gz to test (local path or S3 URI; S3 uses the standard AWS credential chain "
                         "and AWS_ENDPOINT_URL if set). Default: train a small model once and cache it.")
    group.addoption("--edgebench-test-images", default=None, metavar="DIR|s3://BUCKET/PREFIX",
                    help="held-out {class}/{image} folder for the artifact (default: the cached model's)")
    group.addoption("--edgebench-calibration", default=None, metavar="DIR|s3://BUCKET/PREFIX",
                    help="training images ({class}/{images}) to calibrate INT8 for --edgebench-artifact "
                         "(never the held-out images); without it INT8 cases skip and say so")
    group.addoption("--backend", action="append", default=None, dest="edgebench_backends", metavar="NAME",
                    help="backend(s) to test against TF, repeatable (default: openvino)")
    group.addoption("--device", default="CPU", dest="edgebench_device", help="OpenVINO device (default CPU)")
    group.addoption("--edgebench-train-seed", type=int, default=SUITE_HYPERPARAMETERS.random_seed, metavar="N",
                    help="training seed of the suite model trained without an artifact (default "
                         f"{SUITE_HYPERPARAMETERS.random_seed}); another seed is an independent training")
    group.addoption("--edgebench-spread-trainings", type=int, default=5, metavar="N",
                    help="independent trainings per suite model in suites/test_parity_spread.py (default 5)")
    group.addoption("--edgebench-node-report", default=None, metavar="PATH",
                    help="write this node's summary (processor, parity figures, test outcomes) as JSON; "
                         "`edgebench upload` and the fleet publish it beside --benchmark-json")
    group.addoption("--edgebench-gate-trials", type=int, default=6, metavar="N",
                    help="interleaved A/B trials in suites/test_gate_power.py (default 6, ~25 s each)")
    group.addoption("--edgebench-gate-runs", type=int, default=20, metavar="N",
                    help="separate A/A and slowed runs for the stored-baseline figures (default 20 each)")
    group.addoption("--edgebench-gate-spacing", type=float, default=30.0, metavar="S",
                    help="seconds from one separate run's start to the next's (default 30): drift needs time")


def candidate_backends(config: pytest.Config) -> list[str]:
    return config.getoption("edgebench_backends") or ["openvino"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    if "candidate_backend" in metafunc.fixturenames:
        metafunc.parametrize("candidate_backend", candidate_backends(config))
    if "latency_case" in metafunc.fixturenames:  # the reference, each candidate at each precision, the harness
        cases = [("tf", "FP32", "ptq"), *((b, *rung) for b in candidate_backends(config) for rung in LADDER),
                 ("null", "FP32", "ptq")]
        metafunc.parametrize("latency_case", [pytest.param(c, id=result_label(*c)) for c in dict.fromkeys(cases)])
    if "parity_case" in metafunc.fixturenames:
        metafunc.parametrize("parity_case", parity_cases(config))
    if "fault_rung" in metafunc.fixturenames:
        metafunc.parametrize("fault_rung", LADDER, ids=[parity.rung(*r) for r in LADDER])


@dataclasses.dataclass(frozen=True)
class ParityCase:
    model: str
    backend: str
    device: str
    precision: str
    batch: int | None  # None: one dynamic-batch model
    quantization: str = "ptq"

    @property
    def id(self) -> str:
        rung = parity.rung(self.precision, self.quantization)
        return f"{self.model}-{self.backend}-{self.device}-{rung}-b{self.batch or 'dyn'}"

    @property
    def config(self) -> BackendConfig:
        return BackendConfig(self.device, self.precision, self.batch, quantization=self.quantization)


def parity_cases(config: pytest.Config) -> list:
    """The node's cases (marked edge): its one model on --device at batch 1, every rung of the ladder. The
    matrix (marked matrix): the other suite models, AUTO/GPU/NPU, and batch 4 (plain quantization only: the
    accuracy-aware search costs a minute per model). ovtf runs FP32 on CPU only."""
    device = config.getoption("edgebench_device")
    edge_model = default_model_key(config)
    others = [] if edge_model == GIVEN else [m for m in SUITE_MODELS if m != edge_model]
    cases = []
    for backend, (precision, quantization) in itertools.product(candidate_backends(config) + ["ovtf"], LADDER):
        if backend == "ovtf" and precision != "FP32":
            continue
        cases.append(pytest.param(c := ParityCase(edge_model, backend, device, precision, 1, quantization),
                                  id=c.id, marks=pytest.mark.edge))
        if backend == "ovtf" or quantization != "ptq":
            continue
        matrix = [ParityCase(m, backend, device, precision, 1) for m in others]
        matrix += [ParityCase(edge_model, backend, d, precision, 1) for d in MATRIX_DEVICES if d != device]
        matrix.append(ParityCase(edge_model, backend, device, precision, 4))
        cases += [pytest.param(c, id=c.id, marks=[pytest.mark.matrix, *known_limits(c.model, c.precision)])
                  for c in matrix]
    return cases


def known_limits(model: str, precision: str) -> list:
    """Cases whose healthy result is known to land outside the bounds: marked xfail with the measurement
    (reported as xfailed or xpassed, never as passed)."""
    if model == "efficientnet_v2_b0" and precision == "INT8":
        return [pytest.mark.xfail(reason="EfficientNetV2-B0 trained from scratch on 75 images does not quantize "
                                         "reliably: plain INT8 kept 0.745-1.0 of TF FP32's decisions over 5 "
                                         "trainings (input convolution in float; 0.705-1.0 without) and "
                                         "accuracy-aware INT8 (20 iterations) 0.85-1.0 over 6 (README)",
                                  strict=False)]
    return []


class FigureCollector:
    """A plugin object (state on the instance, registered in pytest_configure): collects the figures tests
    record (xdist ships user_properties to the controller) and each test's outcome, prints them at the end
    and writes --edgebench-node-report."""

    def __init__(self) -> None:
        self.figures = Figures()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcomes = self.figures.outcomes
        if report.when == "call" or report.outcome != "passed":  # setup/teardown count when they fail or skip
            outcomes[report.outcome].append({"test": report.nodeid, "reason": _short_reason(report)})
        if report.when != "call":
            return
        kinds = {"parity": self.figures.parity, "fault": self.figures.faults, "margins": self.figures.margins,
                 "edgebench_figure": self.figures.lines, "s3_fault": self.figures.s3_faults}
        for key, value in report.user_properties:
            if key in kinds:
                kinds[key].append(value)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Figures tests measured, the reference's margins, the parity worst case per precision next to its
        bounds, and which injected faults each precision's bounds catch."""
        sections = [("edgebench figures", self.figures.lines),
                    ("edgebench reference: accuracy and decision margins (p1 - p2)",
                     [parity.margin_line(m) for m in self.figures.margins]),
                    ("edgebench parity: measured worst case per precision [bound]",
                     parity.worst_case_lines(self.figures.parity)),
                    ("edgebench sensitivity: injected faults caught (x) or passed (.) per precision",
                     parity.sensitivity_lines(self.figures.faults)),
                    ("edgebench S3 faults: each operation under each injected fault",
                     s3_faults.figure_lines(self.figures.s3_faults))]
        for title, lines in sections:
            if lines:
                terminalreporter.section(title)
                for line in lines:
                    terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        path = session.config.getoption("edgebench_node_report")
        if path and not hasattr(session.config, "workerinput"):  # the controller writes it, not xdist workers
            from harness import fleet

            fileio.write_json(Path(path), fleet.node_summary(processor_identity(), self.figures.parity,
                                                             self.figures.outcomes, int(exitstatus)))


def _short_reason(report: pytest.TestReport) -> str:
    """The exception message of a failure (or a skip's reason), one line."""
    if report.outcome == "passed":
        return ""
    if isinstance(report.longrepr, tuple):  # skipped: (path, line, reason)
        return str(report.longrepr[2])[:300]
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    return " ".join(text.split())[:300]


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
    return _generated(edgebench_cache, SUITE_DATASET)


def _generated(cache: Path, config: data.GeneratorConfig) -> data.Dataset:
    """A generated weather dataset, made once under the cache (file-locked for xdist workers)."""
    root = cache / f"weather-seed{config.seed}-n{config.images_per_class}"
    with FileLock(str(root) + ".lock"):
        data.generate_weather_dataset(root, config)
    return data.load_dataset(root)


@pytest.fixture(scope="session")
def suite_artifacts(edgebench_cache: Path, suite_dataset: data.Dataset, pytestconfig: pytest.Config):
    """(model id, training seed) -> (model.tar.gz, held-out test dir, training channel), each trained once per
    cache key; other xdist workers wait on the lock and reuse it."""
    def get(model_id: str, seed: int | None = None) -> tuple[Path, Path, Path]:
        hyperparameters = dataclasses.replace(
            SUITE_HYPERPARAMETERS, **SUITE_TRAINING[model_id],
            random_seed=pytestconfig.getoption("edgebench_train_seed") if seed is None else seed)
        target = edgebench_cache / f"model-{_training_key(model_id, hyperparameters)}"
        with FileLock(str(target) + ".lock"):
            artifact, split_dir = target / "model.tar.gz", target / "split"
            if not artifact.is_file():
                shutil.rmtree(target, ignore_errors=True)
                split = data.split_holdout(suite_dataset, split_dir, per_class=1, seed=0)
                train.train_local(split.training_dir, target, hyperparameters, model_id)
        return artifact, split_dir / "test", split_dir / "training"

    return get


@pytest.fixture(scope="session")
def suite_artifact(suite_artifacts) -> tuple[Path, Path]:
    """The default model's (model.tar.gz, held-out test dir)."""
    return suite_artifacts(SUITE_MODELS[EDGE_MODEL])[:2]


def _training_key(model_id: str, hyperparameters: train.Hyperparameters) -> str:
    """Changes when the training code or configuration changes, so a stale cached model is never used."""
    digest = hashlib.sha256()
    for module in (data, train):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(json.dumps([model_id, asdict(SUITE_DATASET), asdict(hyperparameters)], sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class ParitySet:
    """Preprocessed labelled images every candidate is compared on (never the training images)."""

    images: np.ndarray
    labels: tuple[str, ...]


class ModelUnderTest:
    """One imported model with its inputs: held-out images, the parity set and, for INT8, calibration images
    from the training split. Backends are loaded once per configuration, parity computed once per backend."""

    def __init__(self, key: str, model: edge.EdgeModel, parity_set: ParitySet, calibration: np.ndarray | None,
                 calibration_reason: str = "", validation: np.ndarray | None = None) -> None:
        self.key, self.model, self.calibration, self.validation = key, model, calibration, validation
        self.parity_images = parity_set.images
        # Accuracy needs the parity set's classes to be the model's (a given artifact may know other classes).
        known = set(parity_set.labels) <= set(model.classes)
        self.labels = np.array([model.classes.index(x) for x in parity_set.labels]) if known else None
        self.calibration_reason = calibration_reason
        self._loaded: dict[tuple[str, BackendConfig], Backend] = {}
        self._parity: dict[tuple[str, BackendConfig], parity.ParityResult] = {}
        self._reference: np.ndarray | None = None
        self._faulted: dict[str, np.ndarray] = {}
        self._decisions: np.ndarray | None = None

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

    def reference_decisions(self) -> np.ndarray:
        """TF FP32's classes for the validation images: what accuracy-aware INT8 must keep (its metric is
        agreement with them, which also bounds the accuracy change; a weak FP32 model's errors, which INT8
        may happen to fix, cannot hide changed decisions)."""
        if self._decisions is None:
            self._decisions = infer_each(self.backend("tf"), self.validation, self.model.classes).argmax(axis=1)
        return self._decisions

    def reference_logits(self) -> np.ndarray:
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

    def _logits(self, backend: Backend, batch: int | None) -> np.ndarray:
        images, step = self.parity_images, batch or 1
        return np.concatenate([backend.infer(images[i:i + step]) for i in range(0, len(images), step)])

    def parity(self, name: str, config: BackendConfig) -> parity.ParityResult:
        """The verdict for a loaded backend configuration, computed once (parity and latency tests share it)."""
        if (name, config) not in self._parity:
            self._parity[(name, config)] = self.compare(self.backend(name, config),
                                                        parity.rung(config.precision, config.quantization),
                                                        config.batch)
        return self._parity[(name, config)]

    def accuracy(self) -> float | None:
        return None if self.labels is None else float(np.mean(self.reference_logits().argmax(1) == self.labels))


@pytest.fixture(scope="session")
def parity_set(edgebench_cache: Path) -> ParitySet:
    dataset = _generated(edgebench_cache, PARITY_DATASET)
    return ParitySet(data.load_batch([image.path for image in dataset.images]),
                     tuple(image.label for image in dataset.images))


@pytest.fixture(scope="session")
def validation_images(edgebench_cache: Path) -> np.ndarray:
    return data.load_batch([image.path for image in _generated(edgebench_cache, VALIDATION_DATASET).images])


@pytest.fixture(scope="session")
def models_under_test(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, parity_set,
                      validation_images):
    """(key, training seed) -> ModelUnderTest; key is a SUITE_MODELS name, or "given" for --edgebench-artifact
    (imported at session start). Suite models are imported into this worker's own edge folder as an edge node
    would. The last few stay loaded (backends hold memory; edge boxes are small)."""
    cache: dict[tuple[str, int | None], ModelUnderTest] = {}

    def get(key: str, seed: int | None = None) -> ModelUnderTest:
        if (key, seed) not in cache:
            if key == GIVEN:
                given = request.config.stash[GIVEN_MODEL]
                cache[(key, seed)] = ModelUnderTest(key, given.model, parity_set, given.calibration, given.reason,
                                                    given.validation)
            else:
                artifact, test_dir, training_dir = request.getfixturevalue("suite_artifacts")(SUITE_MODELS[key], seed)
                model = edge.import_local(artifact, tmp_path_factory.mktemp(f"edge-{key}") / "node", test_dir)
                calibration = data.load_batch([i.path for i in data.load_dataset(training_dir).images])
                cache[(key, seed)] = ModelUnderTest(key, model, parity_set, calibration, "", validation_images)
            while len(cache) > len(SUITE_MODELS):
                del cache[next(iter(cache))]
        return cache[(key, seed)]

    return get


@dataclasses.dataclass(frozen=True)
class GivenModel:
    model: edge.EdgeModel
    calibration: np.ndarray | None
    reason: str  # why INT8 cannot run, when calibration is None
    # accuracy-aware INT8 validates on the calibration images (all a node is given besides the test images)
    validation: np.ndarray | None = None


GIVEN_MODEL = pytest.StashKey[GivenModel]()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Import --edgebench-artifact (test and calibration images too) once, before any test: a bad artifact or
    an image that cannot be decoded stops the run here with one line naming it, not every test apart."""
    config = session.config
    if not config.getoption("edgebench_artifact"):
        return
    import tempfile

    from harness.errors import EdgebenchError

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
            raise pytest.UsageError("--edgebench-test-images / --edgebench-calibration on S3 need "
                                    "--edgebench-artifact on S3 as well")
        model = edge.import_local(Path(option), edge_dir / "node", Path(test_option) if test_option else None)
    if not calibration_option:
        return GivenModel(model, None, "INT8 needs calibration images from the training split: pass "
                                       "--edgebench-calibration DIR|s3://BUCKET/PREFIX")
    calibration_dir = edge.import_calibration(calibration_option, edge_dir / "calibration", s3)
    images = data.load_batch([i.path for i in data.load_dataset(calibration_dir, check_images=False).images])
    return GivenModel(model, images, "", images)


def default_model_key(config: pytest.Config) -> str:
    return GIVEN if config.getoption("edgebench_artifact") else EDGE_MODEL


@pytest.fixture(scope="session")
def model_under_test(models_under_test, pytestconfig: pytest.Config) -> ModelUnderTest:
    """The model the node's suites use: --edgebench-artifact, or the default MobileNetV2."""
    return models_under_test(default_model_key(pytestconfig))


@pytest.fixture(scope="session")
def edge_model(model_under_test: ModelUnderTest) -> edge.EdgeModel:
    return model_under_test.model


@pytest.fixture(scope="session")
def test_images(model_under_test: ModelUnderTest) -> np.ndarray:
    """Preprocessed held-out images (preprocessing happens here, never inside a timed call); an artifact
    imported without test images is fed the parity images: parity needs inputs, not labels."""
    paths = [image.path for image in model_under_test.model.test_images]
    return data.load_batch(paths) if paths else model_under_test.parity_images[:8]


@dataclasses.dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_rss_mib: float  # the child's own peak resident set (ru_maxrss), not the test process's
    exit: int
    log: Path

    def tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def run_measured(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``command`` to the end with its output in ``log``: wall time, peak RSS and exit code."""
    import subprocess
    import time

    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    return ChildRun(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), log)


def skip_unless_native(device: str, precision: str) -> None:
    """Skip, saying why, where OpenVINO lists no such device or the device does not run the precision
    natively (it would run another precision under this one's name)."""
    import openvino as ov

    from harness.backends.openvino import native_precisions

    core = ov.Core()
    if device != "AUTO" and device not in core.available_devices:
        pytest.skip(f"OpenVINO lists no {device} on this node (available: {', '.join(core.available_devices)})")
    if precision not in native_precisions(device):
        physical = "CPU" if device == "AUTO" else device
        pytest.skip(f"{physical} on this node does not run {precision} natively (OPTIMIZATION_CAPABILITIES: "
                    f"{', '.join(core.get_property(physical, 'OPTIMIZATION_CAPABILITIES'))})")


@pytest.fixture(scope="session")
def backends(model_under_test: ModelUnderTest, pytestconfig: pytest.Config):
    """backends(name, device=None, precision="FP32", batch=None): loaded once per worker and configuration."""
    def get(name: str, device: str | None = None, precision: str = "FP32", batch: int | None = None) -> Backend:
        device = device or (pytestconfig.getoption("edgebench_device") if name != "tf" else "CPU")
        return model_under_test.backend(name, BackendConfig(device, precision, batch))

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


@pytest.fixture
def headless_chromium(tmp_path: Path):
    """page.html -> (its DOM after loading, the fraction of dark pixels in a 1200x2400 screenshot), rendered
    by Debian's Chromium from disk; skips where Chromium is not installed."""
    import subprocess

    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]

    def render(page: Path) -> tuple[str, float]:
        url = Path(page).resolve().as_uri()
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / "chromium-shot.png"
        subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400", url],
                       capture_output=True, timeout=120)
        return dom, float((np.asarray(Image.open(shot).convert("L")) < 200).mean())

    return render


# Hypothesis: a quick default profile for CI, a deeper one with --hypothesis-profile=nightly.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=40, deadline=None)
_hypothesis_settings.register_profile("nightly", max_examples=2000, deadline=None)
_hypothesis_settings.load_profile("ci")  # --hypothesis-profile=nightly overrides
