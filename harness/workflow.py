"""``edgebench run``: dataset -> train -> store (S3) -> import (edge) -> backends -> measure -> report.

Each step is one call into its own module; this file only wires them together under one run id.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness import data, edge, fileio, plan, report, store
from harness.backend_runs import measured_sections, run_backends
from harness.backends import result_label
from harness.errors import ConfigError
from harness.measure import TimingPlan, processor_identity
from harness.progress import Progress, SilentProgress, Steps
from harness.training import sagemaker_job, train, trainers

log = logging.getLogger(__name__)

# JumpStart's defaults, except the base network: offline there are no pretrained weights to freeze.
RUN_HYPERPARAMETERS = train.Hyperparameters(train_only_top_layer=False)
TRAINERS = ("local", "sagemaker")
REFERENCE_BACKEND = plan.REFERENCE
TRAIN_SCHEMA = "edgebench.train/1"


@dataclass(frozen=True)
class RunConfig:
    dataset: Path | None = None  # None: the embedded procedural weather dataset
    generator: data.GeneratorConfig = field(default_factory=data.GeneratorConfig)
    holdout_per_class: int = field(default=1, metadata={"help": "test images held out per class"})
    split_seed: int = 0
    model_id: str = field(default=train.DEFAULT_MODEL_ID, metadata={"help": "JumpStart model id"})
    hyperparameters: train.Hyperparameters = RUN_HYPERPARAMETERS
    s3: store.S3Location | None = None  # None: an embedded moto S3 server on 127.0.0.1
    trainer: str = field(
        default="local",
        metadata={
            "help": "local Keras trainer, or a SageMaker JumpStart training job "
            "(offline: on the embedded fake, container played here)"
        },
    )
    sagemaker: sagemaker_job.SageMakerJob = field(
        default_factory=lambda: sagemaker_job.SageMakerJob(role_arn=sagemaker_job.OFFLINE_ROLE_ARN)
    )
    backends: tuple[str, ...] = (REFERENCE_BACKEND, "openvino")  # the reference is added when a candidate runs
    device: str = field(default="CPU", metadata={"help": "OpenVINO device"})
    precisions: tuple[str, ...] = ("FP32",)  # for the candidates; the reference runs at FP32
    ladder: bool = field(
        default=False,
        metadata={
            "help": (  # instead of precisions
                "every precision the OpenVINO device runs natively (FP32, and FP16/BF16/INT8 where its "
                "OPTIMIZATION_CAPABILITIES list them); report.json lists the skipped ones"
            )
        },
    )
    validation_per_class: int = 20
    timing: TimingPlan = field(default_factory=TimingPlan)
    reports_dir: Path = field(default=Path("reports"), metadata={"help": "where run folders go"})
    cache_dir: Path = field(default=Path(".cache/edgebench"), metadata={"help": "generated datasets are cached here"})
    run_id: str = ""

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ConfigError(f"trainer {self.trainer!r}: choose one of {', '.join(TRAINERS)}")
        if self.trainer == "local" and self.model_id not in train.ARCHITECTURES:  # before any dataset or upload
            raise ConfigError(
                f"--model-id {self.model_id!r}: the local trainer knows {', '.join(sorted(train.ARCHITECTURES))}"
            )
        if self.holdout_per_class < 1:  # before a dataset is generated, not after
            raise ConfigError(f"--holdout {self.holdout_per_class}: hold out at least 1 test image per class")
        if self.split_seed < 0:
            raise ConfigError(f"--seed {self.split_seed}: must be an integer >= 0")


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    report: dict[str, Any]


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def claim_run_dir(reports_dir: Path, run_id: str = "", make_id: Callable[[], str] = new_run_id) -> tuple[str, Path]:
    """``reports_dir/<run-id>``, created here. A generated id is claimed with an exclusive mkdir, so two runs
    started in the same second never share a folder (a taken id is replaced by a fresh one); a given id is
    reused as is."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    if run_id:
        (reports_dir / run_id).mkdir(exist_ok=True)
        return run_id, reports_dir / run_id
    for _ in range(100):
        run_id = make_id()
        try:
            (reports_dir / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id, reports_dir / run_id
    raise ConfigError(f"{reports_dir}: could not claim a new run folder (100 run ids taken); clean up old runs")


def run(config: RunConfig, progress: Progress = SilentProgress()) -> RunResult:
    """The whole workflow; ``reports/<run-id>/report.json`` at the end."""
    backend_plan = plan.plan_backends(config.backends, config.precisions, config.device, config.ladder)
    for line in backend_plan.notes:
        log.info(line)
        progress.note(line)
    run_id, run_dir, steps, dataset, split = _start(config, progress)
    with _s3_store(config.s3, run_id) as s3:
        trained = train_model(config, split, s3, run_id, run_dir / "work", steps)
        model, s3_summary = store_tests_and_import(s3, trained.artifact_uri, split, run_dir / "work" / "edge", steps)
    steps.mark("validation")  # generated on first use, cached
    validation = load_validation_set(config, model.classes)
    measured = run_backends(config.device, config.timing, backend_plan, model, split, validation, steps)
    backends = {m.label: {"describe": m.describe, "latency": m.latency} for m in measured}
    reference = result_label(plan.REFERENCE, plan.REFERENCE_PRECISION)
    document = {
        "schema": report.RUN_SCHEMA,
        **_header(run_id, config, dataset, split, trained),
        "s3": {**s3_summary, "embedded": config.s3 is None},
        "edge": model.summary(),
        "timing_plan": dataclasses.asdict(config.timing),
        "plan": backend_plan.to_json(),
        "backends": backends,
        "speedup": {
            label: round(ratio, 3)
            for label, ratio in report.speedups({"backends": backends}).items()
            if label != reference
        },  # TF FP32 median / this label's median
        **measured_sections(measured, model, validation, _validation_seed(config)),
        "step_seconds": steps.seconds,
    }
    steps.mark("report")
    fileio.write_json(run_dir / "report.json", document)
    return RunResult(run_dir, document)


def train_only(config: RunConfig, progress: Progress = SilentProgress()) -> RunResult:
    """``edgebench train``: dataset and training only; the artifact is also downloaded next to the report
    (offline, the embedded S3 ends with the command)."""
    run_id, run_dir, steps, dataset, split = _start(config, progress)
    with _s3_store(config.s3, run_id) as s3:
        trained = train_model(config, split, s3, run_id, run_dir / "work", steps)
        bucket, key = store.parse_s3_uri(trained.artifact_uri)
        local = s3.for_bucket(bucket).download_file(key, run_dir / "model.tar.gz")
    document = {
        "schema": TRAIN_SCHEMA,
        **_header(run_id, config, dataset, split, trained),
        "artifact_local": str(local),
        "test_local": str(split.test_dir),
        "training_local": str(split.training_dir),
        "step_seconds": steps.seconds,
    }
    fileio.write_json(run_dir / "report.json", document)
    return RunResult(run_dir, document)


def _start(config: RunConfig, progress: Progress) -> tuple[str, Path, Steps, data.Dataset, data.Split]:
    """What every command begins with: a run id and folder, then the dataset and its held-out split."""
    run_id, run_dir = claim_run_dir(config.reports_dir, config.run_id)
    steps = Steps(progress)
    dataset, split = prepare_data(config, run_dir / "work" / "channels", steps)
    return run_id, run_dir, steps, dataset, split


def _header(
    run_id: str, config: RunConfig, dataset: data.Dataset, split: data.Split, trained: trainers.StoredModel
) -> dict[str, Any]:
    generator = (
        {**dataclasses.asdict(config.generator), "classes": list(config.generator.classes)}
        if config.dataset is None
        else None
    )
    return {
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": processor_identity(),
        "dataset": {
            **dataset.summary(),
            "generated": config.dataset is None,
            "generator": generator,
            "holdout_per_class": config.holdout_per_class,
            "train_images": len(split.train),
            "test_images": [str(i.path.relative_to(split.test_dir)) for i in split.test],
        },
        "training": trained.summary(),
    }


def prepare_data(config: RunConfig, channels_dir: Path, steps: Steps) -> tuple[data.Dataset, data.Split]:
    with steps("dataset", "Dataset: load, validate, hold out test images"):
        dataset = load_or_generate_dataset(config)
        return dataset, data.split_holdout(dataset, channels_dir, config.holdout_per_class, config.split_seed)


def make_trainer(config: RunConfig) -> trainers.Trainer:
    if config.trainer == "sagemaker":
        return trainers.SageMakerTrainer(config.sagemaker, offline=config.s3 is None)
    return trainers.LocalTrainer()


def train_model(
    config: RunConfig, split: data.Split, s3: store.S3Store, run_id: str, work_dir: Path, steps: Steps
) -> trainers.StoredModel:
    hp = config.hyperparameters
    trainer = make_trainer(config)
    where = {
        "local": "local",
        "sagemaker": "SageMaker job, container played locally"
        if config.s3 is None
        else f"SageMaker job on {config.sagemaker.instance_type}",
    }[trainer.name]
    with steps("train", f"Train {config.model_id} ({hp.epochs} epochs, {where})", total=hp.epochs) as advance:
        return trainer.train(
            split.training_dir,
            s3,
            f"edgebench-{run_id}".lower(),
            work_dir,
            hp,
            config.model_id,
            on_epoch=lambda e, n, logs: advance(e, f"loss {logs.get('loss', 0):.3f}"),
        )


def store_tests_and_import(
    s3: store.S3Store, artifact_uri: str, split: data.Split, edge_dir: Path, steps: Steps
) -> tuple[edge.EdgeModel, dict[str, Any]]:
    """Upload the held-out images beside the model, and INT8 calibration images (a subset of the training
    split) beside them for edge nodes (``pytest -m edge --edgebench-calibration``); then download the model
    and test images into a fresh folder as an edge node."""
    test_key, calibration_key = s3.location.key("test"), s3.location.key("calibration")
    test_uri, calibration_uri = s3.location.uri(test_key) + "/", s3.location.uri(calibration_key) + "/"
    calibration = data.spread_over_classes(split.train, edge.CALIBRATION_IMAGES)
    with steps("store", f"Store test images in {test_uri} and calibration images in {calibration_uri}"):
        s3.upload_tree(split.test_dir, test_key)
        s3.upload_images(calibration, calibration_key)
    with steps("import", "Edge import: download, verify, extract"):
        model = edge.import_from_s3(s3, artifact_uri, test_uri, edge_dir)
    return model, {
        "bucket": s3.location.bucket,
        "endpoint": s3.location.endpoint_url or "aws",
        "artifact": artifact_uri,
        "test_images": test_uri,
        "calibration_images": calibration_uri,
    }


def load_or_generate_dataset(config: RunConfig) -> data.Dataset:
    if config.dataset is not None:
        return data.load_dataset(config.dataset)
    return _cached_generated(config, config.generator)


def _cached_generated(config: RunConfig, g: data.GeneratorConfig) -> data.Dataset:
    root = Path(config.cache_dir) / "datasets" / f"weather-seed{g.seed}-n{g.images_per_class}"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{root}.lock"):  # concurrent runs share the cache
        data.generate_weather_dataset(root, g)
        return data.load_dataset(root)


def _validation_seed(config: RunConfig) -> int:
    return config.generator.seed + 1000


def load_validation_set(config: RunConfig, classes: tuple[str, ...]) -> data.Dataset | None:
    """A larger labelled set than the held-out images, for accuracy per backend and precision: generated
    with another seed for the embedded dataset; none for a user's dataset (its classes cannot be made up)."""
    if config.dataset is not None or config.validation_per_class == 0:
        return None
    g = dataclasses.replace(
        config.generator, images_per_class=config.validation_per_class, seed=_validation_seed(config)
    )
    validation = _cached_generated(config, g)
    return validation if set(validation.classes) <= set(classes) else None


@contextmanager
def _s3_store(location: store.S3Location | None, run_id: str) -> Iterator[store.S3Store]:
    """This run's folder (``<prefix>/<run-id>/``) in the given bucket, or in an embedded S3 started here."""
    with store.open_store(location) as s3:
        yield s3.under(run_id)
