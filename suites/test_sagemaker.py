"""The SageMaker JumpStart training path on moto: the same boto3 calls as against AWS, with the training
container played locally (the documented offline seam)."""

from __future__ import annotations

import json

import pytest

from harness import data, edge
from harness.errors import ConfigError, TrainingError
from harness.training import jumpstart, sagemaker_job, train, trainers

MODEL_ID = train.DEFAULT_MODEL_ID


@pytest.fixture
def s3(s3_location):
    from harness.store import S3Store

    return S3Store(s3_location)


def test_jumpstart_defaults_match_the_model_spec(s3):
    """Our Hyperparameters dataclass and JumpStart's spec agree on names and defaults."""
    with jumpstart.offline_content(s3):
        uris = jumpstart.resolve(MODEL_ID, "us-east-1", "ml.m5.xlarge", s3, s3.client_for("sagemaker"))
    assert train.Hyperparameters.from_mapping(uris.default_hyperparameters) == train.Hyperparameters()
    assert set(uris.default_hyperparameters) == set(train.Hyperparameters().to_jumpstart())
    assert uris.model_version == "4.0.6"
    assert uris.image.endswith("tensorflow-training:2.9-cpu-py39")
    assert uris.script.startswith(f"s3://{jumpstart.OFFLINE_CONTENT_BUCKET}/source-directory-tarballs/")
    assert uris.base_model.endswith(f"train-{MODEL_ID}.tar.gz")


@pytest.mark.parametrize(
    "model_id,instance_type,pattern",
    [
        ("tensorflow-ic-no-such-model", "ml.m5.xlarge", "Unable to find model manifest"),
        (MODEL_ID, "ml.t2.medium", "No training ECR configuration"),
    ],
)
def test_jumpstart_resolution_errors_are_one_line(s3, model_id, instance_type, pattern):
    with jumpstart.offline_content(s3), pytest.raises(ConfigError, match=pattern) as info:
        jumpstart.resolve(model_id, "us-east-1", instance_type, s3, s3.client_for("sagemaker"))
    assert "\n" not in str(info.value)


def test_sagemaker_training_end_to_end_on_moto(s3, tmp_path):
    root = data.generate_weather_dataset(tmp_path / "ds", data.GeneratorConfig(images_per_class=5, seed=4))
    split = data.split_holdout(data.load_dataset(root), tmp_path / "split")
    hp = train.Hyperparameters(epochs=1, batch_size=8, train_only_top_layer=False)
    job = sagemaker_job.SageMakerJob(role_arn=sagemaker_job.OFFLINE_ROLE_ARN, poll_seconds=0.01)
    trained = trainers.SageMakerTrainer(job, offline=True).train(
        split.training_dir, s3, "edgebench-job-1", tmp_path / "work", hp, MODEL_ID
    )

    # The fake recorded the request a JumpStart fine-tuning job sends.
    described = s3.client_for("sagemaker").describe_training_job(TrainingJobName="edgebench-job-1")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["AlgorithmSpecification"]["TrainingImage"].endswith("tensorflow-training:2.9-cpu-py39")
    sent = described["HyperParameters"]
    assert train.Hyperparameters.from_mapping({k: v for k, v in sent.items() if not k.startswith("sagemaker_")}) == hp
    assert sent["sagemaker_program"] == "transfer_learning.py"
    assert sent["sagemaker_submit_directory"].endswith("sourcedir.tar.gz")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]}
    assert channels["training"] == f"s3://{s3.location.bucket}/suite/channels/training/"
    assert channels["model"].endswith(f"train-{MODEL_ID}.tar.gz")
    assert described["OutputDataConfig"]["S3OutputPath"] == f"s3://{s3.location.bucket}/suite/training-jobs"
    training_keys = s3.list_keys("suite/channels/training")
    assert len(training_keys) == len(split.train)

    # The artifact is at exactly the key the job reports, and imports on an edge node.
    assert trained.artifact_uri == described["ModelArtifacts"]["S3ModelArtifacts"]
    assert trained.artifact_uri == f"s3://{s3.location.bucket}/suite/training-jobs/edgebench-job-1/output/model.tar.gz"
    model = edge.import_from_s3(s3, trained.artifact_uri, None, tmp_path / "edge")
    assert model.classes == data.WEATHER_CLASSES
    assert {"train_accuracy"} <= set(trained.metrics)
    assert trained.job["model_version"] == "4.0.6" and trained.job["played_locally"]


def test_training_job_request_has_the_jumpstart_shape():
    uris = jumpstart.JumpStartUris(MODEL_ID, "4.0.6", "img", "s3://c/script.tar.gz", "s3://c/base.tar.gz", {})
    job = sagemaker_job.SageMakerJob(role_arn="arn:aws:iam::111122223333:role/r", instance_type="ml.c5.2xlarge")
    request = sagemaker_job.training_job_request(
        "j", uris, train.Hyperparameters(), "s3://b/train/", "s3://b/out", job, "eu-west-1"
    )
    assert request["ResourceConfig"] == {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["training", "model"]
    assert request["HyperParameters"]["sagemaker_region"] == "eu-west-1"
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    assert {"Key": "sagemaker-sdk:jumpstart-model-id", "Value": MODEL_ID} in request["Tags"]


class _FailingSageMaker:
    """SageMaker answering that the job failed: moto only ever reports Completed."""

    def create_training_job(self, **request):
        self.request = request

    def describe_training_job(self, TrainingJobName):
        return {
            "TrainingJobName": TrainingJobName,
            "TrainingJobStatus": "Failed",
            "FailureReason": "ClientError: out of memory",
        }


def test_a_failed_job_is_a_one_line_error():
    job = sagemaker_job.SageMakerJob(role_arn=sagemaker_job.OFFLINE_ROLE_ARN, poll_seconds=0)
    with pytest.raises(TrainingError, match="training job j failed: ClientError: out of memory"):
        sagemaker_job.run_training_job(
            _FailingSageMaker(), {"TrainingJobName": "j"}, sagemaker_job.ManagedBySageMaker(), job
        )


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"role_arn": "my-role"}, "expected an IAM role ARN"),
        ({"role_arn": sagemaker_job.OFFLINE_ROLE_ARN, "instance_type": "m5.large"}, "expected a SageMaker type"),
    ],
)
def test_bad_job_settings(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        sagemaker_job.SageMakerJob(**kwargs)


def test_container_needs_the_sagemaker_environment(tmp_path):
    with pytest.raises(TrainingError, match="lacks SM_CHANNEL_TRAINING"):
        train.run_training_container({"SM_MODEL_DIR": str(tmp_path), "SM_INPUT_CONFIG_DIR": str(tmp_path)})


def test_container_rejects_unknown_hyperparameters(tmp_path):
    (tmp_path / "hyperparameters.json").write_text(
        json.dumps({"epochs": "1", "warp_speed": "9", "sagemaker_program": "transfer_learning.py"})
    )
    env = {"SM_CHANNEL_TRAINING": str(tmp_path), "SM_MODEL_DIR": str(tmp_path), "SM_INPUT_CONFIG_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="'warp_speed': unknown"):
        train.run_training_container(env)
