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

from harness import data, edge, report, store, train  # noqa: E402
from harness.backends import PRECISIONS, Backend, BackendConfig, create_backend  # noqa: E402
from harness.workflow import infer_each  # noqa: E402
from harness.measure import processor_identity  # noqa: E402

# The model the suites train when no --edgebench-artifact is given: small, but trained enough that its
# outputs are far from a uniform softmax (parity on near-uniform outputs would prove little).
SUITE_DATASET = data.GeneratorConfig(images_per_class=16, seed=7)
SUITE_HYPERPARAMETERS = train.Hyperparameters(epochs=3, batch_size=16, train_only_top_layer=False,
                                              validation_split_ratio=0.0)
SUITE_MODELS = {"mobilenet_v2": train.DEFAULT_MODEL_ID, "efficientnet_v2_b0": train.EFFICIENTNET_MODEL_ID,
                "resnet50_v2": train.RESNET_MODEL_ID}
GIVEN = "given"  # the model passed with --edgebench-artifact
PARITY_DATASET = data.GeneratorConfig(images_per_class=20, seed=999)
PARITY_DEVICES = ("CPU", "AUTO", "GPU", "NPU")  # GPU/NPU skip where OpenVINO does not list them
PARITY_FIGURES: list[dict] = []  # filled from test reports on the controller, printed at the end
FIGURES: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench")
    group.addoption("--edgebench-artifact", default=None, metavar="PATH|s3://BUCKET/KEY",
                    help="model.tar.gz to test (local path or S3 URI; S3 uses the standard AWS credential chain "
                         "and AWS_ENDPOINT_URL if set). Default: train a small model once and cache it.")
    group.addoption("--edgebench-test-images", default=None, metavar="DIR|s3://BUCKET/PREFIX",
                    help="held-out {class}/{image} folder for the artifact (default: the cached model's)")
    group.addoption("--edgebench-calibration", default=None, metavar="DIR",
                    help="training images ({class}/{images}) to calibrate INT8 for --edgebench-artifact "
                         "(never the held-out images); without it INT8 cases skip")
    group.addoption("--backend", action="append", default=None, dest="edgebench_backends", metavar="NAME",
                    help="backend(s) to test against TF, repeatable (default: openvino)")
    group.addoption("--device", default="CPU", dest="edgebench_device", help="OpenVINO device (default CPU)")
    group.addoption("--edgebench-node-report", default=None, metavar="PATH",
                    help="write this node's summary (processor, parity figures, test outcomes) as JSON; "
                         "`edgebench upload` and the fleet publish it beside --benchmark-json")
    group.addoption("--edgebench-gate-trials", type=int, default=6, metavar="N",
                    help="interleaved A/B trials in suites/test_gate_power.py (default 6, ~25 s each)")
    group.addoption("--edgebench-gate-runs", type=int, default=20, metavar="N",
                    help="separate A/A and slowed runs for the stored-baseline figures (default 20 each)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    candidates = metafunc.config.getoption("edgebench_backends") or ["openvino"]
    if "candidate_backend" in metafunc.fixturenames:
        metafunc.parametrize("candidate_backend", candidates)
    if "latency_backend" in metafunc.fixturenames:  # the reference, the candidates, and the harness's overhead
        metafunc.parametrize("latency_backend", list(dict.fromkeys(["tf", *candidates, "null"])))
    if "parity_case" in metafunc.fixturenames:
        metafunc.parametrize("parity_case", parity_cases(metafunc.config))


@dataclasses.dataclass(frozen=True)
class ParityCase:
    model: str
    backend: str
    device: str
    precision: str
    batch: int | None  # None: one dynamic-batch model

    @property
    def id(self) -> str:
        return f"{self.model}-{self.backend}-{self.device}-{self.precision}-b{self.batch or 'dyn'}"


def parity_cases(config: pytest.Config) -> list:
    """models x backends x devices x precisions x batch. The fast subset (CI) is batch 1 on CPU at FP32, FP16
    and INT8 for every model; the rest is marked slow. ovtf runs FP32 on CPU only (all it supports)."""
    models = [GIVEN] if config.getoption("edgebench_artifact") else list(SUITE_MODELS)
    candidates = config.getoption("edgebench_backends") or ["openvino", "ovtf"]
    cases = []
    for model, backend, device, precision, batch in itertools.product(
            models, candidates, PARITY_DEVICES, PRECISIONS, (1, 4)):
        if backend == "ovtf" and (device, precision, batch) != ("CPU", "FP32", 1):
            continue
        case = ParityCase(model, backend, device, precision, batch)
        fast = device == "CPU" and precision in ("FP32", "FP16", "INT8") and batch == 1
        cases.append(pytest.param(case, id=case.id, marks=() if fast else pytest.mark.slow))
    return cases


OUTCOMES: dict[str, list[dict]] = {"passed": [], "failed": [], "skipped": []}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the parity figures tests record (xdist ships user_properties to the controller) and each
    test's outcome for --edgebench-node-report."""
    if report.when == "call" or report.outcome != "passed":  # setup/teardown count only when they fail or skip
        OUTCOMES[report.outcome].append({"test": report.nodeid, "reason": _short_reason(report)})
    for key, value in report.user_properties:
        if key == "parity" and report.when == "call":
            PARITY_FIGURES.append(value)
        if key == "edgebench_figure" and report.when == "call":
            FIGURES.append(value)


def _short_reason(report: pytest.TestReport) -> str:
    """The exception message of a failure (or a skip's reason), one line."""
    if report.outcome == "passed":
        return ""
    if isinstance(report.longrepr, tuple):  # skipped: (path, line, reason)
        return str(report.longrepr[2])[:300]
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    return " ".join(text.split())[:300]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures tests measured (harness overhead, benchmark_app ratio), and the parity worst case per
    precision: the numbers the tolerance table is set from."""
    if FIGURES:
        terminalreporter.section("edgebench figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
    if not PARITY_FIGURES:
        return
    terminalreporter.section("edgebench parity: measured worst case per precision")
    for precision in sorted({f["precision"] for f in PARITY_FIGURES}):
        rows = [f for f in PARITY_FIGURES if f["precision"] == precision]
        terminalreporter.write_line(
            f"{precision}: {len(rows)} cases, max|dp| {max(r['max_abs_prob'] for r in rows):.2e}, "
            f"max rel logit {max(r['max_rel_logit'] for r in rows):.2e}, "
            f"min top-1 {min(r['top1_agreement'] for r in rows):.3f}, "
            f"min top-5 {min(r['top5_overlap'] for r in rows):.3f}, "
            f"worst case {max(rows, key=lambda r: r['max_abs_prob'])['case']}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("edgebench_node_report")
    if path and not hasattr(session.config, "workerinput"):  # the controller writes it, not xdist workers
        from harness import fleet

        report.write_json(Path(path), fleet.node_summary(processor_identity(), PARITY_FIGURES, OUTCOMES,
                                                         int(exitstatus)))


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
def suite_artifacts(edgebench_cache: Path, suite_dataset: data.Dataset):
    """model id -> (model.tar.gz, held-out test dir, training channel), each trained once per cache key;
    other xdist workers wait on the lock and reuse it."""
    def get(model_id: str) -> tuple[Path, Path, Path]:
        target = edgebench_cache / f"model-{_training_key(model_id)}"
        with FileLock(str(target) + ".lock"):
            artifact, split_dir = target / "model.tar.gz", target / "split"
            if not artifact.is_file():
                shutil.rmtree(target, ignore_errors=True)
                split = data.split_holdout(suite_dataset, split_dir, per_class=1, seed=0)
                train.train_local(split.training_dir, target, SUITE_HYPERPARAMETERS, model_id)
        return artifact, split_dir / "test", split_dir / "training"

    return get


@pytest.fixture(scope="session")
def suite_artifact(suite_artifacts) -> tuple[Path, Path]:
    """The default model's (model.tar.gz, held-out test dir)."""
    return suite_artifacts(train.DEFAULT_MODEL_ID)[:2]


def _training_key(model_id: str) -> str:
    """Changes when the training code or configuration changes, so a stale cached model is never used."""
    digest = hashlib.sha256()
    for module in (data, train):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(json.dumps([model_id, asdict(SUITE_DATASET), asdict(SUITE_HYPERPARAMETERS)], sort_keys=True).encode())
    return digest.hexdigest()[:16]


class ModelUnderTest:
    """One imported model with its inputs: held-out images, parity images (a larger generated set) and,
    for INT8, calibration images from the training split. Backends are loaded once per configuration."""

    def __init__(self, key: str, model: edge.EdgeModel, parity_images: np.ndarray,
                 calibration: np.ndarray | None) -> None:
        self.key, self.model, self.parity_images, self.calibration = key, model, parity_images, calibration
        self._loaded: dict[tuple[str, BackendConfig], Backend] = {}
        self._reference: np.ndarray | None = None

    def backend(self, name: str, config: BackendConfig = BackendConfig()) -> Backend:
        if config.precision == "INT8" and config.calibration is None:
            if self.calibration is None:
                pytest.skip("INT8 needs calibration images from the training split: pass --edgebench-calibration DIR")
            config = dataclasses.replace(config, calibration=self.calibration)
        if (name, config) not in self._loaded:
            backend = create_backend(name)
            backend.load(self.model, config)
            self._loaded[(name, config)] = backend
        return self._loaded[(name, config)]

    def reference_logits(self) -> np.ndarray:
        """Stock TF at FP32, image by image: what every candidate is compared with."""
        if self._reference is None:
            self._reference = infer_each(self.backend("tf"), self.parity_images, self.model.classes)
        return self._reference


@pytest.fixture(scope="session")
def parity_images(edgebench_cache: Path) -> np.ndarray:
    """100 generated images (another seed than the training set): enough to measure agreement rates."""
    root = edgebench_cache / f"weather-seed{PARITY_DATASET.seed}-n{PARITY_DATASET.images_per_class}"
    with FileLock(str(root) + ".lock"):
        data.generate_weather_dataset(root, PARITY_DATASET)
    return data.load_batch([image.path for image in data.load_dataset(root).images])


@pytest.fixture(scope="session")
def models_under_test(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, parity_images):
    """key (a SUITE_MODELS name, or "given" for --edgebench-artifact) -> ModelUnderTest, imported into this
    worker's own edge folder as an edge node would."""
    cache: dict[str, ModelUnderTest] = {}

    def get(key: str) -> ModelUnderTest:
        if key not in cache:
            edge_dir = tmp_path_factory.mktemp(f"edge-{key}")
            if key == GIVEN:
                model = _import_given(request.config, edge_dir)
                calibration_dir = request.config.getoption("edgebench_calibration")
                calibration = (data.load_batch([i.path for i in data.load_dataset(Path(calibration_dir)).images])
                               if calibration_dir else None)
            else:
                artifact, test_dir, training_dir = request.getfixturevalue("suite_artifacts")(SUITE_MODELS[key])
                model = edge.import_local(artifact, edge_dir / "node", test_dir)
                calibration = data.load_batch([i.path for i in data.load_dataset(training_dir).images])
            cache[key] = ModelUnderTest(key, model, parity_images, calibration)
        return cache[key]

    return get


def _import_given(config: pytest.Config, edge_dir: Path) -> edge.EdgeModel:
    option, test_option = config.getoption("edgebench_artifact"), config.getoption("edgebench_test_images")
    if not option.startswith("s3://"):
        if test_option and test_option.startswith("s3://"):
            raise pytest.UsageError("--edgebench-test-images on S3 needs --edgebench-artifact on S3 as well")
        return edge.import_local(Path(option), edge_dir / "node", Path(test_option) if test_option else None)
    bucket, _ = store.parse_s3_uri(option)
    s3 = store.S3Store(store.S3Location(bucket, prefix="", endpoint_url=os.environ.get("AWS_ENDPOINT_URL")))
    return edge.import_from_s3(s3, option, test_option, edge_dir / "node")


def default_model_key(config: pytest.Config) -> str:
    return GIVEN if config.getoption("edgebench_artifact") else "mobilenet_v2"


@pytest.fixture(scope="session")
def model_under_test(models_under_test, pytestconfig: pytest.Config) -> ModelUnderTest:
    """The model the single-model suites use: --edgebench-artifact, or the default MobileNetV2."""
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
