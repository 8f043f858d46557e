"""JumpStart metadata through the sagemaker SDK's own utilities (``sagemaker.core``): training image,
training script and base-model URIs, model version and default hyperparameters for a model id.

The SDK reads JumpStart's manifest and model specs from S3 (``jumpstart-cache-prod-<region>``) with the
S3 client of the SageMaker session it is given; edgebench gives it the client of its own ``S3Store``, so
against AWS it reads JumpStart's real bucket and offline it reads the embedded S3. The one documented
offline seam is the SDK's ``AWS_JUMPSTART_CONTENT_BUCKET_OVERRIDE``: ``offline_content`` seeds a bucket on
the fake with the manifest and spec shipped in ``harness/training/jumpstart_metadata/`` (a real TF IC spec, see its
README), an architecture-only base model (no pretrained weights can be downloaded) and a placeholder
script tarball, and points the SDK at it for the duration of the block.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contract import BASE_MODEL_FILE
from harness.errors import ConfigError
from harness.store import S3Store

log = logging.getLogger(__name__)

METADATA_DIR = Path(__file__).parent / "jumpstart_metadata"
OFFLINE_CONTENT_BUCKET = "edgebench-jumpstart-content"
CONTENT_BUCKET_ENV = "AWS_JUMPSTART_CONTENT_BUCKET_OVERRIDE"


@dataclass(frozen=True)
class JumpStartUris:
    """What the SDK resolves for a model id: container image, script and base model, and the version."""

    model_id: str
    model_version: str
    image: str
    script: str
    base_model: str
    default_hyperparameters: dict[str, str]
    entry_point: str = "transfer_learning.py"


def resolve(
    model_id: str, region: str, instance_type: str, s3: S3Store, sagemaker_client: Any, model_version: str = "*"
) -> JumpStartUris:
    """Ask the SDK's JumpStart utilities, through ``s3``'s client (real JumpStart bucket or the fake)."""
    from sagemaker.core import hyperparameters, image_uris, model_uris, script_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.jumpstart.accessors import JumpStartModelsAccessor

    # The SDK warns on stderr about the "*" version we ask for on purpose (the resolved one is recorded), and
    # logs at INFO through its own handlers which config files it did not find.
    logging.getLogger("sagemaker.jumpstart").setLevel(logging.ERROR)
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    session = Session(boto_session=s3.session, sagemaker_client=sagemaker_client)
    session.s3_client = s3.client  # the SDK reads manifest and specs with this client
    try:
        specs = JumpStartModelsAccessor.get_model_specs(
            region=region, model_id=model_id, version=model_version, s3_client=s3.client
        )
        common = {"model_id": model_id, "model_version": specs.version, "region": region, "sagemaker_session": session}
        return JumpStartUris(
            model_id=model_id,
            model_version=specs.version,
            image=image_uris.retrieve(framework=None, image_scope="training", instance_type=instance_type, **common),
            script=script_uris.retrieve(script_scope="training", **common),
            base_model=model_uris.retrieve(model_scope="training", instance_type=instance_type, **common),
            default_hyperparameters=hyperparameters.retrieve_default(instance_type=instance_type, **common),
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"JumpStart model {model_id!r} (version {model_version}, {instance_type}, {region}): "
            f"{str(exc).splitlines()[0]}; check the model id and that it supports training "
            "on this instance type"
        ) from None


@contextmanager
def offline_content(s3: S3Store) -> Iterator[str]:
    """Seed the fake's JumpStart content bucket and point the SDK at it; yields the bucket name."""
    content = s3.for_bucket(OFFLINE_CONTENT_BUCKET)
    content.ensure_bucket(create=True)
    for path in sorted(METADATA_DIR.rglob("*.json")):
        content.upload_file(path, path.relative_to(METADATA_DIR).as_posix())
    for spec_path in sorted(METADATA_DIR.glob("community_models/*/specs_*.json")):
        spec = json.loads(spec_path.read_text())
        _put_tarball(
            content,
            spec["training_artifact_key"],
            BASE_MODEL_FILE,
            json.dumps(
                {
                    "model_id": spec["model_id"],
                    "weights": None,
                    "note": "edgebench offline base model: architecture only, trained from scratch",
                }
            ).encode(),
        )
        for key in {spec["training_script_key"], spec.get("training_prepacked_script_key") or ""} - {""}:
            _put_tarball(
                content,
                key,
                "README.txt",
                b"edgebench offline: the JumpStart training script is "
                b"played by harness.training.train.run_training_container\n",
            )
    previous = os.environ.get(CONTENT_BUCKET_ENV)
    os.environ[CONTENT_BUCKET_ENV] = OFFLINE_CONTENT_BUCKET
    try:
        yield OFFLINE_CONTENT_BUCKET
    finally:
        if previous is None:
            os.environ.pop(CONTENT_BUCKET_ENV, None)
        else:
            os.environ[CONTENT_BUCKET_ENV] = previous


def _put_tarball(store: S3Store, key: str, member: str, payload: bytes) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    store.client.put_object(Bucket=store.location.bucket, Key=key, Body=buffer.getvalue())
