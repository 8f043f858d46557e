"""Two trainers behind one interface; both end with ``model.tar.gz`` in S3 and say where.

- ``LocalTrainer``: the Keras trainer here, then an upload to the key a SageMaker job would use.
- ``SageMakerTrainer``: a JumpStart training job through boto3 (``sagemaker_job``), against AWS or, offline,
  against the embedded moto server with the container played locally.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.store import S3Store
from harness.training import jumpstart, sagemaker_job, train


@dataclass(frozen=True)
class StoredModel:
    """What any trainer returns: ``model.tar.gz`` in S3 (where a SageMaker job puts it) and how it was trained."""

    artifact_uri: str
    trainer: str
    model_id: str
    hyperparameters: train.Hyperparameters
    metrics: dict[str, float]
    seconds: float
    job: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "trainer": self.trainer,
            "model_id": self.model_id,
            "artifact": self.artifact_uri,
            "hyperparameters": self.hyperparameters.to_jumpstart(),
            "metrics": self.metrics,
            "seconds": round(self.seconds, 3),
            "job": self.job,
        }


class Trainer(Protocol):
    name: str

    def train(
        self,
        training_dir: Path,
        s3: S3Store,
        job_name: str,
        work_dir: Path,
        hp: train.Hyperparameters,
        model_id: str,
        on_epoch: train.EpochCallback | None = None,
    ) -> StoredModel: ...


def artifact_key(s3: S3Store, job_name: str) -> str:
    """Where SageMaker puts a job's model: <output path>/<job name>/output/model.tar.gz."""
    return s3.location.key("training-jobs", job_name, "output", "model.tar.gz")


class LocalTrainer:
    name = "local"

    def train(
        self,
        training_dir: Path,
        s3: S3Store,
        job_name: str,
        work_dir: Path,
        hp: train.Hyperparameters,
        model_id: str,
        on_epoch: train.EpochCallback | None = None,
    ) -> StoredModel:
        started = time.perf_counter()
        result = train.train_local(training_dir, work_dir / "training-output", hp, model_id, on_epoch)
        key = artifact_key(s3, job_name)
        s3.upload_file(result.artifact, key)
        return StoredModel(s3.location.uri(key), self.name, model_id, hp, result.metrics, time.perf_counter() - started)


class SageMakerTrainer:
    name = "sagemaker"

    def __init__(self, job: sagemaker_job.SageMakerJob, offline: bool) -> None:
        self.job = job
        self.offline = offline

    def train(
        self,
        training_dir: Path,
        s3: S3Store,
        job_name: str,
        work_dir: Path,
        hp: train.Hyperparameters,
        model_id: str,
        on_epoch: train.EpochCallback | None = None,
    ) -> StoredModel:
        started = time.perf_counter()
        # Offline: the SDK reads JumpStart metadata from the fake's seeded bucket and the container runs here.
        with jumpstart.offline_content(s3) if self.offline else nullcontext():
            uris = jumpstart.resolve(
                model_id, s3.location.region, self.job.instance_type, s3, s3.client_for("sagemaker")
            )
            executor = (
                sagemaker_job.LocalContainer(s3, work_dir / "container", on_epoch)
                if self.offline
                else sagemaker_job.ManagedBySageMaker()
            )
            outcome = sagemaker_job.train_on_sagemaker(training_dir, s3, uris, hp, self.job, job_name, executor)
        job = {
            "name": job_name,
            "status": outcome.description["TrainingJobStatus"],
            "arn": outcome.description.get("TrainingJobArn", ""),
            "instance_type": self.job.instance_type,
            "model_version": uris.model_version,
            "image": uris.image,
            "script": uris.script,
            "base_model": uris.base_model,
            "played_locally": self.offline,
        }
        return StoredModel(
            outcome.artifact_uri, self.name, model_id, hp, outcome.metrics, time.perf_counter() - started, job
        )
