"""A fleet run's inputs where every node reads them, in S3: the artifact, the held-out test images and the
INT8 calibration images. Given as s3:// URIs they are used as they are; given as local paths they are
checked first (every error names the path the user gave, before anything is trained or uploaded), then
uploaded beside each other under ``artifacts/<run-id>/{model.tar.gz,test/,calibration/}``. Without an
artifact the default model is trained first, and the calibration images are a capped subset of its
training split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import data, edge
from harness.edge import CALIBRATION_IMAGES
from harness.errors import ConfigError, DatasetError, StoreError
from harness.fileio import check_tarball
from harness.store import S3Store, parse_s3_uri


@dataclass(frozen=True)
class CalibrationSubset:
    """Training images to calibrate INT8 with on every node: a capped subset of a local folder."""

    folder: Path
    images: tuple[data.LabeledImage, ...]
    available: int

    def describe(self) -> str:
        classes = len({image.label for image in self.images})
        return f"{len(self.images)} of the {self.available} images in {self.folder}, spread over {classes} classes"


def calibration_subset(folder: Path, limit: int = CALIBRATION_IMAGES) -> CalibrationSubset:
    """A local ``{class}/{image}`` folder of training images, validated (a one-line DatasetError naming it),
    and at most ``limit`` of its images, the classes taking turns."""
    edge.import_calibration(str(folder), folder)  # validation only: a local folder stays where it is
    images = data.load_dataset(folder, check_images=False).images
    return CalibrationSubset(Path(folder), data.spread_over_classes(images, limit), len(images))


@dataclass(frozen=True)
class FleetInputs:
    """What the user gave: each an s3:// URI or a local path (None: see the module docstring)."""

    artifact: str | None = None  # model.tar.gz
    test_images: str | None = None  # held-out {class}/{image} folder
    calibration_images: str | None = None  # {class}/{image} training images, never the held-out ones


@dataclass(frozen=True)
class TrainedInputs:
    """Where a training run left the artifact, its held-out test images and its training split."""

    artifact: Path
    test_images: Path
    training_images: Path


@dataclass(frozen=True)
class StagedInputs:
    """The inputs as the nodes read them."""

    artifact_uri: str
    test_uri: str | None = None
    calibration_uri: str | None = None


def stage_inputs(
    s3: S3Store,
    run_id: str,
    given: FleetInputs,
    train: Callable[[], TrainedInputs],
    note: Callable[[str], None] = lambda line: None,
) -> StagedInputs:
    """``given`` checked, then in S3 (``s3``'s bucket, under its prefix) where the nodes read it; ``train``
    runs only when there is no artifact. ``note`` hears what is done on the user's behalf."""
    _check_uris(given)
    if given.artifact and given.artifact.startswith("s3://"):
        return StagedInputs(given.artifact, given.test_images, given.calibration_images)
    calibration: str | CalibrationSubset | None = given.calibration_images
    if given.calibration_images and not given.calibration_images.startswith("s3://"):  # before any training or upload
        calibration = calibration_subset(Path(given.calibration_images))
    given_test_uri = given.test_images if given.test_images and given.test_images.startswith("s3://") else None
    if given.artifact:
        # S3 test images stay where they are; a local folder is checked, then uploaded beside the artifact
        artifact = _local_artifact(given.artifact)
        tests = None if given_test_uri else _local_tests(given.test_images)
    else:
        note("No --artifact: training the offline default model first")
        trained = train()
        artifact, tests = trained.artifact, trained.test_images
        calibration = calibration or calibration_subset(trained.training_images)
    base = s3.location.key("artifacts", run_id)
    artifact_uri = s3.upload_file(artifact, f"{base}/model.tar.gz")
    test_uri = given_test_uri if given.artifact else None
    if tests is not None:
        s3.upload_tree(tests, f"{base}/test")
        test_uri = s3.location.uri(f"{base}/test")
    if isinstance(calibration, CalibrationSubset):
        note(f"Calibration: {calibration.describe()}")
        calibration = s3.upload_images(calibration.images, f"{base}/calibration")
    return StagedInputs(artifact_uri, test_uri, calibration)


def _check_uris(given: FleetInputs) -> None:
    """Each s3:// URI well formed; with an s3:// artifact, the images in S3 too (the nodes read them there)."""
    for option, value in (
        ("--artifact", given.artifact),
        ("--test-images", given.test_images),
        ("--calibration-images", given.calibration_images),
    ):
        if value and value.startswith("s3://"):
            try:
                parse_s3_uri(value)
            except StoreError as exc:
                raise StoreError(f"{option} {exc}") from None
    if given.artifact and given.artifact.startswith("s3://"):
        for option, value in (("--test-images", given.test_images), ("--calibration-images", given.calibration_images)):
            if value and not value.startswith("s3://"):
                raise ConfigError(
                    f"{option}: with an s3:// --artifact the nodes read these images from S3 too; "
                    "pass s3://BUCKET/PREFIX"
                )


def _local_artifact(given: str) -> Path:
    artifact = Path(given)
    if not artifact.is_file():
        raise ConfigError(f"--artifact {given}: no such file; pass a model.tar.gz or an s3:// URI")
    check_tarball(artifact)  # here, not on every node against the uploaded copy
    return artifact


def _local_tests(given: str | None) -> Path | None:
    if given is None:
        return None
    try:  # the layout, here rather than on every node against the uploaded copy
        data.load_dataset(Path(given), check_images=False)
    except DatasetError as exc:
        raise DatasetError(f"test images: {exc}") from None
    return Path(given)
