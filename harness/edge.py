"""Import on an edge node: fetch ``model.tar.gz``, the held-out test images and the INT8 calibration images,
extract safely, load labels."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.contract import SAVED_MODEL_DIR, check_saved_model, load_label_map
from harness.data import LabeledImage, load_dataset
from harness.errors import ArtifactError, DatasetError, StoreError
from harness.fileio import extract_safely, staged_dir
from harness.numeric import FloatArray, softmax
from harness.store import S3Location, S3Store, parse_s3_uri

# INT8 calibration images that travel with an artifact: `edgebench run` and a fleet run upload them beside the
# test images, a subset of the training split, the classes taking turns. Measured on the suite MobileNetV2
# (5 classes, 200 parity images), 3 balanced subsets per size: INT8 top-1 agreement with TF FP32 was
# 0.955-0.965 at 5 images, 0.955-0.98 at 25, 0.96-0.975 at 100, 0.965-0.97 at 200 (0.985 for one set of 300):
# the spread between subsets of one size is as wide as any trend from 10 to 200. Quantizing took 12 s at 25,
# 20 s at 100 and 34 s at NNCF's default of 300 (2 cores), per node and per INT8 model. 100 is 20 images per
# class here, at under two thirds of the 300-image time.
CALIBRATION_IMAGES = 100


@dataclass(frozen=True)
class EdgeModel:
    """An imported artifact: SavedModel directory, classes in output-index order, held-out test images."""

    root: Path
    saved_model_dir: Path
    classes: tuple[str, ...]
    test_images: tuple[LabeledImage, ...]
    source: str

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "root": str(self.root),
            "classes": list(self.classes),
            "test_images": [str(image.path.relative_to(self.root)) for image in self.test_images],
        }


def import_from_s3(s3: S3Store, artifact_uri: str, test_uri: str | None, edge_dir: Path) -> EdgeModel:
    """Download ``model.tar.gz`` (and the test images under ``test_uri``, if given) into a fresh ``edge_dir``
    and extract it. The URIs may name other buckets than ``s3``'s; endpoint and credentials are shared."""
    edge_dir = _fresh_dir(edge_dir)
    bucket, key = parse_s3_uri(artifact_uri)
    tarball = s3.for_bucket(bucket).download_file(key, edge_dir / "model.tar.gz")
    test_dir = None
    if test_uri is not None:
        test_bucket, test_prefix = parse_s3_uri(test_uri)
        test_dir = edge_dir / "test"
        with staged_dir(test_dir) as staging:  # every test image or none: never a half-downloaded test set
            s3.for_bucket(test_bucket).download_tree(test_prefix.rstrip("/"), staging)
    return _open(edge_dir, tarball, test_dir, artifact_uri, test_uri)


def import_local(artifact: Path, edge_dir: Path, test_dir: Path | None = None) -> EdgeModel:
    """Import a ``model.tar.gz`` (and optionally a test folder) that is already on this machine."""
    artifact = Path(artifact)
    if not artifact.is_file():
        raise ArtifactError(f"{artifact}: no such model.tar.gz; pass the file a training job wrote")
    edge_dir = _fresh_dir(edge_dir)
    tarball = edge_dir / "model.tar.gz"
    shutil.copyfile(artifact, tarball)
    if test_dir is not None:
        shutil.copytree(test_dir, edge_dir / "test")
    return _open(
        edge_dir,
        tarball,
        edge_dir / "test" if test_dir is not None else None,
        str(artifact),
        str(test_dir) if test_dir is not None else None,
    )


def import_calibration(source: str, dest: Path, s3: S3Store | None = None) -> Path:
    """INT8 calibration images on this node, validated as a ``{class}/{image}`` folder; returns that folder.

    ``source`` is a local folder (validated where it is; ``dest`` is not touched) or an ``s3://BUCKET/PREFIX``
    (every object under it downloaded into ``dest``, replacing what was there, checksums verified, then
    validated; on any error ``dest`` is left absent). ``s3`` gives the endpoint and credentials (its bucket
    does not matter); ``None`` uses the standard AWS chain, where ``AWS_ENDPOINT_URL`` also applies. The
    images must be training images (preprocessed by the caller), never the held-out test images. Errors are
    one line naming ``source``: DatasetError (layout, unreadable image), StoreError (S3)."""
    if not source.startswith("s3://"):
        return _validated_calibration(Path(source), source)
    bucket, prefix = parse_s3_uri(source)
    if not prefix.strip("/"):
        raise StoreError(f"calibration images {source}: no prefix; pass s3://BUCKET/PREFIX holding {{class}}/{{image}}")
    store = (s3 or S3Store(S3Location(bucket, prefix=""))).for_bucket(bucket)
    try:
        with staged_dir(Path(dest)) as staging:
            store.download_tree(prefix.rstrip("/"), staging)
            _validated_calibration(staging, source.rstrip("/"))
    except StoreError as exc:
        raise StoreError(f"calibration images: {exc}") from None
    return Path(dest)


def _validated_calibration(folder: Path, shown_as: str) -> Path:
    """``load_dataset`` on ``folder``; an error names ``shown_as`` (the user's path or URI), not ``folder``."""
    try:
        load_dataset(folder)
    except DatasetError as exc:
        raise DatasetError(f"calibration images: {str(exc).replace(str(folder), shown_as)}") from None
    return folder


def jumpstart_verbose(classes: tuple[str, ...], logits: FloatArray) -> dict[str, Any]:
    """One prediction in the JumpStart TF IC endpoint's ``application/json;verbose`` shape, so edge and cloud
    predictions compare directly."""
    probabilities = softmax(np.asarray(logits))
    return {
        "probabilities": [float(p) for p in probabilities],
        "labels": list(classes),
        "predicted_label": classes[int(np.argmax(probabilities))],
    }


def _fresh_dir(path: Path) -> Path:
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _open(
    edge_dir: Path, tarball: Path, test_dir: Path | None, source: str, test_source: str | None = None
) -> EdgeModel:
    """``source`` and ``test_source`` are the user's names for the artifact and the test folder (path or URI):
    errors name them, not our copies."""
    model_dir = edge_dir / "model"
    try:
        extract_artifact(tarball, model_dir)
        classes = load_label_map(model_dir)
    except ArtifactError as exc:
        # the tarball first: the model folder's path is a prefix of it (``…/model`` and ``…/model.tar.gz``)
        message = str(exc).replace(str(tarball), source).replace(f"{model_dir}/", f"{source} member ")
        raise ArtifactError(message.replace(str(model_dir), source)) from None
    test_images: tuple[LabeledImage, ...] = ()
    if test_dir is not None:
        theirs = (test_source or str(test_dir)).rstrip("/")
        try:
            test_set = load_dataset(test_dir)
        except DatasetError as exc:
            raise ArtifactError(f"test images for {source}: {str(exc).replace(str(test_dir), theirs)}") from None
        unknown = sorted(set(test_set.classes) - set(classes))
        if unknown:
            raise ArtifactError(
                f"test images in {theirs}: classes {unknown} are not in the model's label map "
                f"{list(classes)}; the test set does not belong to this model"
            )
        test_images = test_set.images
    return EdgeModel(edge_dir, model_dir / SAVED_MODEL_DIR, classes, test_images, source)


def extract_artifact(tarball: Path, dest: Path) -> Path:
    """Extract with PEP 706's ``data`` filter (no absolute paths, no escaping links, no devices) into a
    temporary folder, check the JumpStart layout, then rename into ``dest``."""
    with staged_dir(dest) as staging:
        extract_safely(tarball, staging)
        check_saved_model(staging, tarball)
    return dest
