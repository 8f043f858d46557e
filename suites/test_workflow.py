"""The whole workflow end to end on a moto S3 server, through the same boto3 path a real bucket uses."""

from __future__ import annotations

import json
import tarfile

import boto3
import pytest

from harness import data, store, train, workflow
from harness.measure import TimingPlan


@pytest.fixture(scope="module")
def tiny_run_config():
    return dict(generator=data.GeneratorConfig(images_per_class=6, seed=3),
                hyperparameters=train.Hyperparameters(epochs=1, batch_size=8, train_only_top_layer=False),
                timing=TimingPlan(warmup=1, min_calls=5, min_seconds=0.0))


def test_run_end_to_end_against_a_bucket(tmp_path, s3_location, tiny_run_config):
    result = workflow.run(workflow.RunConfig(s3=s3_location, reports_dir=tmp_path / "reports",
                                             cache_dir=tmp_path / "cache", run_id="e2e", **tiny_run_config))
    report = result.report
    assert json.loads((tmp_path / "reports" / "e2e" / "report.json").read_text()) == report

    # S3 holds the artifact where a SageMaker training job would put it, plus one test image per class.
    client = boto3.client("s3", endpoint_url=s3_location.endpoint_url)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_location.bucket)["Contents"])
    artifact_key = "suite/e2e/training/edgebench-e2e/output/model.tar.gz"
    assert artifact_key in keys
    test_keys = [k for k in keys if k.startswith("suite/e2e/test/")]
    assert sorted(k.split("/")[3] for k in test_keys) == list(data.WEATHER_CLASSES)
    head = client.head_object(Bucket=s3_location.bucket, Key=artifact_key)
    assert len(head["Metadata"][store.SHA256_METADATA]) == 64

    # The artifact is laid out as a JumpStart TF IC fine-tuning job writes it.
    with tarfile.open(tmp_path / "reports" / "e2e" / "work" / "training-output" / "model.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"1/saved_model.pb", "1/variables/variables.index", train.LABEL_MAP_FILE} <= names
    # The edge import is a separate download: it produced its own extracted copy and label map.
    edge_dir = tmp_path / "reports" / "e2e" / "work" / "edge"
    assert (edge_dir / "model" / "1" / "saved_model.pb").is_file()
    assert report["edge"]["classes"] == list(data.WEATHER_CLASSES)
    assert len(report["edge"]["test_images"]) == len(data.WEATHER_CLASSES)

    # Both backends ran, were timed, and agree within the stated tolerance.
    assert set(report["backends"]) == {"tf", "openvino"}
    for name, result_ in report["backends"].items():
        assert result_["latency"]["n"] >= 5 and len(result_["latency"]["samples_ns"]) == result_["latency"]["n"]
        assert result_["describe"]["precision"] == "FP32"
    assert report["parity"]["openvino"]["within_tolerance"], report["parity"]
    assert len(report["predictions"]) == len(data.WEATHER_CLASSES)
    assert report["machine"]["cpu_brand"] and report["machine"]["packages"]["openvino"]
    assert "aws_secret_access_key" not in json.dumps(report).lower() and "testing" not in json.dumps(report["s3"])


def test_embedded_s3_store_round_trips(tmp_path):
    """The offline default: `edgebench run` with no --bucket starts its own S3 and uses it."""
    source = tmp_path / "blob.bin"
    source.write_bytes(b"edgebench" * 1000)
    with workflow._s3_store(None) as s3:
        s3.ensure_bucket(create=True)
        s3.upload_file(source, "x/blob.bin")
        assert s3.download_file("x/blob.bin", tmp_path / "copy.bin").read_bytes() == source.read_bytes()
        assert s3.location.endpoint_url.startswith("http://127.0.0.1:")
