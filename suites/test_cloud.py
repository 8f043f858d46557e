"""Against a real AWS account. Skipped unless configured (see README "Running against real AWS"):
EDGEBENCH_CLOUD_BUCKET (an existing bucket), credentials through the standard chain, and for the training
job EDGEBENCH_SAGEMAKER_ROLE. Everything created under a unique prefix is deleted afterwards."""

from __future__ import annotations

import os
import uuid

import pytest

from harness import data, edge
from harness.store import S3Location, S3Store, default_region
from harness.training import jumpstart, sagemaker_job, train, trainers

pytestmark = pytest.mark.cloud
REGION = default_region()


@pytest.fixture
def cloud_store():
    bucket = os.environ.get("EDGEBENCH_CLOUD_BUCKET")
    if not bucket:
        pytest.skip(
            "real AWS not configured: set EDGEBENCH_CLOUD_BUCKET to an existing bucket and provide "
            "credentials through the standard AWS chain"
        )
    s3 = S3Store(S3Location(bucket, prefix=f"edgebench-tests/{uuid.uuid4().hex[:12]}", region=REGION))
    s3.ensure_bucket()
    try:
        yield s3
    finally:
        for key in s3.list_keys(s3.location.prefix):
            s3.client.delete_object(Bucket=bucket, Key=key)


def test_round_trip_on_real_s3(cloud_store, tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024))  # multipart
    key = cloud_store.location.key("blob.bin")
    cloud_store.upload_file(source, key)
    assert cloud_store.download_file(key, tmp_path / "copy.bin").read_bytes() == source.read_bytes()


def test_jumpstart_metadata_from_the_real_bucket(cloud_store):
    uris = jumpstart.resolve(
        train.DEFAULT_MODEL_ID, REGION, "ml.m5.xlarge", cloud_store, cloud_store.client_for("sagemaker")
    )
    assert train.Hyperparameters.from_mapping(uris.default_hyperparameters) == train.Hyperparameters()
    assert uris.base_model.startswith("s3://jumpstart-cache-prod-")


@pytest.mark.slow
def test_jumpstart_training_job_on_real_sagemaker(cloud_store, tmp_path):
    role = os.environ.get("EDGEBENCH_SAGEMAKER_ROLE")
    if not role:
        pytest.skip("set EDGEBENCH_SAGEMAKER_ROLE to a SageMaker execution role ARN to run a real training job")
    root = data.generate_weather_dataset(tmp_path / "ds", data.GeneratorConfig(images_per_class=6))
    split = data.split_holdout(data.load_dataset(root), tmp_path / "split")
    job = sagemaker_job.SageMakerJob(role_arn=role, instance_type="ml.m5.xlarge", max_runtime_seconds=3600)
    trained = trainers.SageMakerTrainer(job, offline=False).train(
        split.training_dir,
        cloud_store,
        f"edgebench-test-{uuid.uuid4().hex[:8]}",
        tmp_path / "work",
        train.Hyperparameters(epochs=1),
        train.DEFAULT_MODEL_ID,
    )
    model = edge.import_from_s3(cloud_store, trained.artifact_uri, None, tmp_path / "edge")
    assert model.classes == data.WEATHER_CLASSES  # a real JumpStart artifact imports like ours
