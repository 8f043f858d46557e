"""SageMaker JumpStart training through boto3: upload the ``training`` channel, CreateTrainingJob for a
JumpStart model id, poll DescribeTrainingJob, return ``ModelArtifacts.S3ModelArtifacts``.

Offline the very same calls go to the embedded moto server. moto records the job and reports it Completed
at once but runs nothing, so one seam differs: the ``TrainingExecutor``. Against AWS it is the service
itself (nothing to do: SageMaker runs the container); offline it is ``LocalContainer``, which plays the
JumpStart container here (channels downloaded from S3, SageMaker's environment and hyperparameters file,
the local trainer) and uploads ``model.tar.gz`` to exactly the key the job reports.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from harness.contract import tar_model_dir
from harness.errors import ConfigError, StoreError, TrainingError
from harness.fileio import extract_safely
from harness.store import S3Store, parse_s3_uri
from harness.training import train
from harness.training.jumpstart import JumpStartUris

log = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
OFFLINE_ROLE_ARN = "arn:aws:iam::123456789012:role/edgebench-offline"  # moto's default account
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class SageMakerJob:
    role_arn: str
    instance_type: str = field(default=DEFAULT_INSTANCE_TYPE, metadata={"help": "SageMaker training instance type"})
    volume_gb: int = 30
    max_runtime_seconds: int = 6 * 3600
    poll_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.role_arn.startswith("arn:aws:iam::"):
            raise ConfigError(
                f"execution role {self.role_arn!r}: expected an IAM role ARN "
                "(arn:aws:iam::ACCOUNT:role/NAME); set --role or EDGEBENCH_SAGEMAKER_ROLE"
            )
        if not self.instance_type.startswith("ml."):
            raise ConfigError(f"instance type {self.instance_type!r}: expected a SageMaker type such as ml.m5.xlarge")


class TrainingExecutor(Protocol):
    def run(self, description: dict[str, Any]) -> dict[str, float] | None:
        """Make the job described by DescribeTrainingJob actually run; return its metrics if it knows them."""


class ManagedBySageMaker:
    """Real AWS: SageMaker runs the container; nothing to do here (metrics come from the job)."""

    def run(self, description: dict[str, Any]) -> dict[str, float] | None:
        return None


def training_job_request(
    job_name: str,
    uris: JumpStartUris,
    hyperparameters: train.Hyperparameters,
    training_uri: str,
    output_uri: str,
    job: SageMakerJob,
    region: str,
) -> dict[str, Any]:
    """The CreateTrainingJob request a JumpStart fine-tuning job sends (as the SDK's estimator builds it)."""
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": uris.image, "TrainingInputMode": "File"},
        "RoleArn": job.role_arn,
        "HyperParameters": {
            **hyperparameters.to_jumpstart(),
            "sagemaker_program": uris.entry_point,
            "sagemaker_submit_directory": uris.script,
            "sagemaker_container_log_level": "20",
            "sagemaker_region": region,
        },
        "InputDataConfig": [_channel("training", training_uri), _channel("model", uris.base_model)],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": job.instance_type, "InstanceCount": 1, "VolumeSizeInGB": job.volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_seconds},
        "Tags": [
            {"Key": "sagemaker-sdk:jumpstart-model-id", "Value": uris.model_id},
            {"Key": "sagemaker-sdk:jumpstart-model-version", "Value": uris.model_version},
        ],
    }


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "InputMode": "File",
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }


StatusCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class JobOutcome:
    artifact_uri: str
    description: dict[str, Any]
    metrics: dict[str, float]
    request: dict[str, Any]


def train_on_sagemaker(
    training_dir: Path,
    s3: S3Store,
    uris: JumpStartUris,
    hyperparameters: train.Hyperparameters,
    job: SageMakerJob,
    job_name: str,
    executor: TrainingExecutor,
    on_status: StatusCallback | None = None,
) -> JobOutcome:
    """Upload the ``training`` channel, run the JumpStart training job, return where its model.tar.gz is."""
    training_prefix = s3.location.key("channels", "training")
    s3.upload_tree(training_dir, training_prefix)
    request = training_job_request(
        job_name,
        uris,
        hyperparameters,
        s3.location.uri(training_prefix) + "/",
        s3.location.uri(s3.location.key("training-jobs")),
        job,
        s3.location.region,
    )
    description, metrics = run_training_job(s3.client_for("sagemaker"), request, executor, job, on_status)
    return JobOutcome(description["ModelArtifacts"]["S3ModelArtifacts"], description, metrics, request)


def run_training_job(
    sm_client: Any,
    request: dict[str, Any],
    executor: TrainingExecutor,
    job: SageMakerJob,
    on_status: StatusCallback | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """CreateTrainingJob, let the executor run it, poll until a terminal status; return the description and
    the job's metrics (the executor's own, else the job's final metric data)."""
    name = request["TrainingJobName"]
    with _sagemaker_errors(f"training job {name}"):
        sm_client.create_training_job(**request)
        metrics = executor.run(sm_client.describe_training_job(TrainingJobName=name))
        while True:
            description = sm_client.describe_training_job(TrainingJobName=name)
            if on_status is not None:
                on_status(description)
            if description["TrainingJobStatus"] in TERMINAL_STATUSES:
                break
            time.sleep(job.poll_seconds)
    status = description["TrainingJobStatus"]
    if status != "Completed":
        reason = description.get("FailureReason", "no reason given")
        raise TrainingError(f"training job {name} {status.lower()}: {reason}; see its CloudWatch logs")
    if metrics is None:
        metrics = {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList", [])}
    return description, metrics


class LocalContainer:
    """Offline executor: plays the JumpStart training container on this machine, laid out as /opt/ml is."""

    def __init__(self, s3: S3Store, workdir: Path, on_epoch: train.EpochCallback | None = None) -> None:
        self.s3 = s3
        self.workdir = Path(workdir)
        self.on_epoch = on_epoch

    def run(self, description: dict[str, Any]) -> dict[str, float] | None:
        root = self.workdir / description["TrainingJobName"] / "opt-ml"
        if root.exists():
            shutil.rmtree(root)
        env = {
            "SM_MODEL_DIR": str(root / "model"),
            "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        }
        for name in env.values():
            Path(name).mkdir(parents=True)
        for channel in description["InputDataConfig"]:
            channel_dir = root / "input" / "data" / channel["ChannelName"]
            self._download_channel(channel["DataSource"]["S3DataSource"]["S3Uri"], channel_dir)
            env[f"SM_CHANNEL_{channel['ChannelName'].upper()}"] = str(channel_dir)
        (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(description["HyperParameters"]))
        metrics = train.run_training_container(env, self.on_epoch)
        artifact_uri = description["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, key = parse_s3_uri(artifact_uri)
        tarball = tar_model_dir(root / "model", root / "output" / "model.tar.gz")
        self.s3.for_bucket(bucket).upload_file(tarball, key)
        log.info("offline container for %s wrote %s", description["TrainingJobName"], artifact_uri)
        return metrics

    def _download_channel(self, uri: str, dest: Path) -> None:
        """S3Prefix semantics: every object under the URI; tarballs in the `model` channel are unpacked, as
        the JumpStart script does with its base model."""
        bucket, key = parse_s3_uri(uri)
        store = self.s3.for_bucket(bucket)
        if key.endswith(".tar.gz"):
            tarball = store.download_file(key, dest / Path(key).name)
            extract_safely(tarball, dest)
            return
        store.download_tree(key, dest)


@contextmanager
def _sagemaker_errors(what: str) -> Iterator[None]:
    """boto3 SageMaker failures -> one-line errors naming the job and the fix."""
    try:
        yield
    except NoCredentialsError:
        raise StoreError(
            f"{what}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or leave --bucket unset to train offline"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TrainingError(
            f"{what}: {error.get('Code', 'error')}: {error.get('Message', '')}; check the role, "
            "the instance type's quota and the region"
        ) from None
    except BotoCoreError as exc:
        raise TrainingError(f"{what}: {exc}; check --endpoint-url, --region and the network") from None
